//! The resource server: every request to an MCP or admin endpoint (`/mcp`, `/sse`,
//! `/messages`, `/http`, the admin paths, with or without an endpoint id; the layout is
//! `protocol::endpoint`'s) must carry `Authorization: Bearer` with a token
//! issued by us for this resource (or by the configured Cognito pool), not expired, not
//! revoked, with the base scope. Anything else is a 401 whose `WWW-Authenticate` points at the
//! protected resource metadata, or a 403 naming the scopes needed.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::issuer;
use crate::auth::cognito::Cognito;
use crate::auth::keys::same;
use crate::auth::scope::{self, BASE_SCOPE};
use crate::auth::token::{self, TokenError};
use crate::auth::{AuthProvider, Principal};
use crate::protocol::{PartitionKey, PathKind};
use crate::transport::HttpState;
use crate::transport::http_error::HttpError;

/// Attaches the caller's `Principal`, refusing MCP requests that are not authenticated.
pub async fn authenticate(
    State(state): State<HttpState>,
    mut req: Request,
    next: Next,
) -> Response {
    let resource = PathKind::of(req.uri().path()).resource();
    if !state.auth.enabled() {
        req.extensions_mut().insert(Principal::anonymous());
        return next.run(req).await;
    }
    // Public paths (metadata, the authorization server, health) get no principal at all: a
    // handler that wants one and was reached without the checks below fails closed.
    let Some(resource) = resource else {
        return next.run(req).await;
    };
    let base = issuer(&state, req.headers());
    let challenge = Challenge {
        metadata: format!("{base}/.well-known/oauth-protected-resource{resource}"),
    };
    if req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("access_token=")))
    {
        drain(req, state.settings.max_body_bytes).await;
        return HttpError::bad_request(
            "access tokens are accepted only in the Authorization header",
        )
        .into_response();
    }
    let refusal = match bearer(req.headers()) {
        None => challenge.unauthorized(None),
        Some(token) => {
            let audiences = [base.clone(), format!("{base}{resource}")];
            match identify(&state, token, &base, &audiences).await {
                Ok(p) if !p.is_admin() && !scope::has(&p.scopes, BASE_SCOPE) => {
                    challenge.insufficient(&[BASE_SCOPE.to_string()])
                }
                Ok(p) => {
                    req.extensions_mut().insert(p);
                    return next.run(req).await;
                }
                Err(Refusal::Token(e)) => challenge.unauthorized(Some(&e.to_string())),
                Err(Refusal::Revoked) => challenge.unauthorized(Some("the token has been revoked")),
                Err(Refusal::UserGone) => {
                    challenge.unauthorized(Some("the user of this token no longer exists"))
                }
                Err(Refusal::Backend(e)) => e,
            }
        }
    };
    drain(req, state.settings.max_body_bytes).await;
    refusal.into_response()
}

/// Reads (and drops) the body of a refused request. Answering before the client finished
/// sending makes hyper close the connection without `Connection: close`, and every OAuth
/// client's first request is exactly such a refusal; the next one on the pooled connection
/// would then fail. Bodies past the size limit are not read: that connection closes.
async fn drain(req: Request, limit: usize) {
    let _ = axum::body::to_bytes(req.into_body(), limit.min(DRAIN_LIMIT)).await;
}

/// Whether the request's bearer is an admin: `ADMIN_STATIC_TOKEN` (in every mode) or, with
/// authentication on, a token whose principal has the admin role. For operational answers on
/// public paths (the details of `/health`), which need no token otherwise.
pub async fn is_admin_bearer(state: &HttpState, headers: &HeaderMap) -> bool {
    let Some(token) = bearer(headers) else {
        return false;
    };
    if let Some(admin) = &state.auth.settings.admin_static_token
        && same(admin.as_bytes(), token.as_bytes())
    {
        return true;
    }
    if !state.auth.enabled() {
        return false;
    }
    let base = issuer(state, headers);
    let audiences = [base.clone(), format!("{base}/mcp")];
    identify(state, token, &base, &audiences)
        .await
        .is_ok_and(|p| p.is_admin())
}

/// Most of a refused request's body we read; past it the connection is closed instead.
const DRAIN_LIMIT: usize = 64 * 1024;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

enum Refusal {
    Token(TokenError),
    Revoked,
    /// The local user the token names was removed from the user file.
    UserGone,
    Backend(HttpError),
}

/// For a local user (names without ':', which every other namespace has): `None` when the
/// user is gone, else their roles as the user file says now, so removing a user or a role
/// takes effect on every node within `users::RECHECK_MS` without a Redis round trip. For
/// other subjects `Some(None)`: the token's roles stand.
fn current_user(
    auth: &crate::auth::oauth::AuthServer,
    subject: &str,
) -> Result<Option<Option<Vec<String>>>, Refusal> {
    let Some(db) = auth.users.as_ref().filter(|_| !subject.contains(':')) else {
        return Ok(Some(None));
    };
    match db.current(subject, auth.clock.now_ms()) {
        Ok(user) => Ok(user.map(|u| Some(u.roles))),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the user file");
            Err(Refusal::Backend(HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::protocol::codes::INTERNAL_ERROR,
                "authentication is unavailable; try again later",
            )))
        }
    }
}

/// Who a bearer token names: the static admin token, one of our JWTs, or a Cognito token.
async fn identify(
    state: &HttpState,
    token: &str,
    base: &str,
    audiences: &[String],
) -> Result<Principal, Refusal> {
    let auth = &state.auth;
    if let Some(admin) = &auth.settings.admin_static_token
        && same(admin.as_bytes(), token.as_bytes())
    {
        tracing::info!("request authenticated with ADMIN_STATIC_TOKEN");
        return Ok(Principal::static_admin());
    }
    if let Some(cognito) = &auth.cognito
        && Cognito::looks_like(token, &auth.keys)
    {
        let id = cognito.verify(token).await.map_err(Refusal::Token)?;
        let mut scopes = vec![BASE_SCOPE.to_string()];
        scopes.extend(id.scopes);
        return Ok(Principal {
            subject: id.subject,
            scopes,
            roles: id.groups,
            client_id: Some(id.client_id),
            authenticated: true,
        });
    }
    let claims =
        token::verify(&auth.keys, token, auth.now_s(), base, audiences).map_err(Refusal::Token)?;
    let revoked = auth
        .store
        .is_revoked(&claims.sid, &claims.jti)
        .await
        .map_err(|e| Refusal::Backend(e.into()))?;
    if revoked {
        return Err(Refusal::Revoked);
    }
    let roles = match current_user(auth, &claims.sub)? {
        Some(roles) => roles.unwrap_or(claims.roles),
        None => return Err(Refusal::UserGone),
    };
    Ok(Principal {
        subject: claims.sub,
        scopes: scope::parse(&claims.scope),
        roles,
        client_id: Some(claims.client_id),
        authenticated: true,
    })
}

/// Builds RFC 6750 §3 challenges that point at the protected resource metadata.
pub struct Challenge {
    pub metadata: String,
}

impl Challenge {
    /// 401: no token (no `error`, RFC 6750 §3.1) or a bad one (`invalid_token`).
    pub fn unauthorized(&self, problem: Option<&str>) -> HttpError {
        let mut c = format!(
            "Bearer resource_metadata=\"{}\", scope=\"{BASE_SCOPE}\"",
            self.metadata
        );
        if let Some(p) = problem {
            c.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{p}\""
            ));
        }
        let message = problem.map_or("Unauthorized: a bearer token is required".into(), |p| {
            format!("Unauthorized: {p}")
        });
        HttpError::auth(StatusCode::UNAUTHORIZED, c, message)
    }

    /// 403 `insufficient_scope` naming every scope the operation needs, in one challenge.
    pub fn insufficient(&self, needed: &[String]) -> HttpError {
        let scopes = scope::join(needed);
        let c = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{scopes}\", resource_metadata=\"{}\", error_description=\"this operation needs the scopes: {scopes}\"",
            self.metadata
        );
        HttpError::auth(
            StatusCode::FORBIDDEN,
            c,
            format!("Forbidden: this operation needs the scopes {scopes}"),
        )
    }
}

/// The challenge for a request to `path` (for the 403 of a tool call).
pub fn challenge_for(state: &HttpState, headers: &HeaderMap, path: &str) -> Challenge {
    let base = issuer(state, headers);
    let resource = PathKind::of(path)
        .resource()
        .unwrap_or_else(|| "/mcp".into());
    Challenge {
        metadata: format!("{base}/.well-known/oauth-protected-resource{resource}"),
    }
}

/// 403 for a `tools/call` whose tool needs scopes the token lacks, naming all of them so the
/// client can ask for them in one step-up (spec §Scope Challenge Handling).
pub async fn check_tool_scopes(
    state: &HttpState,
    principal: &Principal,
    partition: &PartitionKey,
    headers: &HeaderMap,
    path: &str,
    req: &crate::protocol::Request,
) -> Result<(), HttpError> {
    if !principal.authenticated || req.method != "tools/call" {
        return Ok(());
    }
    let catalog = state
        .engine
        .catalog(partition)
        .await
        .map_err(|e| HttpError::rpc(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    match crate::engine::tools::scope_challenge(&catalog, principal, req) {
        None => Ok(()),
        Some(needed) => {
            tracing::info!(subject = %principal.subject, scopes = %scope::join(&needed), "tool call needs more scopes");
            let mut e = challenge_for(state, headers, path).insufficient(&needed);
            e.id = Some(req.id.clone());
            Err(e)
        }
    }
}

/// Whether the provider in use issues or accepts tokens (for start-up logs).
pub fn describe(p: AuthProvider) -> &'static str {
    match p {
        AuthProvider::None => "off: every caller is anonymous",
        AuthProvider::Local => "local users, built-in OAuth 2.1 authorization server",
        AuthProvider::Cognito => {
            "Cognito tokens, built-in OAuth 2.1 authorization server signing in through Cognito"
        }
    }
}
