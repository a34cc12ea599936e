//! The one place where transport and state errors become HTTP responses: a status plus a
//! JSON-RPC error body. 5xx bodies never carry internals; the cause is logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::{RequestId, Response as RpcResponse, RpcError, codes};
use crate::state::{StateError, StateErrorKind};

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub error: RpcError,
    pub id: Option<RequestId>,
    /// `WWW-Authenticate` of a 401/403 (RFC 6750 §3).
    pub challenge: Option<String>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            error: RpcError::new(code, message),
            id: None,
            challenge: None,
        }
    }
    pub fn from_rpc(status: StatusCode, rpc: RpcResponse) -> Self {
        match rpc.outcome {
            Err(error) => Self {
                status,
                error,
                id: rpc.id,
                challenge: None,
            },
            Ok(_) => Self::new(status, codes::SERVER_ERROR, "Bad Request"),
        }
    }
    /// A JSON-RPC error the engine answered before the request could run (its message is
    /// already safe to show).
    pub fn rpc(status: StatusCode, error: RpcError) -> Self {
        Self {
            status,
            error,
            id: None,
            challenge: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::SERVER_ERROR,
            format!("Bad Request: {}", message.into()),
        )
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_REQUEST,
            format!("Invalid Request: {}", message.into()),
        )
    }
    /// Unknown, expired or foreign session: 404 so the client re-initializes (spec §Session
    /// Management; 400/401 here leave clients stuck).
    pub fn session_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::SESSION_NOT_FOUND,
            "Session not found",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            codes::SERVER_ERROR,
            format!("Forbidden: {}", message.into()),
        )
    }
    /// 401 (no or bad token) or 403 (insufficient scope) with its `WWW-Authenticate` challenge.
    pub fn auth(status: StatusCode, challenge: String, message: impl Into<String>) -> Self {
        Self {
            challenge: Some(challenge),
            ..Self::new(status, codes::SERVER_ERROR, message)
        }
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::INVALID_REQUEST,
            format!("Request body exceeds the {limit}-byte limit"),
        )
    }
    /// The body did not arrive within the body read timeout (the connection is closed after).
    pub fn body_timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            codes::INVALID_REQUEST,
            format!("Request Timeout: {}", message.into()),
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::SERVER_ERROR,
            "Method not allowed",
        )
    }
}

/// A refused session is 429 (the caller holds too many: ending one lets it in again).
impl From<crate::engine::OpenSessionError> for HttpError {
    fn from(e: crate::engine::OpenSessionError) -> Self {
        match e {
            crate::engine::OpenSessionError::TooMany(error) => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                error,
                id: None,
                challenge: None,
            },
            crate::engine::OpenSessionError::State(e) => e.into(),
        }
    }
}

impl From<StateError> for HttpError {
    fn from(e: StateError) -> Self {
        tracing::error!(error = %e, "state backend failed");
        match e.kind {
            StateErrorKind::Unavailable | StateErrorKind::Timeout => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::INTERNAL_ERROR,
                "Service unavailable, retry later",
            ),
            StateErrorKind::Internal => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL_ERROR,
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = RpcResponse::err(self.id, self.error).to_json();
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        resp
    }
}
