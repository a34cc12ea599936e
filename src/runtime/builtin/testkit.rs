//! `mcp_testkit`: functions that make behaviour observable from outside, for the project's
//! own integration and interop tests (long-running work, counters, resource-change triggers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Builtin, CallFuture, Module, required_str};
use crate::runtime::{Ctx, Function, FunctionError, Output};
use crate::state::LogLevel;

pub const MODULE: &str = "mcp_testkit";

/// Counts `testkit_sleep` runs of one server instance.
#[derive(Default)]
struct Stats {
    started: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
}

#[derive(Default)]
pub struct Testkit {
    stats: Arc<Stats>,
}

impl Module for Testkit {
    fn function(&self, name: &str) -> Option<Arc<dyn Function>> {
        let stats = self.stats.clone();
        Some(match name {
            "sleep" => Arc::new(Builtin(move |ctx, args| {
                Box::pin(sleep(stats.clone(), ctx, args)) as CallFuture
            })),
            "stats" => Arc::new(Builtin(move |_, _| {
                let s = stats.clone();
                Box::pin(async move {
                    Ok(Output::Json(json!({
                        "started": s.started.load(Ordering::SeqCst),
                        "completed": s.completed.load(Ordering::SeqCst),
                        "cancelled": s.cancelled.load(Ordering::SeqCst),
                    })))
                }) as CallFuture
            })),
            "notify_resource" => Arc::new(Builtin(|ctx, args| {
                Box::pin(notify_resource(ctx, args)) as CallFuture
            })),
            "session_log" => Arc::new(Builtin(|ctx, args| {
                Box::pin(session_log(ctx, args)) as CallFuture
            })),
            "whoami" => Arc::new(Builtin(|ctx, _| Box::pin(whoami(ctx)) as CallFuture)),
            "list_roots" => Arc::new(Builtin(|ctx, _| Box::pin(list_roots(ctx)) as CallFuture)),
            _ => return None,
        })
    }
}

/// Counts a run as cancelled when its future is dropped before it completed.
struct RunGuard {
    stats: Arc<Stats>,
    done: bool,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.done {
            self.stats.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn sleep(stats: Arc<Stats>, ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let ms = args
        .get("ms")
        .and_then(Value::as_u64)
        .unwrap_or(1000)
        .min(600_000);
    let steps = args
        .get("steps")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .clamp(1, 1000);
    stats.started.fetch_add(1, Ordering::SeqCst);
    let mut guard = RunGuard {
        stats: stats.clone(),
        done: false,
    };
    for step in 1..=steps {
        // A cancelled call ends at once (the guard counts it), as a well-behaved function does.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms / steps)) => {}
            _ = ctx.cancel.cancelled() => {
                return Err(FunctionError::Client(crate::runtime::ClientRequestError::Cancelled));
            }
        }
        ctx.progress(
            step as f64,
            Some(steps as f64),
            Some(&format!("step {step}/{steps}")),
        )
        .await;
    }
    guard.done = true;
    stats.completed.fetch_add(1, Ordering::SeqCst);
    Ok(Output::Text(format!("slept {ms} ms")))
}

async fn notify_resource(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let uri = required_str(&args, "uri")?;
    ctx.resource_updated(&uri).await;
    Ok(Output::Text(format!("notified {uri}")))
}

/// Logs `message` on the session's own stream (not the request's), as background work does.
async fn session_log(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let message = required_str(&args, "message")?;
    ctx.log_to_session(LogLevel::Info, "testkit", json!(message))
        .await;
    Ok(Output::Text(format!("logged {message}")))
}

async fn whoami(ctx: Arc<Ctx>) -> Result<Output, FunctionError> {
    Ok(Output::Json(json!({
        "session": ctx.session_id.as_ref().map(|s| s.to_string()),
        "subject": ctx.principal.subject,
    })))
}

/// Asks the client for its roots (`roots/list`) and returns what it said.
async fn list_roots(ctx: Arc<Ctx>) -> Result<Output, FunctionError> {
    let roots = ctx.request_client("roots/list", json!({})).await?;
    Ok(Output::Json(roots))
}
