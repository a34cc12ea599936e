//! Throttles of the authorization server, kept per node in memory: failed sign-ins back off
//! exponentially per account and per source address, `/token` and `/revoke` are rate limited
//! per source and per client, and bcrypt checks run on the blocking pool behind a bounded
//! gate. Every table is bounded: names and addresses are chosen by callers, so a full table
//! drops what is idle first and then what matters least (fewest failures, fullest bucket),
//! never grows.
//!
//! Time comes in as `now_ms` from the `Clock`, so backoff is tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::keys::digest;
use crate::config::AuthLimits;

/// The first wait once the free failures are used up; it doubles with each further failure.
const BASE_BACKOFF_MS: u64 = 1_000;
/// A failure count is forgotten once its wait has passed and this long went by without one.
const FORGET_MS: u64 = 15 * 60 * 1000;
/// A rate limit's bucket holds this many seconds of its rate, so short bursts pass.
const BURST_SECS: u64 = 10;

/// Whom a throttle counts: the address a request came from (IPv6 by its /64, which one
/// machine usually owns whole) or a name, kept as a digest so its size is bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    Source(IpAddr),
    Name(String),
}

impl Who {
    /// The source of a request; `None` (no socket, as in router tests) is one shared source.
    pub fn source(ip: Option<IpAddr>) -> Self {
        let ip = match ip {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
                }
            },
            Some(v4) => v4,
        };
        Self::Source(ip)
    }

    pub fn name(name: &str) -> Self {
        Self::Name(digest(name))
    }
}

/// A table of at most `cap` entries. `idle` entries go first when it is full; if none is
/// idle, every entry of the lowest `rank` goes.
struct Bounded<K, V> {
    map: HashMap<K, V>,
    cap: usize,
}

trait Entry {
    fn idle(&self, now_ms: u64) -> bool;
    fn rank(&self, now_ms: u64) -> u64;
}

impl<K: Hash + Eq + Clone, V: Entry> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    fn entry(&mut self, key: &K, now_ms: u64, fresh: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            self.map.retain(|_, v| !v.idle(now_ms));
            if self.map.len() >= self.cap
                && let Some(lowest) = self.map.values().map(|v| v.rank(now_ms)).min()
            {
                self.map.retain(|_, v| v.rank(now_ms) > lowest);
            }
        }
        self.map.entry(key.clone()).or_insert_with(fresh)
    }
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: u64,
    last_ms: u64,
}

impl Entry for Failures {
    fn idle(&self, now_ms: u64) -> bool {
        now_ms
            >= self
                .locked_until
                .max(self.last_ms)
                .saturating_add(FORGET_MS)
    }
    fn rank(&self, _: u64) -> u64 {
        self.count.into()
    }
}

/// Exponential backoff after repeated failures. Every attempt counts as a failure when it
/// starts (so attempts running at once cannot outpace the count); `succeeded` and `undo` take
/// it back.
pub struct Backoff {
    table: Mutex<Bounded<Who, Failures>>,
    free: u32,
    max_ms: u64,
}

impl Backoff {
    pub fn new(free: u32, max_ms: u64, cap: usize) -> Self {
        Self {
            table: Mutex::new(Bounded::new(cap)),
            free: free.max(1),
            max_ms,
        }
    }

    /// Starts an attempt counted against every one of `who`, or the seconds to wait when
    /// one of them must wait (then nothing is counted).
    pub fn begin(&self, who: &[&Who], now_ms: u64) -> Result<(), u64> {
        let mut t = self.table.lock();
        let wait = who
            .iter()
            .filter_map(|w| t.map.get(*w))
            .filter(|f| !f.idle(now_ms))
            .map(|f| f.locked_until.saturating_sub(now_ms))
            .max()
            .unwrap_or(0);
        if wait > 0 {
            return Err(wait.div_ceil(1000));
        }
        for w in who {
            let f = t.entry(w, now_ms, Failures::default);
            if f.idle(now_ms) {
                *f = Failures::default();
            }
            f.count = f.count.saturating_add(1);
            f.last_ms = now_ms;
            if f.count >= self.free {
                let doublings = (f.count - self.free).min(30);
                let wait = BASE_BACKOFF_MS
                    .saturating_mul(1 << doublings)
                    .min(self.max_ms);
                f.locked_until = now_ms.saturating_add(wait);
            }
        }
        Ok(())
    }

    /// The attempt did not fail after all (the check itself could not run): uncount it.
    pub fn undo(&self, who: &[&Who]) {
        let mut t = self.table.lock();
        for w in who {
            if let Some(f) = t.map.get_mut(*w) {
                f.count = f.count.saturating_sub(1);
                if f.count < self.free {
                    f.locked_until = 0;
                }
            }
        }
    }

    /// The attempt succeeded: `cleared` start again from nothing (the account: a real user
    /// who gets in is not held back by what an attacker tried), `uncounted` lose this attempt
    /// only (the source: signing in to one's own account must not buy more guesses).
    pub fn succeeded(&self, cleared: &Who, uncounted: &Who) {
        self.table.lock().map.remove(cleared);
        self.undo(&[uncounted]);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map.len()
    }
}

#[derive(Debug)]
struct Bucket {
    /// Thousandths of a request, so refills need no floating point.
    milli: u64,
    updated_ms: u64,
}

/// A token bucket per caller: `per_minute` requests a minute, bursts of `BURST_SECS` worth.
pub struct RateLimit {
    table: Mutex<Bounded<Who, Rated>>,
    per_minute: u64,
}

impl Bucket {
    /// The level now, and whether any refill happened (when none did, the refill time keeps
    /// accumulating: a flood of calls must not round every refill down to nothing).
    fn level(&self, now_ms: u64, per_minute: u64) -> (u64, bool) {
        let refill = now_ms
            .saturating_sub(self.updated_ms)
            .saturating_mul(per_minute)
            / 60;
        let level = self
            .milli
            .saturating_add(refill)
            .min(burst_milli(per_minute));
        (level, refill > 0)
    }
}

fn burst_milli(per_minute: u64) -> u64 {
    (per_minute * BURST_SECS / 60).max(1) * 1000
}

/// A bucket's entry needs the rate to know its level; the table's entries carry it.
struct Rated {
    bucket: Bucket,
    per_minute: u64,
}

impl Entry for Rated {
    fn idle(&self, now_ms: u64) -> bool {
        self.bucket.level(now_ms, self.per_minute).0 >= burst_milli(self.per_minute)
    }
    fn rank(&self, now_ms: u64) -> u64 {
        // The emptiest bucket belongs to the busiest caller: it stays longest.
        burst_milli(self.per_minute) - self.bucket.level(now_ms, self.per_minute).0
    }
}

impl RateLimit {
    pub fn new(per_minute: u32, cap: usize) -> Self {
        Self {
            table: Mutex::new(Bounded::new(cap)),
            per_minute: u64::from(per_minute.max(1)),
        }
    }

    /// Takes one request from `who`'s bucket, or the seconds until one is available.
    pub fn take(&self, who: &Who, now_ms: u64) -> Result<(), u64> {
        let per_minute = self.per_minute;
        let mut t = self.table.lock();
        let e = t.entry(who, now_ms, || Rated {
            bucket: Bucket {
                milli: burst_milli(per_minute),
                updated_ms: now_ms,
            },
            per_minute,
        });
        let (level, refilled) = e.bucket.level(now_ms, per_minute);
        if refilled {
            e.bucket.updated_ms = now_ms;
        }
        if level >= 1000 {
            e.bucket.milli = level - 1000;
            Ok(())
        } else {
            e.bucket.milli = level;
            // ms until the missing part refills: (1000 - level) * 60 / per_minute.
            Err(((1000 - level) * 60 / per_minute).div_ceil(1000).max(1))
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map.len()
    }
}

/// Why a password check did not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GateError {
    #[error("too many sign-ins are being checked; try again in a moment")]
    Busy,
    #[error("the password check stopped: {0}")]
    Failed(String),
}

/// Runs slow checks (bcrypt) on the blocking pool, at most `running` at once with `queued`
/// more waiting; beyond that a check is refused at once instead of piling up.
pub struct HashGate {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl HashGate {
    pub fn new(running: usize, queued: usize) -> Self {
        let running = running.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(running + queued)),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateError> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| GateError::Busy)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| GateError::Failed(e.to_string()))?;
        // The permits move into the task: a caller that goes away does not free a slot while
        // its hash still runs.
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, running);
            check()
        })
        .await
        .map_err(|e| GateError::Failed(e.to_string()))
    }
}

/// The throttles of one node's authorization server.
pub struct Throttles {
    pub sign_in: Backoff,
    pub token_sources: RateLimit,
    pub token_clients: RateLimit,
    pub hashing: HashGate,
}

impl Throttles {
    pub fn new(l: &AuthLimits) -> Self {
        let cap = l.auth_throttle_entries;
        Self {
            sign_in: Backoff::new(
                l.signin_free_failures,
                l.signin_backoff_max_secs.saturating_mul(1000),
                cap,
            ),
            token_sources: RateLimit::new(l.token_rate_per_source, cap),
            token_clients: RateLimit::new(l.token_rate_per_client, cap),
            hashing: HashGate::new(l.signin_hash_concurrency, l.signin_hash_queue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Who {
        Who::source(Some(s.parse().unwrap()))
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap_and_a_success_clears_the_account() {
        let b = Backoff::new(3, 8_000, 100);
        let (acct, src) = (Who::name("alice"), ip("10.0.0.1"));
        let t = 1_000_000;
        for _ in 0..2 {
            assert_eq!(b.begin(&[&acct, &src], t), Ok(()));
        }
        // The third failure is free too, but starts a 1 s wait.
        assert_eq!(b.begin(&[&acct, &src], t), Ok(()));
        assert_eq!(b.begin(&[&acct, &src], t), Err(1));
        assert_eq!(b.begin(&[&acct, &src], t + 1_000), Ok(()));
        assert_eq!(b.begin(&[&acct, &src], t + 1_000), Err(2));
        let mut now = t + 3_000;
        let mut waits = Vec::new();
        for _ in 0..4 {
            b.begin(&[&acct, &src], now).unwrap();
            let w = b.begin(&[&acct, &src], now).unwrap_err();
            waits.push(w);
            now += w * 1000;
        }
        assert_eq!(waits, vec![4, 8, 8, 8], "doubling, bounded by the maximum");
        // Another account from the same source waits too; the same account from elsewhere too.
        assert!(b.begin(&[&Who::name("bob"), &src], now - 1).is_err());
        assert!(b.begin(&[&acct, &ip("10.0.0.2")], now - 1).is_err());
        b.begin(&[&acct, &ip("10.0.0.2")], now).unwrap();
        b.succeeded(&acct, &ip("10.0.0.2"));
        assert_eq!(
            b.begin(&[&acct, &ip("10.0.0.2")], now),
            Ok(()),
            "the success cleared the account"
        );
        assert!(
            b.begin(&[&src], now).is_ok(),
            "the source's wait has passed"
        );
        assert!(
            b.begin(&[&src], now).is_err(),
            "but its count was not cleared"
        );
    }

    #[test]
    fn an_undone_attempt_is_not_counted_and_counts_are_forgotten() {
        let b = Backoff::new(2, 60_000, 100);
        let src = ip("10.0.0.1");
        b.begin(&[&src], 0).unwrap();
        b.undo(&[&src]);
        b.begin(&[&src], 0).unwrap();
        b.begin(&[&src], 0).unwrap();
        assert!(b.begin(&[&src], 0).is_err());
        assert!(b.begin(&[&src], 1_000 + FORGET_MS).is_ok(), "forgotten");
        assert!(b.begin(&[&src], 1_000 + FORGET_MS).is_ok(), "from zero");
    }

    #[test]
    fn a_full_table_drops_the_least_failed_and_keeps_the_attacked_account() {
        let b = Backoff::new(3, 60_000, 10);
        let victim = Who::name("alice");
        for _ in 0..3 {
            b.begin(&[&victim], 0).unwrap();
        }
        for i in 0..1_000 {
            let _ = b.begin(&[&Who::name(&format!("junk{i}"))], 0);
            assert!(b.len() <= 10);
        }
        assert!(b.begin(&[&victim], 0).is_err(), "still backing off");
    }

    #[test]
    fn sources_are_counted_by_address_and_ipv6_by_its_64() {
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:bbbb::2"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(Who::source(None), ip("0.0.0.0"));
        assert_eq!(
            Who::name(&"x".repeat(100_000)),
            Who::name(&"x".repeat(100_000))
        );
        let Who::Name(d) = Who::name(&"x".repeat(100_000)) else {
            panic!()
        };
        assert!(d.len() <= 64);
    }

    #[test]
    fn a_rate_limit_allows_a_burst_then_its_rate_and_stays_bounded() {
        let r = RateLimit::new(60, 5); // one a second, bursts of 10
        let who = ip("10.0.0.1");
        for _ in 0..10 {
            r.take(&who, 0).unwrap();
        }
        assert_eq!(r.take(&who, 0), Err(1));
        assert_eq!(r.take(&who, 999), Err(1));
        assert_eq!(r.take(&who, 1_000), Ok(()));
        assert!(r.take(&who, 1_000).is_err());
        for i in 0..100 {
            let _ = r.take(&ip(&format!("10.1.0.{i}")), 2_000);
            assert!(r.len() <= 5);
        }
        assert!(
            r.take(&who, 2_000).is_ok() && r.take(&who, 2_000).is_err(),
            "the busy caller's bucket was kept, not refilled by eviction"
        );
    }

    /// Waits (without sleeping) until `done`, failing after a generous deadline.
    async fn until(done: impl Fn() -> bool) {
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while !done() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the condition held in time");
    }

    #[tokio::test]
    async fn the_hash_gate_refuses_beyond_its_queue() {
        let gate = Arc::new(HashGate::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let block = |rx: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = rx.lock().unwrap().recv();
            }
        };
        let g = gate.clone();
        let first = tokio::spawn({
            let rx = rx.clone();
            async move { g.run(block(rx)).await }
        });
        until(|| gate.running.available_permits() == 0).await; // the first one runs
        let g = gate.clone();
        let second = tokio::spawn({
            let rx = rx.clone();
            async move { g.run(block(rx)).await }
        });
        until(|| gate.admitted.available_permits() == 0).await; // the second one waits
        assert_eq!(gate.run(|| ()).await, Err(GateError::Busy));
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(second.await.unwrap(), Ok(()));
        assert_eq!(gate.run(|| 7).await, Ok(7), "free again");
    }
}
