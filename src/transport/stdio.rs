//! stdio: newline-delimited JSON-RPC on stdin/stdout (spec basic/transports §stdio). Nothing but
//! protocol goes to stdout; logs go to stderr. The process ends when stdin closes.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::auth::Principal;
use crate::engine::{Engine, OpenSessionError};
use crate::protocol::PartitionKey;
use crate::protocol::{Message, Request, Response, RpcError, jsonrpc};
use crate::state::{SessionRecord, TransportKind};

/// Serves one client over the given reader/writer until the reader ends.
pub async fn serve<R, W>(
    engine: Arc<Engine>,
    principal: Principal,
    input: R,
    output: W,
    max_line: usize,
    max_depth: usize,
) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<Value>(256);
    let writer = tokio::spawn(write_lines(output, out_rx));
    let mut lines = FramedRead::new(input, LinesCodec::new_with_max_length(max_line));
    let mut session: Option<SessionRecord> = None;
    let mut notifier: Option<JoinHandle<()>> = None;

    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(l) => l,
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                let e = RpcError::invalid_request(format!(
                    "Invalid Request: message longer than {max_line} bytes"
                ));
                let _ = out_tx.send(Response::err(None, e).to_value()).await;
                continue;
            }
            Err(LinesCodecError::Io(e)) => return Err(e.into()),
        };
        if line.trim().is_empty() {
            continue;
        }
        let message = match jsonrpc::parse_single(line.as_bytes(), max_depth) {
            Ok(m) => m,
            Err(resp) => {
                let _ = out_tx.send(resp.to_value()).await;
                continue;
            }
        };
        match message {
            Message::Request(req) if req.method == "initialize" => {
                let answer = initialize(
                    &engine,
                    &principal,
                    &req,
                    &mut session,
                    &mut notifier,
                    &out_tx,
                )
                .await;
                let _ = out_tx.send(answer.to_value()).await;
            }
            Message::Request(req) => {
                let Some(s) = session.as_ref() else {
                    let e = RpcError::invalid_request("Invalid Request: send initialize first");
                    let _ = out_tx.send(Response::err(Some(req.id), e).to_value()).await;
                    continue;
                };
                // Reload: logging/setLevel and subscriptions change the stored record.
                let current = engine
                    .backends
                    .sessions
                    .get(&s.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| s.clone());
                spawn_request(&engine, principal.clone(), current, req, out_tx.clone());
            }
            Message::Notification(n) => engine.handle_notification(session.as_ref(), &n),
            Message::Response(r) => {
                if let Some(s) = &session {
                    engine.handle_response(&s.id, r);
                }
            }
        }
    }
    if let Some(n) = notifier {
        n.abort();
    }
    if let Some(s) = session {
        engine.end_session(&s.id).await?;
    }
    drop(out_tx);
    // Let queued output reach stdout, but never hang on it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    Ok(())
}

async fn initialize(
    engine: &Arc<Engine>,
    principal: &Principal,
    req: &Request,
    session: &mut Option<SessionRecord>,
    notifier: &mut Option<JoinHandle<()>>,
    out: &mpsc::Sender<Value>,
) -> Response {
    if session.is_some() {
        return Response::err(
            Some(req.id.clone()),
            RpcError::invalid_request("Invalid Request: already initialized"),
        );
    }
    let partition = PartitionKey::default();
    let n = match engine
        .negotiate(&partition, req.params.as_ref().unwrap_or(&Value::Null))
        .await
    {
        Ok(n) => n,
        Err(e) => return Response::err(Some(req.id.clone()), e),
    };
    let record = match engine
        .open_session(principal, &partition, TransportKind::Stdio, Some(&n))
        .await
    {
        Ok(r) => r,
        Err(OpenSessionError::TooMany(e)) => return Response::err(Some(req.id.clone()), e),
        Err(OpenSessionError::State(e)) => {
            return Response::err(Some(req.id.clone()), crate::engine::state_error(e));
        }
    };
    // Server-initiated notifications (list changes, resource updates) go straight to stdout.
    match engine
        .session_notifications(record.id.clone(), partition)
        .await
    {
        Ok(mut notes) => {
            let out = out.clone();
            *notifier = Some(tokio::spawn(async move {
                while let Some(n) = notes.next().await {
                    if out.send(n).await.is_err() {
                        break;
                    }
                }
            }));
        }
        Err(e) => tracing::warn!(error = %e, "notifications unavailable for this stdio session"),
    }
    *session = Some(record);
    Response::ok(req.id.clone(), n.result)
}

/// Runs one request; its messages and then its response go to stdout in order.
fn spawn_request(
    engine: &Arc<Engine>,
    principal: Principal,
    session: SessionRecord,
    req: Request,
    out: mpsc::Sender<Value>,
) {
    tokio::spawn(
        engine
            .clone()
            .run_ordered(principal, session, req, move |message| {
                let out = out.clone();
                async move {
                    let _ = out.send(message).await;
                }
            }),
    );
}

async fn write_lines<W: AsyncWrite + Unpin>(mut output: W, mut rx: mpsc::Receiver<Value>) {
    while let Some(v) = rx.recv().await {
        let mut line = v.to_string();
        line.push('\n');
        if output.write_all(line.as_bytes()).await.is_err() || output.flush().await.is_err() {
            break;
        }
    }
}
