//! `/token` (RFC 6749 §3.2), `/register` (RFC 7591) and `/revoke` (RFC 7009): client
//! authentication, then the grant in `auth::oauth::grants`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use std::net::IpAddr;

use super::error::no_store;
use super::{Source, issuer};
use crate::auth::oauth::clients::{Client, Registration};
use crate::auth::oauth::grants::{self, TokenForm};
use crate::auth::oauth::{OAuthError, OAuthResult};
use crate::auth::throttle::Who;
use crate::transport::HttpState;

/// Largest `/register` body; a larger one is refused before parsing.
pub const MAX_REGISTRATION_BYTES: usize = 16 * 1024;
/// Largest `/token` or `/revoke` form.
const MAX_FORM_BYTES: usize = 16 * 1024;

fn form<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> OAuthResult<T> {
    if body.len() > MAX_FORM_BYTES {
        return Err(OAuthError::InvalidRequest(
            "the request is too large".into(),
        ));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::InvalidRequest(format!("malformed form: {e}")))
}

/// The client and its secret from HTTP Basic (RFC 6749 §2.3.1) or the form, never both.
fn credentials(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> OAuthResult<(String, Option<String>)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    if let Some(b64) = basic {
        if form_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method".into(),
            ));
        }
        let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
        let raw = String::from_utf8(STANDARD.decode(b64.trim()).map_err(|_| bad())?)
            .map_err(|_| bad())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Ok((decode(id), Some(decode(secret))));
    }
    let id = form_id.ok_or_else(|| OAuthError::InvalidClient("client_id is required".into()))?;
    Ok((id.to_string(), form_secret.map(str::to_string)))
}

async fn authenticated_client(
    state: &HttpState,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> OAuthResult<Client> {
    let (id, secret) = credentials(headers, form_id, form_secret)?;
    let client = state
        .auth
        .clients
        .find(&id)
        .await?
        .ok_or_else(|| OAuthError::InvalidClient("unknown client".into()))?;
    // Counted before the secret is checked, so guessing a client's secret is throttled too;
    // only known clients get a bucket, so made-up ids cannot fill the table.
    let now = state.auth.clock.now_ms();
    state
        .auth
        .throttle
        .token_clients
        .take(&Who::name(&client.client_id), now)
        .map_err(OAuthError::throttled)?;
    client.authenticate(secret.as_deref())?;
    Ok(client)
}

/// The per-source rate limit of `/token` and `/revoke`.
fn source_allowed(state: &HttpState, source: Option<IpAddr>) -> OAuthResult<()> {
    state
        .auth
        .throttle
        .token_sources
        .take(&Who::source(source), state.auth.clock.now_ms())
        .map_err(OAuthError::throttled)
}

pub async fn token_post(
    State(state): State<HttpState>,
    Source(source): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = match source_allowed(&state, source) {
        Ok(()) => token(&state, &headers, &body).await,
        Err(e) => Err(e),
    };
    let mut resp = match answer {
        Ok(t) => Json(t).into_response(),
        Err(e) => {
            tracing::info!(error = e.code(), reason = %e, "token request refused");
            e.into_response()
        }
    };
    no_store(&mut resp);
    resp
}

async fn token(
    state: &HttpState,
    headers: &HeaderMap,
    body: &Bytes,
) -> OAuthResult<grants::TokenResponse> {
    if !state.auth.enabled() {
        return Err(OAuthError::InvalidRequest(
            "authentication is not enabled".into(),
        ));
    }
    let f: TokenForm = form(body)?;
    let client = authenticated_client(
        state,
        headers,
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
    )
    .await?;
    let auth = &state.auth;
    match f.grant_type.as_deref() {
        Some("authorization_code") => grants::exchange_code(auth, &client, &f).await,
        Some("refresh_token") => grants::refresh(auth, &client, &f).await,
        Some("client_credentials") => {
            grants::client_credentials(auth, &client, &f, &issuer(state, headers)).await
        }
        Some(other) => Err(OAuthError::UnsupportedGrantType(other.to_string())),
        None => Err(OAuthError::InvalidRequest("grant_type is required".into())),
    }
}

pub async fn register_post(
    State(state): State<HttpState>,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    if !state.auth.enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    if body.len() > MAX_REGISTRATION_BYTES {
        let mut resp = OAuthError::InvalidClientMetadata(format!(
            "the registration is larger than {MAX_REGISTRATION_BYTES} bytes"
        ))
        .into_response();
        *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return resp;
    }
    let reg: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return OAuthError::InvalidClientMetadata(format!("malformed registration: {e}"))
                .into_response();
        }
    };
    let source = super::source::peer_ip(&extensions);
    match state
        .auth
        .clients
        .register(reg, source, state.auth.now_ms())
        .await
    {
        Ok((client, answer)) => {
            tracing::info!(client = %client.client_id, name = client.name(), "client registered");
            let mut resp = (StatusCode::CREATED, Json(answer)).into_response();
            no_store(&mut resp);
            resp
        }
        Err(e) => {
            if matches!(e, OAuthError::RateLimited { .. }) {
                tracing::info!(source = ?source, "client registration throttled");
            }
            e.into_response()
        }
    }
}

/// Who asks to revoke: a registered or configured client, or the public pseudo-client
/// `auth-login` that the tokens of `POST /auth/login` carry (it has no secret; whoever holds
/// such a token may end it, RFC 7009 §5).
async fn revoking_client(
    state: &HttpState,
    headers: &HeaderMap,
    f: &RevokeForm,
) -> OAuthResult<String> {
    let (id, secret) = credentials(headers, f.client_id.as_deref(), f.client_secret.as_deref())?;
    if id == grants::DIRECT_CLIENT_ID && secret.as_deref().unwrap_or_default().is_empty() {
        return Ok(id);
    }
    let client = authenticated_client(
        state,
        headers,
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
    )
    .await?;
    Ok(client.client_id)
}

#[derive(Default, serde::Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn revoke_post(
    State(state): State<HttpState>,
    Source(source): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        source_allowed(&state, source)?;
        let f: RevokeForm = form(&body)?;
        let client_id = revoking_client(&state, &headers, &f).await?;
        let token = f
            .token
            .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        grants::revoke(&state.auth, &client_id, &token).await
    }
    .await;
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}
