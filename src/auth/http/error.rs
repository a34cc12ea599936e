//! The one place OAuth errors become HTTP: RFC 6749 §5.2 JSON bodies (`error`,
//! `error_description`), `Cache-Control: no-store`, 401 for client authentication failures,
//! 429 with `Retry-After` when throttled, 503 when a backend is down or registration is full,
//! 500 with nothing inside for bugs.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::oauth::OAuthError;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::RegistrationClosed(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Unavailable(e) => {
                tracing::error!(error = %e, "OAuth request failed: state backend");
                StatusCode::SERVICE_UNAVAILABLE
            }
            OAuthError::Server(cause) => {
                tracing::error!(%cause, "OAuth request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let retry_after = match &self {
            OAuthError::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        let mut resp = (
            status,
            Json(json!({"error": self.code(), "error_description": self.to_string()})),
        )
            .into_response();
        no_store(&mut resp);
        if let Some(s) = retry_after {
            self::retry_after(&mut resp, s);
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcp-daemon\""),
            );
        }
        resp
    }
}

/// Tokens and pages that carry secrets must never be cached (RFC 6749 §5.1).
pub fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3), on 429 and "busy" answers.
pub fn retry_after(resp: &mut Response, secs: u64) {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
}
