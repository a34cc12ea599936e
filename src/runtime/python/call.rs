//! One call on a worker: the request frame, then the frames the function sends while it runs
//! (progress, client log messages, questions for the client) until its result, under the
//! call's deadline, the client's cancellation and the runtime's shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until};

use super::pool::Lease;
use super::worker::{FromWorker, Out, ReadError, Worker};
use crate::runtime::{ClientRequestError, Ctx, FunctionError, Kind, Output};
use crate::state::LogLevel;

/// A bound function as the worker needs it (sent once per worker, then named by id).
#[derive(Debug, Serialize)]
pub struct FnDef {
    pub kind: &'static str,
    pub entry: String,
    pub module: String,
    #[serde(rename = "class")]
    pub class: Option<String>,
    pub function: String,
    pub setting: Value,
    pub return_type: &'static str,
    pub is_async: bool,
}

#[derive(Serialize)]
struct CallFrame<'a> {
    t: &'static str,
    id: u64,
    f: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    def: Option<&'a FnDef>,
    entry: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    partition: (&'a str, Option<&'a str>),
}

/// What the call needs from the runtime's settings.
pub struct CallLimits {
    pub deadline: Instant,
    pub timeout: Duration,
    pub cancel_grace: Duration,
    pub cpu_per_call: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// Runs the call on the leased worker. The lease's worker is marked busy for the duration:
/// if this future is dropped half-way, the worker is killed rather than reused.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    lease: &mut Lease,
    shutdown: &tokio_util::sync::CancellationToken,
    fid: u64,
    def: &FnDef,
    kind: Kind,
    ctx: &Arc<Ctx>,
    args: &Value,
    mut limits: CallLimits,
) -> Result<Output, FunctionError> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let entry = if ctx.entry.is_empty() {
        def.entry.as_str()
    } else {
        ctx.entry.as_str()
    };
    let Some(w) = lease.worker() else {
        return Err(FunctionError::Failed(format!("{entry}: no worker")));
    };
    w.busy = true;
    w.calls += 1;
    let (endpoint, part) = match ctx.partition.split_once('#') {
        Some((e, p)) => (e, Some(p)),
        None => (ctx.partition.as_ref(), None),
    };
    let frame = CallFrame {
        t: "call",
        id,
        f: fid,
        def: (!w.known.contains(&fid)).then_some(def),
        entry,
        args: (kind != Kind::Resource).then_some(args),
        uri: (kind == Kind::Resource)
            .then(|| args.get("uri").and_then(Value::as_str))
            .flatten(),
        name: (kind == Kind::Prompt).then_some(entry),
        partition: (endpoint, part),
    };
    let bytes = serde_json::to_vec(&frame)
        .map_err(|e| FunctionError::Failed(format!("{entry}: cannot encode the call: {e}")))?;
    if w.send(&bytes).await.is_err() {
        let why = w.ended_because(limits.cpu_per_call).await;
        lease.take();
        return Err(FunctionError::Failed(format!(
            "{entry}: the python worker {why}"
        )));
    }
    w.known.insert(fid);
    let mut client_errors: HashMap<String, ClientRequestError> = HashMap::new();
    let mut cancel_by: Option<Instant> = None;
    loop {
        let Some(w) = lease.worker() else {
            return Err(FunctionError::Failed(format!("{entry}: no worker")));
        };
        let frame = tokio::select! {
            biased;
            f = w.next() => f,
            _ = sleep_until(limits.deadline) => {
                tracing::warn!(function = entry, pid = w.pid, "python call past its deadline: worker killed");
                lease.discard().await;
                return Err(FunctionError::Failed(format!(
                    "{entry} did not finish within {}s; its worker was stopped",
                    limits.timeout.as_secs_f64()
                )));
            }
            _ = ctx.cancel.cancelled(), if cancel_by.is_none() => {
                // SIGUSR1: the shim raises KeyboardInterrupt (or cancels the coroutine) and
                // sets `context.cancelled`; a real signal also interrupts blocking calls.
                w.signal(rustix::process::Signal::USR1);
                cancel_by = Some(Instant::now() + limits.cancel_grace);
                continue;
            }
            _ = sleep_until(cancel_by.unwrap_or(limits.deadline)), if cancel_by.is_some() => {
                tracing::warn!(function = entry, pid = w.pid, "python call did not end after its cancellation: worker killed");
                lease.discard().await;
                return Err(FunctionError::Client(ClientRequestError::Cancelled));
            }
            _ = shutdown.cancelled() => {
                lease.discard().await;
                return Err(FunctionError::Failed(format!("{entry}: the server is shutting down")));
            }
        };
        let frame = match frame {
            Ok(f) => f,
            Err(ReadError::Closed) => {
                let why = w.ended_because(limits.cpu_per_call).await;
                tracing::warn!(function = entry, pid = w.pid, "python worker {why}");
                lease.take();
                return Err(FunctionError::Failed(format!(
                    "{entry}: the python worker {why}"
                )));
            }
            Err(ReadError::Bad(why)) => {
                tracing::warn!(
                    function = entry,
                    pid = w.pid,
                    "python worker sent {why}: killed"
                );
                lease.discard().await;
                return Err(FunctionError::Failed(format!(
                    "{entry}: the python worker sent {why}"
                )));
            }
        };
        match frame {
            FromWorker::Ok {
                id: got,
                out,
                cpu,
                kids,
            } if got == id => {
                return finished(lease, entry, cpu, kids, Ok(output(out))).await;
            }
            FromWorker::Err {
                id: got,
                kind,
                msg,
                rid,
                cpu,
                kids,
            } if got == id => {
                let result = failure(entry, &kind, msg, rid, &mut client_errors, &limits);
                if kind == "memory" || kind == "protocol" {
                    if let Some(w) = lease.worker() {
                        w.busy = true;
                    }
                    lease.discard().await;
                    return result;
                }
                return finished(lease, entry, cpu, kids, result).await;
            }
            FromWorker::Progress {
                id: got,
                progress,
                total,
                message,
            } if got == id => ctx.progress(progress, total, message.as_deref()).await,
            FromWorker::Mcplog {
                id: got,
                level,
                data,
                logger,
            } if got == id => {
                let level = LogLevel::parse(&level).unwrap_or(LogLevel::Info);
                ctx.log(level, logger.as_deref().unwrap_or(entry), data)
                    .await;
            }
            FromWorker::Ask {
                id: got,
                rid,
                method,
                params,
                key,
            } => {
                let asked = Instant::now();
                let answer = if got != id {
                    Err(ClientRequestError::SessionGone)
                } else {
                    let ask = async {
                        match &key {
                            Some(k) => ctx.ask(k, &method, params).await,
                            None => ctx.request_client(&method, params).await,
                        }
                    };
                    tokio::select! {
                        r = ask => r,
                        _ = shutdown.cancelled() => Err(ClientRequestError::SessionGone),
                    }
                };
                // The deadline measures the function's own time, not the client's answer.
                limits.deadline += asked.elapsed();
                let reply = match answer {
                    Ok(result) => json!({"t": "answer", "rid": rid, "result": result}),
                    Err(e) => {
                        let kind = match e {
                            ClientRequestError::InputRequired => "input_required",
                            ClientRequestError::Cancelled => "cancelled",
                            _ => "failed",
                        };
                        let reply = json!({"t": "answer", "rid": rid, "error": {"kind": kind, "message": e.to_string()}});
                        client_errors.insert(rid, e);
                        reply
                    }
                };
                let Some(w) = lease.worker() else {
                    continue;
                };
                if w.send(reply.to_string().as_bytes()).await.is_err() {
                    continue; // the read side reports the end
                }
            }
            // Frames of an earlier call that ended (logs of a thread it left running).
            _ => {}
        }
    }
}

fn output(out: Out) -> Output {
    match out {
        Out::Text(t) => Output::Text(t),
        Out::Content(items) => Output::Content(items),
        Out::Result(v) => Output::Result(v),
    }
}

fn failure(
    entry: &str,
    kind: &str,
    msg: String,
    rid: Option<String>,
    client_errors: &mut HashMap<String, ClientRequestError>,
    limits: &CallLimits,
) -> Result<Output, FunctionError> {
    Err(match kind {
        "client" => match rid.and_then(|r| client_errors.remove(&r)) {
            Some(e) => FunctionError::Client(e),
            None => FunctionError::Failed(msg),
        },
        "cancelled" => FunctionError::Client(ClientRequestError::Cancelled),
        "memory" => FunctionError::Failed(match limits.memory_bytes {
            Some(b) => format!("{entry} ran out of memory (limit {} MiB)", b >> 20),
            None => format!("{entry} ran out of memory"),
        }),
        _ => FunctionError::Failed(msg),
    })
}

/// The end of a call the worker answered. A worker that left processes running is killed
/// with them (and the call fails: the function broke the one-call-at-a-time contract);
/// otherwise it goes back to its pool.
async fn finished(
    lease: &mut Lease,
    entry: &str,
    cpu: f64,
    kids: bool,
    result: Result<Output, FunctionError>,
) -> Result<Output, FunctionError> {
    if kids {
        lease.discard().await;
        return Err(FunctionError::Failed(format!(
            "{entry} left processes running after it returned; they were stopped"
        )));
    }
    if let Some(w) = lease.worker() {
        w.cpu = cpu;
        w.busy = false;
    }
    result
}

/// Whether a worker should be retired after a call: near its lifetime CPU cap, or past its
/// call count.
pub fn worn_out(
    w: &Worker,
    cpu_per_call: Option<u64>,
    cpu_lifetime: Option<u64>,
    max_calls: Option<u64>,
) -> bool {
    let cpu_spent = match (cpu_per_call, cpu_lifetime) {
        (Some(per), Some(life)) => w.cpu + per as f64 >= life as f64,
        _ => false,
    };
    cpu_spent || max_calls.is_some_and(|m| w.calls >= m)
}
