//! `POST /auth/login` (the Python daemon's API): user name and password in, a bearer token
//! for this whole server out.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorize::{SignIn, sign_in};
use super::error::{no_store, retry_after};
use super::{Source, issuer};
use crate::auth::oauth::OAuthError;
use crate::auth::oauth::grants::direct_token;
use crate::transport::HttpState;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

pub async fn auth_login_post(
    State(state): State<HttpState>,
    Source(source): Source,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> Response {
    let auth = state.auth.clone();
    if !auth.enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let refuse = |status: StatusCode, error: &str, why: &str| {
        (
            status,
            Json(json!({"error": error, "error_description": why})),
        )
            .into_response()
    };
    let mut resp = match sign_in(&auth, source, &c.username, &c.password).await {
        Ok((subject, roles)) => {
            match direct_token(&auth, &subject, &roles, &issuer(&state, &headers)) {
                Ok(t) => Json(t).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(SignIn::Refused(_)) => refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "wrong user name or password",
        ),
        Err(SignIn::Throttled(wait)) => OAuthError::throttled(wait).into_response(),
        Err(SignIn::Busy) => {
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server is busy checking other sign-ins; try again in a moment",
            );
            retry_after(&mut r, 1);
            r
        }
        Err(SignIn::Failed(e)) => {
            tracing::error!(error = %e, "sign-in failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "sign-in is unavailable; try again later",
            )
        }
    };
    no_store(&mut resp);
    resp
}
