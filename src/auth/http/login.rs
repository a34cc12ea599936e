//! `POST /auth/login` (the Python daemon's API): user name and password in, a bearer token
//! for this whole server out.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorize::check_password;
use super::error::no_store;
use super::issuer;
use crate::auth::oauth::grants::direct_token;
use crate::transport::HttpState;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

pub async fn auth_login_post(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Json(c): Json<Credentials>,
) -> Response {
    let auth = state.auth.clone();
    if !auth.enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut resp = match check_password(&auth, &c.username, &c.password).await {
        Ok(Some((subject, roles))) => {
            match direct_token(&auth, &subject, &roles, &issuer(&state, &headers)) {
                Ok(t) => Json(t).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_grant", "error_description": "wrong user name or password"})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "temporarily_unavailable", "error_description": "sign-in is unavailable; try again later"})),
            )
                .into_response()
        }
    };
    no_store(&mut resp);
    resp
}
