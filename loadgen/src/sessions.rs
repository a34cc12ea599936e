//! `loadgen sessions`: what an idle session costs. Opens N sessions, closes their connections,
//! and compares the server's RSS (and Redis `used_memory`) before and after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::http::{Conn, Target};
use crate::mcp::Session;
use crate::stats::parse_duration;
use crate::{redis, sys};

#[derive(clap::Args)]
pub struct Options {
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long)]
    pub redis_url: Option<String>,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long the sessions stay idle before memory is read.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub idle: Duration,
    /// Sessions opened and deleted before the baseline is taken.
    #[arg(long, default_value_t = 100)]
    pub warmup_sessions: usize,
}

/// Sessions opened (or closed) by a pool of workers, with the errors met.
#[derive(Default)]
pub struct Batch {
    pub sessions: Vec<Session>,
    pub errors: u64,
    pub samples: Vec<String>,
}

impl Batch {
    fn absorb(&mut self, other: Batch) {
        self.sessions.extend(other.sessions);
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
    }

    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(format!("{e:#}"));
        }
    }
}

/// One unit of work for a connection of the pool.
enum Job {
    Open,
    Close(Session),
}

/// Opens `count` sessions over `workers` connections; the connections close afterwards.
pub async fn open_many(target: &Arc<Target>, count: usize, workers: usize) -> Batch {
    let workers = workers.clamp(1, count.max(1));
    let shares = (0..workers)
        .map(|w| {
            let share = count / workers + usize::from(w < count % workers);
            (0..share).map(|_| Job::Open).collect()
        })
        .collect();
    run_jobs(target, shares).await
}

/// Ends `sessions` with `DELETE` over `workers` connections.
pub async fn close_many(target: &Arc<Target>, sessions: Vec<Session>, workers: usize) -> Batch {
    let workers = workers.max(1);
    let mut shares: Vec<Vec<Job>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, s) in sessions.into_iter().enumerate() {
        shares[i % workers].push(Job::Close(s));
    }
    run_jobs(target, shares).await
}

/// Runs each share of jobs on its own connection, all shares at once.
async fn run_jobs(target: &Arc<Target>, shares: Vec<Vec<Job>>) -> Batch {
    let mut tasks = Vec::new();
    for share in shares.into_iter().filter(|s| !s.is_empty()) {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = Batch::default();
            let mut conn = match Conn::open(target).await {
                Ok(c) => c,
                Err(e) => {
                    batch.error(&e);
                    return batch;
                }
            };
            for job in share {
                match job {
                    Job::Open => match Session::open(&mut conn).await {
                        Ok(s) => batch.sessions.push(s),
                        Err(e) => batch.error(&e),
                    },
                    Job::Close(s) => {
                        if let Err(e) = s.close(&mut conn).await {
                            batch.error(&e);
                        }
                    }
                }
            }
            batch
        }));
    }
    collect(tasks).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Batch>>) -> Batch {
    let mut all = Batch::default();
    for t in tasks {
        match t.await {
            Ok(b) => all.absorb(b),
            Err(e) => all.error(&e.into()),
        }
    }
    all
}

fn rss(pid: Option<u32>) -> Result<Option<u64>> {
    pid.map(sys::rss_kib).transpose()
}

async fn redis_memory(url: Option<&str>) -> Result<Option<u64>> {
    match url {
        Some(u) => Ok(Some(redis::used_memory(u).await?)),
        None => Ok(None),
    }
}

fn per_session(before: Option<u64>, after: Option<u64>, unit: u64, n: usize) -> Value {
    match (before, after) {
        (Some(b), Some(a)) if n > 0 => json!((a as f64 - b as f64) * unit as f64 / n as f64),
        _ => Value::Null,
    }
}

pub async fn run(opts: Options) -> Result<Value> {
    let target = Target::parse(&opts.url)?;
    // Warm-up: the first sessions also grow lazily allocated tables and allocator arenas,
    // which is not what one more idle session costs.
    if opts.warmup_sessions > 0 {
        let warm = open_many(&target, opts.warmup_sessions, opts.concurrency).await;
        close_many(&target, warm.sessions, opts.concurrency).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let redis_url = opts.redis_url.as_deref();
    let rss_before = rss(opts.server_pid)?;
    let redis_before = redis_memory(redis_url).await?;

    let started = Instant::now();
    let opened = open_many(&target, opts.count, opts.concurrency).await;
    let open_s = started.elapsed().as_secs_f64();
    let n = opened.sessions.len();
    tokio::time::sleep(opts.idle).await;
    let rss_idle = rss(opts.server_pid)?;
    let redis_idle = redis_memory(redis_url).await?;

    let closed = close_many(&target, opened.sessions, opts.concurrency).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_closed = rss(opts.server_pid)?;
    let redis_closed = redis_memory(redis_url).await?;

    Ok(json!({
        "sessions": n,
        "open_errors": opened.errors,
        "open_error_samples": opened.samples,
        "open_s": open_s,
        "sessions_per_s": n as f64 / open_s,
        "idle_s": opts.idle.as_secs_f64(),
        "rss_before_kib": rss_before,
        "rss_idle_kib": rss_idle,
        "rss_after_delete_kib": rss_closed,
        "rss_bytes_per_session": per_session(rss_before, rss_idle, 1024, n),
        "redis_used_memory_before": redis_before,
        "redis_used_memory_idle": redis_idle,
        "redis_used_memory_after_delete": redis_closed,
        "redis_bytes_per_session": per_session(redis_before, redis_idle, 1, n),
        "delete_errors": closed.errors,
        "delete_error_samples": closed.samples,
        "url": opts.url,
    }))
}
