//! `loadgen`: drives MCP servers over streamable HTTP the way real clients do (`initialize`,
//! `notifications/initialized`, then requests on the session) and prints what it measured as
//! one JSON object. See `bench/compare.sh` and docs/PERFORMANCE.md.

mod calls;
mod http;
mod mcp;
mod notify;
mod redis;
mod sessions;
mod sse;
mod stats;
mod streams;
mod sys;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::stats::parse_duration;

#[derive(Parser)]
#[command(version, about = "Load generator for MCP servers (streamable HTTP)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Closed-loop `tools/call` from N clients; throughput, latency, server CPU per call.
    Calls {
        /// Server endpoint; repeat for several nodes (each client rotates over all of them).
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        warmup: Duration,
        #[arg(long, value_enum, default_value = "add")]
        tool: calls::Tool,
        /// Processes whose CPU time counts as the server's (repeatable).
        #[arg(long = "server-pid")]
        server_pids: Vec<u32>,
        /// Other processes (e.g. redis-server) whose CPU time is reported separately.
        #[arg(long = "aux-pid")]
        aux_pids: Vec<u32>,
    },
    /// Memory cost of idle sessions on the node (RSS) and in Redis (`used_memory`).
    Sessions {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long)]
        redis_url: Option<String>,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// How long the sessions stay idle before memory is read.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        idle: Duration,
        /// Sessions opened and deleted before the baseline is taken.
        #[arg(long, default_value_t = 100)]
        warmup_sessions: usize,
    },
    /// N sessions each holding an open standalone GET SSE stream.
    Streams {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        hold: Duration,
        #[arg(long)]
        server_pid: Option<u32>,
        /// Streams set up at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Latency of `notifications/resources/updated` from a trigger on one node to a GET
    /// stream on another.
    NotifyLatency {
        #[arg(long)]
        listen_url: String,
        #[arg(long)]
        trigger_url: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        #[arg(long, default_value = "test://watched-resource")]
        uri: String,
        /// The tool that announces the resource change (`mcp_testkit.notify_resource`).
        #[arg(long, default_value = "notify_resource")]
        tool: String,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(report) => {
            use std::io::Write;
            // Not `println!`: a closed pipe (`| head`) is not worth a panic.
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{report:#}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> anyhow::Result<Value> {
    match cmd {
        Cmd::Calls {
            urls,
            concurrency,
            duration,
            warmup,
            tool,
            server_pids,
            aux_pids,
        } => {
            calls::run(calls::Options {
                urls,
                concurrency: concurrency.max(1),
                duration,
                warmup,
                tool,
                server_pids,
                aux_pids,
            })
            .await
        }
        Cmd::Sessions {
            url,
            count,
            server_pid,
            redis_url,
            concurrency,
            idle,
            warmup_sessions,
        } => {
            sessions::run(sessions::Options {
                url,
                count,
                server_pid,
                redis_url,
                concurrency,
                idle,
                warmup_sessions,
            })
            .await
        }
        Cmd::Streams {
            url,
            count,
            hold,
            server_pid,
            concurrency,
        } => {
            streams::run(streams::Options {
                url,
                count,
                hold,
                server_pid,
                concurrency,
            })
            .await
        }
        Cmd::NotifyLatency {
            listen_url,
            trigger_url,
            count,
            warmup,
            uri,
            tool,
            timeout,
        } => {
            notify::run(notify::Options {
                listen_url,
                trigger_url,
                count,
                warmup,
                uri,
                tool,
                timeout,
            })
            .await
        }
    }
}
