//! RFC 9728 protected resource metadata (root and path forms) and RFC 8414 authorization
//! server metadata, served identically as OIDC discovery.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{issuer, scopes_supported};
use crate::protocol::{PartitionKey, PathKind};
use crate::transport::HttpState;

/// `/.well-known/oauth-protected-resource`: the origin as the resource.
pub async fn protected_resource_root(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Response {
    let base = issuer(&state, &headers);
    prm(&state, &base, base.clone(), &PartitionKey::default()).await
}

/// `/.well-known/oauth-protected-resource/<path>`: `resource` is exactly `<base>/<path>`
/// (RFC 9728 §3.3), for each MCP endpoint path.
pub async fn protected_resource_path(
    State(state): State<HttpState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{}", path.trim_end_matches('/'));
    let kind = PathKind::of(&path);
    let Some(Ok(partition)) = kind.partition(None).filter(|_| kind.is_resource()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let base = issuer(&state, &headers);
    prm(&state, &base, format!("{base}{path}"), &partition).await
}

async fn prm(
    state: &HttpState,
    base: &str,
    resource: String,
    partition: &PartitionKey,
) -> Response {
    if !state.auth.enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(json!({
        "resource": resource,
        "authorization_servers": [base],
        "scopes_supported": scopes_supported(state, partition).await,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-daemon",
    }))
    .into_response()
}

/// RFC 8414 metadata (also at `/.well-known/openid-configuration`, same content).
pub async fn authorization_server(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if !state.auth.enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let base = issuer(&state, &headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "registration_endpoint": format!("{base}/register"),
        "revocation_endpoint": format!("{base}/revoke"),
        "scopes_supported": scopes_supported(&state, &PartitionKey::default()).await,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
    }))
    .into_response()
}
