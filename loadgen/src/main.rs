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

use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(version, about = "Load generator for MCP servers (streamable HTTP)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Closed-loop `tools/call` from N clients; throughput, latency, server CPU per call.
    Calls(calls::Options),
    /// Memory cost of idle sessions on the node (RSS) and in Redis (`used_memory`).
    Sessions(sessions::Options),
    /// N sessions each holding an open standalone GET SSE stream.
    Streams(streams::Options),
    /// Latency of `notifications/resources/updated` from a trigger on one node to a GET
    /// stream on another.
    NotifyLatency(notify::Options),
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
        Cmd::Calls(mut o) => {
            o.concurrency = o.concurrency.max(1);
            calls::run(o).await
        }
        Cmd::Sessions(o) => sessions::run(o).await,
        Cmd::Streams(o) => streams::run(o).await,
        Cmd::NotifyLatency(o) => notify::run(o).await,
    }
}
