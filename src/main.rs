//! The `mcp-daemon` binary: parse flags, set up logging, build the server, serve.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use mcp_daemon::app;
use mcp_daemon::catalog::Catalog;
use mcp_daemon::clock::SystemClock;
use mcp_daemon::config::{Command, Config, TransportMode};
use mcp_daemon::ops::telemetry;
use mcp_daemon::transport::stdio;

/// mimalloc instead of glibc malloc: a request allocates and frees many small objects, and
/// under load glibc's malloc/free/consolidate took about 15 % of the daemon's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line (with its causes), not a backtrace: this is what operators see.
            eprintln!("mcp-daemon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format, &config.log_level);
    if config.command == Some(Command::CheckConfig) {
        return check_config(&config);
    }
    config.validate()?;
    let engine = app::build_engine(&config, Arc::new(SystemClock))
        .await
        .context("cannot start")?;
    app::spawn_reaper(
        engine.clone(),
        std::time::Duration::from_secs(config.session_reap_interval_secs),
    );
    spawn_reload_on_sighup(&config, engine.clone());

    if config.transport == TransportMode::Stdio {
        tracing::info!("serving MCP on stdio");
        return stdio::serve(
            engine,
            tokio::io::stdin(),
            tokio::io::stdout(),
            config.max_body_bytes,
            config.max_json_depth,
        )
        .await;
    }
    let addr = std::net::SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if !config.host.is_loopback() && config.allowed_hosts.is_empty() {
        tracing::warn!(
            "listening on a non-loopback address: set ALLOWED_HOSTS to the names clients use"
        );
    }
    tracing::info!(%local, "mcp-daemon listening on http://{local}/mcp (also /sse, /http, /health)");
    let state = app::http_state(&config, engine);
    app::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Prints the effective configuration and catalog; fails (exit 1) when either is invalid.
fn check_config(config: &Config) -> anyhow::Result<()> {
    let valid = config.validate();
    let catalog = Catalog::load(config.config_file.as_deref())?;
    let report = serde_json::json!({
        "valid": valid.is_ok(),
        "config": config.effective(),
        "catalog": {
            "tools": catalog.tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "resources": catalog.resources.iter().map(|r| r.uri.clone()).collect::<Vec<_>>(),
            "resource_templates": catalog.templates.iter().map(|t| t.listing["uriTemplate"].clone()).collect::<Vec<_>>(),
            "prompts": catalog.prompts.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(valid?)
}

/// SIGHUP re-reads the MCP config file; clients get `notifications/*/list_changed`.
fn spawn_reload_on_sighup(config: &Config, engine: Arc<mcp_daemon::engine::Engine>) {
    let path = config.config_file.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            match Catalog::load(path.as_deref()) {
                Ok(next) => {
                    engine.replace_catalog(next).await;
                    tracing::info!("config reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "config reload failed; keeping the previous catalog")
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
