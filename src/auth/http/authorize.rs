//! `/authorize` (RFC 6749 §4.1.1 with PKCE, RFC 8707 resource, RFC 9207 `iss`): the request
//! is validated, then the person signs in (`/authorize/login`) and approves
//! (`/authorize/consent`); the pending request travels sealed in the pages, bound to a
//! `__Host-` CSRF cookie. Test mode (`OAUTH_TEST_USER`) approves at once for a named user.

use std::net::IpAddr;

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::error::retry_after;
use super::pages::{self, Ask, CSRF_COOKIE};
use super::{Source, issuer, scopes_supported};
use crate::auth::keys::{digest, random_token, same};
use crate::auth::oauth::authorize::{
    AuthRequest, AuthorizeError, error_redirect, redirect_to, validate,
};
use crate::auth::oauth::grants::issue_code;
use crate::auth::oauth::seal::{open, seal};
use crate::auth::oauth::{AuthServer, OAuthError};
use crate::auth::throttle::{GateError, Who};
use crate::state::AuthRecord;
use crate::transport::HttpState;

/// How long a person has to sign in and approve.
pub(super) const PAGE_TTL_S: u64 = 600;

#[derive(Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) req: AuthRequest,
    /// Digest of the CSRF cookie this request belongs to.
    pub(super) csrf: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Approving {
    pub(super) req: AuthRequest,
    pub(super) csrf: String,
    pub(super) subject: String,
    pub(super) roles: Vec<String>,
    /// Makes the form single use: its digest is stored when the page is shown and taken
    /// (atomically, on any node) when the form is posted, so a replayed approval mints nothing.
    pub(super) nonce: String,
}

/// Where a shown consent form's nonce is kept until it is posted.
const CONSENT: &str = "consent:";

pub async fn authorize_get(
    State(state): State<HttpState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let auth = &state.auth;
    if !auth.enabled() {
        return pages::error(
            StatusCode::NOT_FOUND,
            "authentication is not enabled on this server",
        );
    }
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let iss = issuer(&state, &headers);
    let (req, _client) = match validate(
        auth,
        &params,
        &iss,
        &scopes_supported(&state, &Default::default()).await,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return refuse(e, &iss),
    };
    if let Some(user) = &auth.settings.test_user {
        let roles = match &auth.users {
            Some(db) => match db.find(user) {
                Ok(Some(u)) => u.roles,
                _ => {
                    return pages::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the test user does not exist",
                    );
                }
            },
            None => Vec::new(),
        };
        return finish(auth, &req, user, &roles, StatusCode::FOUND).await;
    }
    let csrf = random_token();
    let sealed = seal(
        &auth.keys,
        "authorize",
        &Pending {
            req: req.clone(),
            csrf: digest(&csrf),
        },
        auth.now_s() + PAGE_TTL_S,
    );
    let ask = Ask {
        client_name: &req.client_name,
        redirect_uri: &req.redirect_uri,
        scopes: &req.scopes,
    };
    with_cookie(
        pages::login(&sealed, &csrf, &ask, sso_name(auth), None),
        &csrf,
    )
}

fn refuse(e: AuthorizeError, iss: &str) -> Response {
    match e {
        AuthorizeError::Page(e) => pages::error(StatusCode::BAD_REQUEST, &e.to_string()),
        AuthorizeError::Redirect {
            error,
            redirect_uri,
            state,
        } => Redirect::to(&error_redirect(
            &redirect_uri,
            &error,
            state.as_deref(),
            iss,
        ))
        .into_response(),
    }
}

/// Issues the code and sends the browser back with `code`, `state` and `iss`.
async fn finish(
    auth: &AuthServer,
    req: &AuthRequest,
    subject: &str,
    roles: &[String],
    status: StatusCode,
) -> Response {
    let code = match issue_code(auth, req, subject, roles).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &req.issuer));
    let target = redirect_to(&req.redirect_uri, &pairs);
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    super::error::no_store(&mut resp);
    resp
}

fn with_cookie(mut resp: Response, csrf: &str) -> Response {
    let cookie = format!(
        "{CSRF_COOKIE}={csrf}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={PAGE_TTL_S}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn sso_name(auth: &AuthServer) -> Option<&str> {
    auth.upstream.as_ref().map(|u| u.settings.name.as_str())
}

/// The browser's CSRF cookie.
pub(super) fn csrf_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v)
}

/// The CSRF value of the request: the cookie must equal the form field, and the sealed
/// request must have been issued for that cookie.
pub(super) fn csrf_ok(headers: &HeaderMap, form_csrf: &str, sealed_digest: &str) -> bool {
    csrf_cookie(headers).is_some_and(|c| {
        same(c.as_bytes(), form_csrf.as_bytes())
            && same(digest(c).as_bytes(), sealed_digest.as_bytes())
    })
}

/// The pending request a sign-in form carries, if it is intact, unexpired and posted by the
/// browser it was issued to; else what the error page says.
pub(super) fn open_pending(
    auth: &AuthServer,
    headers: &HeaderMap,
    request: &str,
    csrf: &str,
) -> Result<Pending, (StatusCode, &'static str)> {
    let Some(pending) = open::<Pending>(&auth.keys, "authorize", request, auth.now_s()) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "this sign-in expired or was changed; start again",
        ));
    };
    if !csrf_ok(headers, csrf, &pending.csrf) {
        return Err((
            StatusCode::FORBIDDEN,
            "the sign-in form did not come from this browser session",
        ));
    }
    Ok(pending)
}

#[derive(Deserialize)]
pub struct LoginForm {
    request: String,
    csrf: String,
    username: String,
    password: String,
}

pub async fn login_post(
    State(state): State<HttpState>,
    Source(source): Source,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = state.auth.clone();
    let pending = match open_pending(&auth, &headers, &form.request, &form.csrf) {
        Ok(p) => p,
        Err((status, why)) => return pages::error(status, why),
    };
    let ask = Ask {
        client_name: &pending.req.client_name,
        redirect_uri: &pending.req.redirect_uri,
        scopes: &pending.req.scopes,
    };
    let (subject, roles) = match sign_in(&auth, source, &form.username, &form.password).await {
        Ok(who) => who,
        Err(SignIn::Refused(why)) => {
            // Not the name: people type passwords into the wrong field.
            tracing::info!(client = %pending.req.client_id, "sign-in refused");
            return pages::login(&form.request, &form.csrf, &ask, sso_name(&auth), Some(&why));
        }
        Err(SignIn::Throttled(wait)) => {
            let why = format!("too many failed sign-ins; wait {wait} seconds before you try again");
            let mut page =
                pages::login(&form.request, &form.csrf, &ask, sso_name(&auth), Some(&why));
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            retry_after(&mut page, wait);
            return page;
        }
        Err(SignIn::Busy) => {
            let mut page = pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy checking other sign-ins; try again in a moment",
            );
            retry_after(&mut page, 1);
            return page;
        }
        Err(SignIn::Failed(why)) => {
            tracing::error!(error = %why, "sign-in failed");
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign-in is unavailable; try again later",
            );
        }
    };
    consent_page(&auth, pending, subject, roles, &form.csrf, &form.username).await
}

/// The consent page for a person who has signed in (here or at the upstream provider). Its
/// nonce is stored first: a page whose nonce could not be stored could never be approved.
pub(super) async fn consent_page(
    auth: &AuthServer,
    pending: Pending,
    subject: String,
    roles: Vec<String>,
    csrf: &str,
    shown_as: &str,
) -> Response {
    let ask = Ask {
        client_name: &pending.req.client_name,
        redirect_uri: &pending.req.redirect_uri,
        scopes: &pending.req.scopes,
    };
    let nonce = random_token();
    let key = format!("{CONSENT}{}", digest(&nonce));
    if let Err(e) = auth
        .store
        .put(AuthRecord::Code, &key, "1", PAGE_TTL_S * 1000)
        .await
    {
        tracing::error!(error = %e, "cannot store the consent nonce");
        return pages::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "sign-in is unavailable; try again later",
        );
    }
    let sealed = seal(
        &auth.keys,
        "consent",
        &Approving {
            req: pending.req.clone(),
            csrf: pending.csrf.clone(),
            subject,
            roles,
            nonce,
        },
        auth.now_s() + PAGE_TTL_S,
    );
    pages::consent(&sealed, csrf, &ask, shown_as)
}

/// Why a sign-in did not go through.
pub(super) enum SignIn {
    /// Wrong name or password (or the identity provider said no).
    Refused(String),
    /// This account or source must wait this many seconds (backoff after failures).
    Throttled(u64),
    /// Too many password checks are queued on this node.
    Busy,
    /// The check could not run (a backend or the user file).
    Failed(String),
}

/// Checks a user name and password against the configured identity source, throttled per
/// account and per source address: each attempt counts as a failure until it succeeds.
pub(super) async fn sign_in(
    auth: &std::sync::Arc<AuthServer>,
    source: Option<IpAddr>,
    user: &str,
    password: &str,
) -> Result<(String, Vec<String>), SignIn> {
    let (account, from) = (Who::name(user), Who::source(source));
    let throttle = &auth.throttle.sign_in;
    if let Err(wait) = throttle.begin(&[&account, &from], auth.clock.now_ms()) {
        tracing::info!(source = ?source, wait_s = wait, "sign-in throttled");
        return Err(SignIn::Throttled(wait));
    }
    let outcome = check(auth, user, password).await;
    match &outcome {
        Ok(_) => throttle.succeeded(&account, &from),
        Err(SignIn::Refused(_)) => {}
        // Not a wrong guess: the attempt does not count.
        Err(_) => throttle.undo(&[&account, &from]),
    }
    outcome
}

async fn check(
    auth: &std::sync::Arc<AuthServer>,
    user: &str,
    password: &str,
) -> Result<(String, Vec<String>), SignIn> {
    if let Some(cognito) = &auth.cognito {
        return match cognito.sign_in(user, password).await {
            Ok(id) => Ok((id.subject, id.groups)),
            Err(crate::auth::cognito::SignInError::Unavailable(e)) => Err(SignIn::Failed(e)),
            Err(e) => Err(SignIn::Refused(e.to_string())),
        };
    }
    let Some(db) = auth.users.clone() else {
        return Err(SignIn::Failed("no user source is configured".into()));
    };
    let (user, password) = (user.to_string(), password.to_string());
    // bcrypt is slow on purpose: off the async workers, and only a few at once.
    match auth
        .throttle
        .hashing
        .run(move || db.verify(&user, &password))
        .await
    {
        Ok(Ok(Some(u))) => Ok((u.username, u.roles)),
        Ok(Ok(None)) => Err(SignIn::Refused("wrong user name or password".into())),
        Ok(Err(e)) => Err(SignIn::Failed(e.to_string())),
        Err(GateError::Busy) => Err(SignIn::Busy),
        Err(GateError::Failed(e)) => Err(SignIn::Failed(e)),
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    grant: String,
    csrf: String,
    decision: String,
}

pub async fn consent_post(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let auth = &state.auth;
    let Some(a) = open::<Approving>(&auth.keys, "consent", &form.grant, auth.now_s()) else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "this sign-in expired or was changed; start again",
        );
    };
    if !csrf_ok(&headers, &form.csrf, &a.csrf) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "the consent form did not come from this browser session",
        );
    }
    // Taken whatever the decision: a denied form must not be replayed as an approval either.
    let key = format!("{CONSENT}{}", digest(&a.nonce));
    match auth.store.take(AuthRecord::Code, &key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::info!(client = %a.req.client_id, "a used consent form was posted again");
            return pages::error(
                StatusCode::BAD_REQUEST,
                "this consent form was already used; start again",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot take the consent nonce");
            return pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign-in is unavailable; try again later",
            );
        }
    }
    if form.decision != "approve" {
        tracing::info!(client = %a.req.client_id, subject = %a.subject, "consent denied");
        let target = error_redirect(
            &a.req.redirect_uri,
            &OAuthError::AccessDenied,
            a.req.state.as_deref(),
            &a.req.issuer,
        );
        return Redirect::to(&target).into_response();
    }
    finish(auth, &a.req, &a.subject, &a.roles, StatusCode::SEE_OTHER).await
}
