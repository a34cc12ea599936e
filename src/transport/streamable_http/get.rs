//! GET: the session's own stream for server-initiated messages, or — with `Last-Event-ID` —
//! the resumption of the stream that event came from (its replay, then its live tail).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::auth::Principal;
use crate::protocol::PartitionKey;
use crate::protocol::codes;
use crate::state::{ReplayFrom, StreamKey};
use crate::transport::HttpState;
use crate::transport::http::{
    LAST_EVENT_ID, accepts, check_version_header, header_str, load_session, not_acceptable,
    refuse_stateless,
};
use crate::transport::http_error::HttpError;
use crate::transport::sse::{self, SseOptions};

pub async fn mcp_get(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    if !accepts(&headers, "text/event-stream") {
        return Err(not_acceptable("text/event-stream"));
    }
    refuse_stateless(&headers)?;
    let session = load_session(&state, &headers, &principal, &partition).await?;
    check_version_header(&headers, &session)?;
    let events = &state.engine.backends.events;
    let opts = SseOptions {
        keepalive: state.settings.sse_keepalive,
        retry_ms: state.settings.sse_retry_ms,
        priming: session
            .protocol_version
            .is_some_and(|v| v.wants_priming_event()),
        event_name: None,
    };

    let resume = match header_str(&headers, LAST_EVENT_ID) {
        Some(raw) => Some(StreamKey::parse_event_id(raw).ok_or_else(|| {
            HttpError::bad_request(format!(
                "Last-Event-ID '{raw}' was not issued by this server"
            ))
        })?),
        None => None,
    };
    // Resuming a POST stream: replay strictly within this session's stream of that name.
    if let Some((stream, seq)) = &resume
        && stream != StreamKey::GET_STREAM
    {
        let key = StreamKey::new(&session.id, stream);
        let replay = events
            .subscribe(&key, ReplayFrom::After(*seq))
            .await?
            .ok_or_else(|| {
                HttpError::bad_request("the stream of that Last-Event-ID is no longer available")
            })?;
        return Ok(sse::response(sse::body(key, replay, opts, None, None, ())));
    }

    let (lease, closed) = state.engine.open_get_stream(&session.id).ok_or_else(|| {
        HttpError::new(
            StatusCode::CONFLICT,
            codes::SERVER_ERROR,
            "Conflict: only one GET stream per session is allowed",
        )
    })?;
    let key = StreamKey::new(&session.id, StreamKey::GET_STREAM);
    state
        .engine
        .ensure_notification_pump(key.clone(), session.partition.clone())
        .await?;
    let from = match resume {
        Some((_, seq)) => ReplayFrom::After(seq),
        None => ReplayFrom::Live,
    };
    let live = events
        .subscribe(&key, from)
        .await?
        .ok_or_else(HttpError::session_not_found)?;
    if opts.priming && from == ReplayFrom::Live {
        events.append(&key, Arc::from(""), false).await?;
    }
    Ok(sse::response(sse::body(
        key,
        live,
        opts,
        None,
        Some(closed),
        lease,
    )))
}
