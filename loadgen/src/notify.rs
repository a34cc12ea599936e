//! `loadgen notify-latency`: how long a resource-update notification takes from a trigger on
//! one node to a subscriber's GET stream on another (or the same) node.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http::{Conn, Target};
use crate::mcp::{Session, tool_text};
use crate::sse::SseParser;
use crate::stats::{parse_duration, percentiles};

#[derive(clap::Args)]
pub struct Options {
    #[arg(long)]
    pub listen_url: String,
    #[arg(long)]
    pub trigger_url: String,
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    #[arg(long, default_value = "test://watched-resource")]
    pub uri: String,
    /// The tool that announces the resource change (`mcp_testkit.notify_resource`).
    #[arg(long, default_value = "notify_resource")]
    pub tool: String,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub async fn run(opts: Options) -> Result<Value> {
    let (listen, trigger) = (
        Target::parse(&opts.listen_url)?,
        Target::parse(&opts.trigger_url)?,
    );
    let mut listen_conn = Conn::open(listen.clone()).await?;
    let mut listener = Session::open(&mut listen_conn).await?;
    listener
        .request(
            &mut listen_conn,
            "resources/subscribe",
            json!({"uri": opts.uri}),
        )
        .await?;
    let mut stream_conn = Conn::open(listen).await?;
    let mut body = listener.listen(&mut stream_conn).await?.into_body();
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<Instant>();
    let uri = opts.uri.clone();
    let reader = tokio::spawn(async move {
        let mut parser = SseParser::default();
        while let Some(Ok(frame)) = body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let now = Instant::now();
            for event in parser.push(data) {
                let Ok(msg) = serde_json::from_str::<Value>(&event) else {
                    continue;
                };
                if msg["method"] == "notifications/resources/updated"
                    && msg["params"]["uri"] == uri.as_str()
                    && arrived_tx.send(now).is_err()
                {
                    return;
                }
            }
        }
    });

    let mut trigger_conn = Conn::open(trigger).await?;
    let mut sender = Session::open(&mut trigger_conn).await?;
    let (mut latencies, mut call_latencies) = (Vec::new(), Vec::new());
    let (mut timeouts, mut samples) = (0u64, Vec::<String>::new());
    for i in 0..opts.warmup + opts.count {
        while arrived.try_recv().is_ok() {} // late arrivals of an earlier round
        let sent = Instant::now();
        let result = sender
            .request(
                &mut trigger_conn,
                "tools/call",
                json!({"name": opts.tool, "arguments": {"uri": opts.uri}}),
            )
            .await
            .with_context(|| format!("calling {}", opts.tool))?;
        let answered = Instant::now();
        tool_text(&result)?;
        match tokio::time::timeout(opts.timeout, arrived.recv()).await {
            Ok(Some(at)) if i >= opts.warmup => {
                latencies.push(at.duration_since(sent).as_micros() as u64);
                call_latencies.push(answered.duration_since(sent).as_micros() as u64);
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("the GET stream ended"),
            Err(_) => {
                timeouts += 1;
                if samples.len() < 5 {
                    samples.push(format!("no notification within {:?}", opts.timeout));
                }
            }
        }
    }
    reader.abort();
    let _ = sender.close(&mut trigger_conn).await;
    let _ = listener.close(&mut listen_conn).await;
    let mut report = json!({
        "notifications": latencies.len(),
        "errors": timeouts,
        "error_samples": samples,
        "listen_url": opts.listen_url,
        "trigger_url": opts.trigger_url,
        "note": "latency = trigger tools/call sent -> notifications/resources/updated read on the GET stream",
        "trigger_call": percentiles(&mut call_latencies),
    });
    if let (Value::Object(r), Value::Object(p)) = (&mut report, percentiles(&mut latencies)) {
        r.extend(p);
    }
    Ok(report)
}
