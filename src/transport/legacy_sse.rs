//! The 2024-11-05 HTTP+SSE transport: `GET /sse` opens a session and announces where to POST
//! (`event: endpoint`); `POST /messages?session_id=…` answers 202 and every response and
//! server message goes out on the SSE stream as `event: message`. The session lives as long as
//! the SSE connection.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::HttpState;
use super::http::{accepted, accepts, find_session, not_acceptable, read_body, require_json};
use super::http_error::HttpError;
use super::sse::{self, SseOptions};
use crate::auth::Principal;
use crate::auth::http::guard::check_tool_scopes;
use crate::engine::Engine;
use crate::protocol::{Message, Request, Response as RpcResponse};
use crate::protocol::{PartitionKey, jsonrpc};
use crate::state::{EventLog, ReplayFrom, SessionId, SessionRecord, StreamKey, TransportKind};

/// Ends the session when the SSE connection goes away.
struct SessionGuard {
    engine: Arc<Engine>,
    session: SessionId,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let session = self.session.clone();
        // Dropped outside a runtime (process shutdown): the in-memory session dies with it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = engine.end_session(&session).await {
                tracing::warn!(session = %session, error = %e, "could not end an SSE session");
            }
        });
    }
}

/// `GET /sse` (or `/{endpoint_id}/sse`): a session of the path's partition.
pub async fn sse_get(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    if !accepts(&headers, "text/event-stream") {
        return Err(not_acceptable("text/event-stream"));
    }
    // `""` or `/{endpoint_id}`: the messages endpoint sits beside this one.
    let prefix = uri
        .path()
        .trim_end_matches('/')
        .strip_suffix("/sse")
        .unwrap_or_default()
        .to_string();
    let engine = &state.engine;
    let session = engine
        .open_session(&principal, &partition, TransportKind::LegacySse, None)
        .await?;
    let guard = SessionGuard {
        engine: engine.clone(),
        session: session.id.clone(),
    };
    let key = StreamKey::new(&session.id, StreamKey::LEGACY_SSE_STREAM);
    engine
        .ensure_notification_pump(key.clone(), partition)
        .await?;
    let events = engine
        .backends
        .events
        .subscribe(&key, ReplayFrom::Start)
        .await?
        .ok_or_else(HttpError::session_not_found)?;
    // Relative and same-origin: the Python client refuses an endpoint on another origin.
    let endpoint = format!("{prefix}/messages?session_id={}", session.id);
    let prelude = sse::frame(
        None,
        Some("endpoint"),
        &endpoint,
        Some(state.settings.sse_retry_ms),
    );
    let opts = SseOptions {
        keepalive: state.settings.sse_keepalive,
        retry_ms: state.settings.sse_retry_ms,
        priming: false,
        event_name: Some("message"),
    };
    tracing::debug!(session = %session.id, "legacy SSE session opened");
    Ok(sse::response(sse::body(
        key,
        events,
        opts,
        Some(prelude),
        None,
        guard,
    )))
}

#[derive(Deserialize)]
pub struct SessionQuery {
    session_id: Option<String>,
    #[serde(rename = "sessionId")]
    session_id_camel: Option<String>,
}

/// `POST /messages?session_id=…`.
pub async fn messages_post(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    Query(q): Query<SessionQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let raw = q
        .session_id
        .or(q.session_id_camel)
        .ok_or_else(|| HttpError::bad_request("session_id query parameter is required"))?;
    if SessionId::parse(&raw).is_none() {
        return Err(HttpError::bad_request("session_id is not valid"));
    }
    let session = find_session(&state, &raw, &principal, &partition).await?;
    if session.transport != TransportKind::LegacySse {
        return Err(HttpError::session_not_found());
    }
    require_json(&headers)?;
    let bytes = read_body(&state, &headers, body).await?;
    let message = jsonrpc::parse_single(&bytes, state.settings.max_json_depth)
        .map_err(|e| HttpError::from_rpc(StatusCode::BAD_REQUEST, e))?;
    if let Message::Request(req) = &message {
        check_tool_scopes(&state, &principal, &partition, &headers, uri.path(), req).await?;
    }
    let engine = state.engine.clone();
    let key = StreamKey::new(&session.id, StreamKey::LEGACY_SSE_STREAM);
    match message {
        Message::Request(req) if req.method == "initialize" => {
            let params = req.params.as_ref().unwrap_or(&Value::Null);
            let answer = match engine.negotiate(&partition, params).await {
                Ok(n) => {
                    engine
                        .backends
                        .sessions
                        .modify(&session.id, &|s| n.apply(s))
                        .await?
                        .ok_or_else(HttpError::session_not_found)?;
                    RpcResponse::ok(req.id, n.result)
                }
                Err(e) => RpcResponse::err(Some(req.id), e),
            };
            engine
                .backends
                .events
                .append(&key, answer.to_json().into(), false)
                .await?;
        }
        Message::Request(req) => spawn_request(engine, principal, session, key, req),
        Message::Notification(n) => engine.handle_notification(Some(&session), &n),
        Message::Response(r) => engine.handle_response(&session.id, r),
    }
    Ok(accepted())
}

/// Runs one request; its messages and its response go to the session's SSE stream in order.
fn spawn_request(
    engine: Arc<Engine>,
    principal: Principal,
    session: SessionRecord,
    key: StreamKey,
    req: Request,
) {
    let events: Arc<dyn EventLog> = engine.backends.events.clone();
    tokio::spawn(engine.run_ordered(principal, session, req, move |message| {
        let (events, key) = (events.clone(), key.clone());
        async move {
            if let Err(e) = events.append(&key, message.to_string().into(), false).await {
                tracing::warn!(session = %key.session, error = %e, "could not buffer an SSE message");
            }
        }
    }));
}
