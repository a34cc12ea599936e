//! Worker pools: one per code version (a new bundle version never runs in a worker that
//! imported the old one), started lazily and kept warm, one call in flight per worker.
//! Concurrency is bounded per pool and in total, and so is the queue in front of each pool:
//! past it a call fails at once with a "busy" error rather than waiting in unbounded memory.
//! A pool made for a new version of some code retires the pool of the version before it:
//! its idle workers stop at once, and each of its running calls finishes there and then stops
//! its worker, so old code neither serves new calls nor holds memory until its idle lifetime.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::worker::{Worker, WorkerConfig};

/// The limits of all pools of one runtime.
pub struct PoolLimits {
    pub per_pool: usize,
    pub total: usize,
    pub queue: usize,
    pub idle_lifetime: Duration,
}

pub struct Pools {
    limits: PoolLimits,
    map: Mutex<HashMap<String, Arc<Pool>>>,
    total: Arc<Semaphore>,
    /// Cancelled by `shutdown`: running calls kill their workers and end.
    pub shutdown: CancellationToken,
    /// Workers alive (running or idle), for `shutdown` to wait on.
    pub live: Arc<AtomicUsize>,
    reaper: std::sync::Once,
}

pub struct Pool {
    /// The module the pool was made for (for messages).
    pub module: String,
    /// The code it runs a version of (one current pool per lineage).
    lineage: String,
    /// A newer version's pool replaced it: workers stop when their call ends.
    retired: AtomicBool,
    pub config: WorkerConfig,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    idle: Mutex<Vec<Worker>>,
}

/// Why a call got no worker.
pub enum AcquireError {
    Busy(String),
    Spawn(String),
}

/// A worker checked out for one call, with its permits. Dropping it puts the worker back in
/// the pool if the call ended cleanly (`busy` cleared), and kills it otherwise.
pub struct Lease {
    pool: Arc<Pool>,
    pools: Arc<Pools>,
    worker: Option<Worker>,
    _slot: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Lease {
    pub fn worker(&mut self) -> Option<&mut Worker> {
        self.worker.as_mut()
    }

    /// Kills the worker now and waits for it (a deadline, a crash, a cancellation past its
    /// grace): the next call gets a fresh one.
    pub async fn discard(&mut self) {
        if let Some(mut w) = self.worker.take() {
            w.reap().await;
        }
    }

    /// Takes the worker out (its process ended; the caller reaps it).
    pub fn take(&mut self) -> Option<Worker> {
        self.worker.take()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut w) = self.worker.take() else {
            return;
        };
        if w.busy || self.pools.shutdown.is_cancelled() || self.pool.retired.load(Ordering::SeqCst)
        {
            return; // dropping kills it
        }
        w.idle_since = tokio::time::Instant::now();
        self.pool.idle.lock().push(w);
    }
}

/// Decrements the queue count when the waiting call goes away, however it goes.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pools {
    pub fn new(limits: PoolLimits) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(limits.total.max(1))),
            limits,
            map: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            live: Arc::new(AtomicUsize::new(0)),
            reaper: std::sync::Once::new(),
        })
    }

    /// The pool for `key` (one version of the code `lineage`), made with `config()` the first
    /// time; making it retires the lineage's other pools.
    pub fn pool(
        self: &Arc<Self>,
        key: &str,
        lineage: &str,
        module: &str,
        config: impl FnOnce() -> WorkerConfig,
    ) -> Arc<Pool> {
        self.reaper.call_once(|| {
            tokio::spawn(reap_idle(Arc::downgrade(self)));
        });
        let mut stopped = Vec::new();
        let pool = {
            let mut map = self.map.lock();
            if let Some(p) = map.get(key) {
                return p.clone();
            }
            let pool = Arc::new(Pool {
                module: module.to_string(),
                lineage: lineage.to_string(),
                retired: AtomicBool::new(false),
                config: config(),
                slots: Arc::new(Semaphore::new(self.limits.per_pool.max(1))),
                queued: AtomicUsize::new(0),
                idle: Mutex::new(Vec::new()),
            });
            map.retain(|old_key, old| {
                if old.lineage != lineage {
                    return true;
                }
                old.retired.store(true, Ordering::SeqCst);
                let idle: Vec<Worker> = old.idle.lock().drain(..).collect();
                let running =
                    self.limits.per_pool - old.slots.available_permits().min(self.limits.per_pool);
                tracing::info!(
                    module = %old.module,
                    pool = %old_key,
                    idle = idle.len(),
                    running,
                    "python worker pool retired by a newer version"
                );
                stopped.extend(idle);
                false
            });
            map.insert(key.to_string(), pool.clone());
            pool
        };
        // Dropping a worker kills its process group (outside the lock).
        drop(stopped);
        pool
    }

    /// A worker of `pool` for one call: a warm idle one, or a new one. Waits in the pool's
    /// bounded queue when every slot is taken.
    pub async fn acquire(self: &Arc<Self>, pool: &Arc<Pool>) -> Result<Lease, AcquireError> {
        let (slot, total) =
            match (
                pool.slots.clone().try_acquire_owned(),
                self.total.clone().try_acquire_owned(),
            ) {
                (Ok(s), Ok(t)) => (s, t),
                (s, t) => {
                    let queued = pool.queued.fetch_add(1, Ordering::SeqCst);
                    let _queued = Queued(&pool.queued);
                    if queued >= self.limits.queue {
                        return Err(AcquireError::Busy(self.busy(pool, queued)));
                    }
                    let s = match s {
                        Ok(s) => s,
                        Err(_) => pool.slots.clone().acquire_owned().await.map_err(|_| {
                            AcquireError::Busy("the runtime is shutting down".into())
                        })?,
                    };
                    let t = match t {
                        Ok(t) => t,
                        Err(_) => self.total.clone().acquire_owned().await.map_err(|_| {
                            AcquireError::Busy("the runtime is shutting down".into())
                        })?,
                    };
                    (s, t)
                }
            };
        let warm = loop {
            let Some(w) = pool.idle.lock().pop() else {
                break None;
            };
            if !w.exited() {
                break Some(w);
            }
            // It died while idle (killed from outside); dropping it cleans up.
        };
        let worker = match warm {
            Some(w) => w,
            None => Worker::spawn(&pool.config)
                .await
                .map_err(AcquireError::Spawn)?,
        };
        Ok(Lease {
            pool: pool.clone(),
            pools: self.clone(),
            worker: Some(worker),
            _slot: slot,
            _total: total,
        })
    }

    fn busy(&self, pool: &Pool, queued: usize) -> String {
        let running =
            self.limits.per_pool - pool.slots.available_permits().min(self.limits.per_pool);
        let total_running =
            self.limits.total - self.total.available_permits().min(self.limits.total);
        format!(
            "python functions of module '{}' are busy: {running} calls running ({total_running} in all pools), {queued} queued; try again",
            pool.module
        )
    }

    /// Kills every worker, idle or running, and waits (bounded) until they are gone.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.total.close();
        let pools: Vec<Arc<Pool>> = self.map.lock().drain().map(|(_, p)| p).collect();
        for pool in pools {
            pool.slots.close();
            let idle: Vec<Worker> = pool.idle.lock().drain(..).collect();
            for mut w in idle {
                w.reap().await;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.live.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Kills workers idle for longer than the idle lifetime, and forgets pools left empty (a
/// bundle version nobody calls any more).
async fn reap_idle(pools: std::sync::Weak<Pools>) {
    let every = match pools.upgrade() {
        Some(p) => {
            (p.limits.idle_lifetime / 4).clamp(Duration::from_millis(50), Duration::from_secs(30))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(p) = pools.upgrade() else {
            return;
        };
        if p.shutdown.is_cancelled() {
            return;
        }
        let lifetime = p.limits.idle_lifetime;
        let mut expired = Vec::new();
        {
            let mut map = p.map.lock();
            for pool in map.values() {
                let mut idle = pool.idle.lock();
                let (old, keep): (Vec<Worker>, Vec<Worker>) = idle
                    .drain(..)
                    .partition(|w| w.idle_since.elapsed() >= lifetime);
                *idle = keep;
                expired.extend(old);
            }
            map.retain(|_, pool| {
                Arc::strong_count(pool) > 1
                    || !pool.idle.lock().is_empty()
                    || pool.slots.available_permits() < p.limits.per_pool
            });
        }
        for mut w in expired {
            w.reap().await;
        }
    }
}
