//! The HTTP side of authentication: the bearer guard in front of the MCP endpoints, the
//! metadata documents, the authorization server's endpoints and its pages. Handlers parse,
//! call `auth::oauth`, and shape the answer; OAuth errors become responses in `error.rs`.

pub mod authorize;
pub mod error;
pub mod guard;
pub mod login;
pub mod metadata;
pub mod pages;
pub mod source;
pub mod token;
pub mod upstream;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};

use crate::auth::scope::BASE_SCOPE;
use crate::protocol::PartitionKey;
use crate::transport::HttpState;

/// The routes of the authorization server and the metadata documents (all public).
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource_root),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(metadata::protected_resource_path),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route("/authorize", get(authorize::authorize_get))
        .route("/authorize/login", post(authorize::login_post))
        .route("/authorize/consent", post(authorize::consent_post))
        .route("/authorize/upstream", post(upstream::upstream_post))
        .route("/authorize/callback", get(upstream::callback_get))
        .route("/token", post(token::token_post))
        .route("/register", post(token::register_post))
        .route("/revoke", post(token::revoke_post))
        .route("/auth/login", post(login::auth_login_post))
}

/// The issuer and resource base: `PUBLIC_URL`, else `http://<Host>` of the request (the Host
/// header has passed the Host/Origin check by then).
pub fn issuer(state: &HttpState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.auth.settings.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_ascii_lowercase();
    format!("http://{host}")
}

/// `scopes_supported`: the base scope and every scope a tool of `partition` asks for (the
/// authorization server's own metadata names the default partition's).
pub async fn scopes_supported(state: &HttpState, partition: &PartitionKey) -> Vec<String> {
    let mut out = vec![BASE_SCOPE.to_string()];
    let Ok(catalog) = state.engine.catalog(partition).await else {
        return out;
    };
    for t in &catalog.tools {
        for s in &t.access.scopes {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
    }
    out
}

/// The address a request came from (the socket's peer, as `serve` records it), for the
/// per-source throttles. `None` when there is no socket (a router driven by tests).
pub struct Source(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
