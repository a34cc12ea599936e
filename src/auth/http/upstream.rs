//! The HTTP side of upstream sign-in: `POST /authorize/upstream` sends the browser to the
//! OpenID provider; `GET /authorize/callback` brings it back, and the person then approves the
//! MCP client on our consent page. The state is random, kept in the `AuthStore` for 10
//! minutes and taken once (a replayed or forged callback finds nothing), and bound to the
//! browser's CSRF cookie.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::authorize::{PAGE_TTL_S, Pending, consent_page, csrf_cookie, open_pending};
use super::{issuer, pages};
use crate::auth::keys::{digest, same};
use crate::auth::upstream::{Begun, UpstreamError};
use crate::state::AuthRecord;
use crate::transport::HttpState;

/// Key prefix of pending upstream sign-ins in the `AuthStore` (next to codes, single use).
const PENDING: &str = "upstream:";

#[derive(Serialize, Deserialize)]
struct Away {
    pending: Pending,
    begun: Begun,
}

#[derive(Deserialize)]
pub struct UpstreamForm {
    request: String,
    csrf: String,
}

pub async fn upstream_post(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Form(form): Form<UpstreamForm>,
) -> Response {
    let auth = &state.auth;
    let Some(upstream) = &auth.upstream else {
        return pages::error(StatusCode::NOT_FOUND, "no identity provider is configured");
    };
    let pending = match open_pending(auth, &headers, &form.request, &form.csrf) {
        Ok(p) => p,
        Err((status, why)) => return pages::error(status, why),
    };
    let callback = format!("{}/authorize/callback", issuer(&state, &headers));
    let begun = match upstream.begin(&callback).await {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let away = Away { pending, begun };
    let stored = match serde_json::to_string(&away) {
        Ok(s) => s,
        Err(e) => return failed(UpstreamError::Unavailable(e.to_string())),
    };
    let key = format!("{PENDING}{}", digest(&away.begun.state));
    if let Err(e) = auth
        .store
        .put(AuthRecord::Code, &key, &stored, PAGE_TTL_S * 1000)
        .await
    {
        tracing::error!(error = %e, "cannot keep the pending upstream sign-in");
        return pages::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "sign-in is unavailable; try again later",
        );
    }
    tracing::info!(client = %away.pending.req.client_id, provider = %upstream.settings.issuer, "sign-in handed to the identity provider");
    Redirect::to(&away.begun.url).into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback_get(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let auth = &state.auth;
    let Some(upstream) = &auth.upstream else {
        return pages::error(StatusCode::NOT_FOUND, "no identity provider is configured");
    };
    let Some(st) = q.state.as_deref() else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "the identity provider sent no state",
        );
    };
    let key = format!("{PENDING}{}", digest(st));
    // Read first and take only once the browser is the one that started the sign-in, so a
    // callback opened elsewhere cannot use up the real browser's state.
    let found = auth.store.get(AuthRecord::Code, &key).await;
    let away: Away = match found.map(|v| v.and_then(|v| serde_json::from_str(&v).ok())) {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::info!("upstream callback with an unknown, expired or used state refused");
            return pages::error(
                StatusCode::BAD_REQUEST,
                "this sign-in expired or was already used; start again",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the pending upstream sign-in");
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign-in is unavailable; try again later",
            );
        }
    };
    let Some(cookie) = csrf_cookie(&headers)
        .filter(|c| same(digest(c).as_bytes(), away.pending.csrf.as_bytes()))
        .map(str::to_string)
    else {
        tracing::warn!("upstream callback from another browser session refused (login CSRF?)");
        return pages::error(
            StatusCode::FORBIDDEN,
            "this sign-in was started in another browser session",
        );
    };
    // Single use: of two callbacks with this state (a replay, a double click), one goes on.
    match auth.store.take(AuthRecord::Code, &key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "this sign-in expired or was already used; start again",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot take the pending upstream sign-in");
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign-in is unavailable; try again later",
            );
        }
    }
    if let Some(err) = q.error {
        tracing::info!(error = %err, "the identity provider refused the sign-in");
        let why = q.error_description.unwrap_or(err);
        return pages::error(
            StatusCode::BAD_REQUEST,
            &format!("the identity provider did not sign you in: {why}"),
        );
    }
    let Some(code) = q.code else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "the identity provider sent no code",
        );
    };
    let callback = format!("{}/authorize/callback", issuer(&state, &headers));
    match upstream.finish(&code, &away.begun, &callback).await {
        Ok(who) => {
            // Next to local users, provider accounts get their own namespace, so a provider
            // `sub` of "admin" is never the local admin. In cognito mode there are no local
            // users, and the subject matches what the pool's own tokens give.
            let subject = match auth.settings.provider {
                crate::auth::AuthProvider::Cognito => who.subject,
                _ => format!("oidc:{}", who.subject),
            };
            tracing::info!(%subject, "signed in at the identity provider");
            consent_page(
                auth,
                away.pending,
                subject,
                who.roles,
                &cookie,
                &who.display,
            )
            .await
        }
        Err(e) => failed(e),
    }
}

fn failed(e: UpstreamError) -> Response {
    tracing::warn!(error = %e, "upstream sign-in failed");
    match e {
        UpstreamError::Unavailable(_) => pages::error(
            StatusCode::BAD_GATEWAY,
            "the identity provider cannot be reached; try again later",
        ),
        UpstreamError::Refused(_) => pages::error(
            StatusCode::BAD_GATEWAY,
            "the identity provider's answer could not be verified",
        ),
    }
}
