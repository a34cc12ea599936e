//! `loadgen calls`: N virtual clients, each with its own session and one keep-alive connection
//! per URL, call a tool in a closed loop; every result is checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::sync::{Barrier, watch};

use crate::http::{Conn, Target};
use crate::mcp::{Session, tool_text};
use crate::stats::{Rng, parse_duration, percentiles};
use crate::sys;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Tool {
    Add,
    Echo,
}

#[derive(clap::Args)]
pub struct Options {
    /// Server endpoint; repeat for several nodes (each client rotates over all of them).
    #[arg(long = "url", required = true)]
    pub urls: Vec<String>,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    #[arg(long, value_enum, default_value = "add")]
    pub tool: Tool,
    /// Processes whose CPU time counts as the server's (repeatable).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Other processes (e.g. redis-server) whose CPU time is reported separately.
    #[arg(long = "aux-pid")]
    pub aux_pids: Vec<u32>,
    /// A server process whose child processes (e.g. Python workers) are reported separately:
    /// their CPU per call over the window and their RSS at its end (repeatable).
    #[arg(long = "worker-parent")]
    pub worker_parents: Vec<u32>,
    /// A file holding a bearer token sent with every request (servers with sign-in on).
    #[arg(long)]
    pub bearer_file: Option<std::path::PathBuf>,
}

/// Error messages kept per client, so the report shows what went wrong without growing.
const SAMPLES: usize = 5;

#[derive(Default)]
struct ClientReport {
    latencies_us: Vec<u64>,
    errors: u64,
    samples: Vec<String>,
}

impl ClientReport {
    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(format!("{e:#}"));
        }
    }
}

/// The measured window, known once every client has its session.
type Window = Option<(Instant, Instant)>;

pub async fn run(opts: Options) -> Result<Value> {
    let token = match &opts.bearer_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the bearer token {}", path.display()))?,
        ),
        None => None,
    };
    let targets = opts
        .urls
        .iter()
        .map(|u| match &token {
            Some(t) => Target::with_bearer(u, t),
            None => Target::parse(u),
        })
        .collect::<Result<Vec<_>>>()?;
    let barrier = Arc::new(Barrier::new(opts.concurrency + 1));
    let (window_tx, window_rx) = watch::channel::<Window>(None);
    let mut clients = Vec::new();
    for n in 0..opts.concurrency {
        let (targets, barrier, window) = (targets.clone(), barrier.clone(), window_rx.clone());
        let tool = opts.tool;
        clients.push(tokio::spawn(async move {
            client(n, targets, tool, barrier, window).await
        }));
    }
    barrier.wait().await;
    let start = Instant::now() + opts.warmup;
    let end = start + opts.duration;
    window_tx.send_replace(Some((start, end)));

    tokio::time::sleep_until(start.into()).await;
    let server_before = sys::cpu_ticks_sum(&opts.server_pids)?;
    let aux_before = sys::cpu_ticks_sum(&opts.aux_pids)?;
    let workers: Vec<u32> = opts
        .worker_parents
        .iter()
        .flat_map(|p| sys::children(*p))
        .collect();
    let workers_before = sys::cpu_ticks_present(&workers);
    let own_before = sys::cpu_ticks(std::process::id())?;
    let machine_before = sys::cpu_jiffies()?;
    let measured_from = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let server_ticks = sys::cpu_ticks_sum(&opts.server_pids)? - server_before;
    let aux_ticks = sys::cpu_ticks_sum(&opts.aux_pids)? - aux_before;
    let worker_ticks = sys::cpu_ticks_present(&workers).saturating_sub(workers_before);
    let worker_rss_kib: u64 = workers.iter().filter_map(|p| sys::rss_kib(*p).ok()).sum();
    let own_ticks = sys::cpu_ticks(std::process::id())? - own_before;
    let cpu_busy = sys::busy_shares(&machine_before, &sys::cpu_jiffies()?);
    let elapsed = measured_from.elapsed().as_secs_f64();

    let mut all = ClientReport::default();
    for c in clients {
        let report = c.await?;
        all.latencies_us.extend(report.latencies_us);
        all.errors += report.errors;
        for s in report.samples {
            if all.samples.len() < SAMPLES {
                all.samples.push(s);
            }
        }
    }
    let calls = all.latencies_us.len() as u64;
    let tick_us = 1e6 / sys::clock_ticks_per_second() as f64;
    let per_call = |ticks: u64| -> Value {
        if calls == 0 {
            Value::Null
        } else {
            json!(round1(ticks as f64 * tick_us / calls as f64))
        }
    };
    let mut report = json!({
        "tool": format!("{:?}", opts.tool).to_lowercase(),
        "calls": calls,
        "calls_per_s": round1(calls as f64 / elapsed),
        "errors": all.errors,
        "error_samples": all.samples,
        "server_cpu_us_per_call": per_call(server_ticks),
        "server_cpu_s": round1(server_ticks as f64 * tick_us / 1e6),
        // Server CPU seconds per second: ~1.0 means the (pinned) server was saturated.
        "server_cores_used": ((server_ticks as f64 * tick_us / 1e6 / elapsed) * 100.0).round() / 100.0,
        // Busy share of every CPU of the machine (all processes) during the window.
        "cpu_busy": cpu_busy,
        "loadgen_cpu_us_per_call": per_call(own_ticks),
        "loadgen_cores_used": ((own_ticks as f64 * tick_us / 1e6 / elapsed) * 100.0).round() / 100.0,
        "clock_ticks_per_s": sys::clock_ticks_per_second(),
        "concurrency": opts.concurrency,
        "duration_s": round1(elapsed),
        "warmup_s": opts.warmup.as_secs_f64(),
        "urls": opts.urls,
        "server_pids": opts.server_pids,
        "bearer": token.is_some(),
    });
    if !opts.worker_parents.is_empty() {
        report["worker_pids"] = json!(workers);
        report["worker_cpu_us_per_call"] = per_call(worker_ticks);
        report["worker_rss_kib"] = json!(worker_rss_kib);
    }
    if !opts.aux_pids.is_empty() {
        report["aux_pids"] = json!(opts.aux_pids);
        report["aux_cpu_us_per_call"] = per_call(aux_ticks);
    }
    if let (Value::Object(r), Value::Object(p)) = (&mut report, percentiles(&mut all.latencies_us))
    {
        r.extend(p);
    }
    Ok(report)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn client(
    n: usize,
    targets: Vec<Arc<Target>>,
    tool: Tool,
    barrier: Arc<Barrier>,
    mut window: watch::Receiver<Window>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let setup = setup(&targets).await;
    // Every client reaches the barrier, even one that failed, or the run would never start.
    barrier.wait().await;
    let Ok(Some((start, end))) = window.wait_for(Option::is_some).await.map(|w| *w) else {
        return report;
    };
    let (mut conns, mut session) = match setup {
        Ok(s) => s,
        Err(e) => {
            report.error(&e.context("session setup"));
            return report;
        }
    };
    let seed = n as u64 ^ (start.elapsed().as_nanos() as u64).rotate_left(17);
    let mut rng = Rng::new(seed);
    let mut next = n; // clients start on different nodes
    let name = match tool {
        Tool::Add => "add",
        Tool::Echo => "echo",
    };
    loop {
        let (args, expected) = match tool {
            Tool::Add => {
                let (a, b) = (rng.int(1_000_000), rng.int(1_000_000));
                (json!({"a": a, "b": b}), (a + b).to_string())
            }
            Tool::Echo => {
                let m = format!("bench-{:016x}", rng.next_u64());
                (json!({"message": m}), m)
            }
        };
        let idx = next % conns.len();
        next += 1;
        let sent = Instant::now();
        let outcome = session
            .request(
                &mut conns[idx],
                "tools/call",
                json!({"name": name, "arguments": args}),
            )
            .await
            .and_then(|result| check(&result, &expected));
        let done = Instant::now();
        if done > end {
            break;
        }
        match outcome {
            Ok(()) if done >= start => report
                .latencies_us
                .push(done.duration_since(sent).as_micros() as u64),
            Ok(()) => {}
            Err(e) => {
                if done >= start {
                    report.error(&e);
                }
                // Do not spin on a dead server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    if let Some(conn) = conns.first_mut() {
        let _ = session.close(conn).await;
    }
    report
}

async fn setup(targets: &[Arc<Target>]) -> Result<(Vec<Conn>, Session)> {
    let mut conns = Vec::new();
    for t in targets {
        conns.push(Conn::open(t.clone()).await?);
    }
    let first = conns
        .first_mut()
        .ok_or_else(|| anyhow::anyhow!("no URL given"))?;
    let session = Session::open(first).await?;
    Ok((conns, session))
}

fn check(result: &Value, expected: &str) -> Result<()> {
    let text = tool_text(result)?;
    if text != expected {
        anyhow::bail!("wrong result: expected {expected:?}, got {text:?}");
    }
    Ok(())
}
