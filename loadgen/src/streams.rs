//! `loadgen streams`: N sessions, each holding its standalone GET SSE stream open on its own
//! connection; checks that every stream opens with 200 and stays open for the hold time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::http::{Conn, Target};
use crate::mcp::Session;
use crate::sessions::close_many;
use crate::stats::parse_duration;
use crate::sys;

#[derive(clap::Args)]
pub struct Options {
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub hold: Duration,
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Streams set up at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// How one stream went.
struct Outcome {
    session: Option<Session>,
    error: Option<String>,
    events: u64,
}

pub async fn run(opts: Options) -> Result<Value> {
    // One socket per stream, plus the set-up and clean-up connections and some slack.
    let nofile = sys::raise_nofile((opts.count + opts.concurrency + 256) as u64)?;
    let target = Target::parse(&opts.url)?;
    let rss_before = opts.server_pid.map(sys::rss_kib).transpose()?;

    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<()>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(opts.count);
    for _ in 0..opts.count {
        let (target, permits, opened, stop) = (
            target.clone(),
            permits.clone(),
            opened_tx.clone(),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(hold_stream(target, permits, opened, stop)));
    }
    drop(opened_tx);
    // Every task reports once, when its stream is open or has failed.
    let mut reported = 0;
    while reported < opts.count && opened_rx.recv().await.is_some() {
        reported += 1;
    }
    let open_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(opts.hold).await;
    let rss_streams = opts.server_pid.map(sys::rss_kib).transpose()?;
    stop_tx.send_replace(true);

    let (mut errors, mut samples, mut sessions, mut events) = (0u64, Vec::new(), Vec::new(), 0);
    for t in tasks {
        let outcome = match t.await {
            Ok(o) => o,
            Err(e) => Outcome {
                session: None,
                error: Some(e.to_string()),
                events: 0,
            },
        };
        events += outcome.events;
        if let Some(e) = outcome.error {
            errors += 1;
            if samples.len() < 5 {
                samples.push(e);
            }
        }
        sessions.extend(outcome.session);
    }
    let ok = opts.count as u64 - errors;
    let closed = close_many(&target, sessions, opts.concurrency).await;
    let per_stream = match (rss_before, rss_streams) {
        (Some(b), Some(a)) if opts.count > 0 => {
            json!((a as f64 - b as f64) * 1024.0 / opts.count as f64)
        }
        _ => Value::Null,
    };
    Ok(json!({
        "streams": opts.count,
        "ok": ok,
        "errors": errors,
        "error_samples": samples,
        "events_received": events,
        "open_s": open_s,
        "hold_s": opts.hold.as_secs_f64(),
        "rss_before_kib": rss_before,
        "rss_with_streams_kib": rss_streams,
        "rss_bytes_per_stream": per_stream,
        "delete_errors": closed.errors,
        "nofile_limit": nofile,
        "url": opts.url,
    }))
}

async fn hold_stream(
    target: Arc<Target>,
    permits: Arc<Semaphore>,
    opened: mpsc::UnboundedSender<()>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut outcome = Outcome {
        session: None,
        error: None,
        events: 0,
    };
    let setup = async {
        let _permit = permits.acquire().await?;
        let mut conn = Conn::open(target).await?;
        let session = Session::open(&mut conn).await?;
        let response = session.listen(&mut conn).await;
        anyhow::Ok((conn, session, response))
    };
    let result = setup.await;
    let _ = opened.send(());
    // The connection stays with the task while the stream is read.
    let (_conn, mut body) = match result {
        Ok((conn, session, Ok(response))) => {
            outcome.session = Some(session);
            (conn, response.into_body())
        }
        Ok((_, session, Err(e))) => {
            outcome.session = Some(session);
            outcome.error = Some(format!("{e:#}"));
            return outcome;
        }
        Err(e) => {
            outcome.error = Some(format!("{e:#}"));
            return outcome;
        }
    };
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(_)) => outcome.events += 1,
                Some(Err(e)) => {
                    outcome.error = Some(format!("the stream failed: {e}"));
                    break;
                }
                None => {
                    outcome.error = Some("the server ended the stream".into());
                    break;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    outcome
}
