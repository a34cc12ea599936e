//! Runs the requests of one POST and decides how to answer: plain JSON when every request
//! finished before anything else had to be sent (the cheap path), otherwise an SSE stream that
//! is written to the replay buffer, so a dropped connection can be resumed with Last-Event-ID.

use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::auth::Principal;
use crate::engine::{Call, Outgoing};
use crate::protocol::{Request, Response as RpcResponse};
use crate::state::{ReplayFrom, SessionRecord, StateError, StateErrorKind, StreamKey};
use crate::transport::HttpState;
use crate::transport::http::{accepted, json_response};
use crate::transport::http_error::HttpError;
use crate::transport::sse::{self, SseOptions};

/// Room for messages a function sends before the transport catches up.
const OUT_CAPACITY: usize = 64;

pub async fn run(
    state: &HttpState,
    principal: Principal,
    session: SessionRecord,
    requests: Vec<Request>,
    batch: bool,
) -> Result<Response, HttpError> {
    let total = requests.len();
    let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(OUT_CAPACITY);
    let (fin_tx, mut fin_rx) = mpsc::channel::<Option<RpcResponse>>(total.max(1));
    for req in requests {
        // Spawned, so a client that disconnects does not cancel the work (spec: disconnect is
        // not cancellation); the result still lands in the replay buffer.
        let engine = state.engine.clone();
        let call = Call::legacy(
            principal.clone(),
            session.partition.clone(),
            Some(session.clone()),
            Some(out_tx.clone()),
        );
        let fin_tx = fin_tx.clone();
        tokio::spawn(async move {
            let _ = fin_tx.send(engine.handle_request(call, req).await).await;
        });
    }
    drop(out_tx);
    drop(fin_tx);

    let mut finals: Vec<Option<RpcResponse>> = Vec::with_capacity(total);
    loop {
        tokio::select! {
            biased;
            f = fin_rx.recv() => match f {
                Some(r) => {
                    finals.push(r);
                    if finals.len() == total {
                        // Messages sent before the last response must not be lost.
                        if let Ok(first) = out_rx.try_recv() {
                            return stream(state, &session, first, out_rx, fin_rx, finals).await;
                        }
                        return Ok(json_answer(finals, batch));
                    }
                }
                None => return Ok(json_answer(finals, batch)),
            },
            m = out_rx.recv() => match m {
                Some(first) => return stream(state, &session, first, out_rx, fin_rx, finals).await,
                None => continue,
            },
        }
    }
}

fn json_answer(finals: Vec<Option<RpcResponse>>, batch: bool) -> Response {
    let answers: Vec<Value> = finals.into_iter().flatten().map(|r| r.to_value()).collect();
    match (batch, answers.len()) {
        // A cancelled request gets no response (spec cancellation §).
        (_, 0) => accepted(),
        (false, _) => json_response(&answers[0], None),
        (true, _) => json_response(&Value::Array(answers), None),
    }
}

/// Switches to SSE: a pump task copies every message and response into a fresh replay stream;
/// the HTTP body follows that stream until the last response, or until a function asks to
/// close the connection early (the client then resumes with `Last-Event-ID`).
async fn stream(
    state: &HttpState,
    session: &SessionRecord,
    first: Outgoing,
    mut out_rx: mpsc::Receiver<Outgoing>,
    mut fin_rx: mpsc::Receiver<Option<RpcResponse>>,
    mut finals: Vec<Option<RpcResponse>>,
) -> Result<Response, HttpError> {
    let events = state.engine.backends.events.clone();
    let key = StreamKey::new_post_stream(&session.id);
    let priming = session
        .protocol_version
        .is_some_and(|v| v.wants_priming_event());
    events.open(&key).await?;
    if priming {
        events.append(&key, Arc::from(""), false).await?;
    }
    let subscription = events
        .subscribe(&key, ReplayFrom::Start)
        .await?
        .ok_or_else(|| {
            HttpError::from(StateError {
                kind: StateErrorKind::Internal,
                cause: "a fresh stream vanished".into(),
            })
        })?;
    let (close_tx, close_rx) = oneshot::channel::<()>();
    let pump_key = key.clone();
    tokio::spawn(async move {
        let mut close_tx = Some(close_tx);
        let write = |data: String, last: bool| {
            let events = events.clone();
            let key = pump_key.clone();
            async move {
                if let Err(e) = events.append(&key, data.into(), last).await {
                    tracing::warn!(stream = %key.stream, error = %e, "could not buffer an SSE event");
                }
            }
        };
        let mut forward = async |item: Outgoing| match item {
            Outgoing::Message(m) => write(m.to_string(), false).await,
            Outgoing::CloseStream => {
                if let Some(tx) = close_tx.take() {
                    let _ = tx.send(());
                }
            }
        };
        forward(first).await;
        let mut done: Vec<RpcResponse> = finals.drain(..).flatten().collect();
        let mut messages_open = true;
        loop {
            tokio::select! {
                biased;
                m = out_rx.recv(), if messages_open => match m {
                    Some(m) => forward(m).await,
                    None => messages_open = false,
                },
                f = fin_rx.recv() => match f {
                    Some(r) => done.extend(r),
                    None => break, // every request has finished
                },
            }
        }
        while let Ok(m) = out_rx.try_recv() {
            forward(m).await;
        }
        let n = done.len();
        for (i, r) in done.into_iter().enumerate() {
            write(r.to_json(), i + 1 == n).await;
        }
        if n == 0 {
            write(String::new(), true).await; // every request was cancelled: just end the stream
        }
    });
    let opts = SseOptions {
        keepalive: state.settings.sse_keepalive,
        retry_ms: state.settings.sse_retry_ms,
        priming,
        event_name: None,
    };
    Ok(sse::response(sse::body(
        key,
        subscription,
        opts,
        None,
        Some(close_rx),
        (),
    )))
}
