//! Helpers shared by the HTTP transports: bounded body reading, header checks, session loading
//! with owner binding, JSON responses.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::HttpState;
use super::http_error::HttpError;
use super::server::BodyReadError;
use crate::auth::Principal;
use crate::protocol::{PartitionKey, ProtocolVersion};
use crate::state::{SessionId, SessionRecord};

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
pub const LAST_EVENT_ID: &str = "last-event-id";
/// The part id of the partition (`Part-ID`, any case: header names are case-insensitive).
pub const PART_ID_HEADER: &str = "part-id";

/// Reads the whole body, refusing more than the configured limit with 413 and a body slower
/// than the body read timeout with 408.
pub async fn read_body(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, HttpError> {
    let limit = state.settings.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(HttpError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if BodyReadError::is_timeout(e.as_ref()) {
            HttpError::body_timeout(format!(
                "the request body was not received within {} s",
                state.settings.server.body_read_timeout.as_secs()
            ))
        } else {
            HttpError::too_large(limit)
        }
    })
}

/// POST bodies must be JSON (415 otherwise).
pub fn require_json(headers: &HeaderMap) -> Result<(), HttpError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            crate::protocol::codes::SERVER_ERROR,
            "Unsupported Media Type: Content-Type must be application/json",
        ))
    }
}

/// Whether `Accept` admits `mime` (a missing header or `*/*` admits everything).
pub fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let (kind, _) = mime.split_once('/').unwrap_or((mime, ""));
    accept
        .split(',')
        .map(|p| p.split(';').next().unwrap_or("").trim())
        .any(|m| {
            m.eq_ignore_ascii_case(mime)
                || m == "*/*"
                || m.eq_ignore_ascii_case(&format!("{kind}/*"))
        })
}

pub fn not_acceptable(what: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_ACCEPTABLE,
        crate::protocol::codes::SERVER_ERROR,
        format!("Not Acceptable: the client must accept {what}"),
    )
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GET and DELETE belong to sessions; a stateless-era client (modern version header, no
/// session) gets 405 (MCP 2026-07-28 streamable-http §Endpoint).
pub fn refuse_stateless(headers: &HeaderMap) -> Result<(), HttpError> {
    let modern =
        header_str(headers, VERSION_HEADER).is_some_and(|v| ProtocolVersion::parse(v).is_none());
    if modern && header_str(headers, SESSION_HEADER).is_none() {
        return Err(HttpError::method_not_allowed());
    }
    Ok(())
}

/// Loads the session named by `Mcp-Session-Id` (sliding its TTL). Missing header: 400. Unknown,
/// expired, malformed, owned by someone else or opened in another partition: 404,
/// indistinguishable on purpose.
pub async fn load_session(
    state: &HttpState,
    headers: &HeaderMap,
    principal: &Principal,
    partition: &PartitionKey,
) -> Result<SessionRecord, HttpError> {
    let raw = header_str(headers, SESSION_HEADER)
        .ok_or_else(|| HttpError::bad_request("Mcp-Session-Id header is required"))?;
    find_session(state, raw, principal, partition).await
}

pub async fn find_session(
    state: &HttpState,
    raw: &str,
    principal: &Principal,
    partition: &PartitionKey,
) -> Result<SessionRecord, HttpError> {
    let id = SessionId::parse(raw).ok_or_else(HttpError::session_not_found)?;
    match state.engine.backends.sessions.get(&id).await? {
        Some(s) if s.subject == principal.subject && s.partition == *partition => Ok(s),
        _ => Err(HttpError::session_not_found()),
    }
}

/// `MCP-Protocol-Version` on a session request: unsupported -> 400; a supported version other
/// than the negotiated one -> 400. Absent: the negotiated version applies.
pub fn check_version_header(headers: &HeaderMap, session: &SessionRecord) -> Result<(), HttpError> {
    let Some(raw) = header_str(headers, VERSION_HEADER) else {
        return Ok(());
    };
    let Some(v) = ProtocolVersion::parse(raw) else {
        return Err(HttpError::bad_request(format!(
            "Unsupported protocol version '{raw}' (supported: {})",
            ProtocolVersion::supported_strings().join(", ")
        )));
    };
    match session.protocol_version {
        Some(negotiated) if negotiated != v => Err(HttpError::bad_request(format!(
            "MCP-Protocol-Version '{raw}' does not match the negotiated version {negotiated}"
        ))),
        _ => Ok(()),
    }
}

pub fn json_response(value: &Value, session: Option<&SessionId>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response();
    if let Some(id) = session
        && let Ok(v) = HeaderValue::from_str(id.as_str())
    {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_matching() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, "text/event-stream"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts(&h, "text/event-stream") && accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/*;q=0.9"));
        assert!(accepts(&h, "text/event-stream"));
        assert!(!accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(accepts(&h, "application/json"));
    }
}
