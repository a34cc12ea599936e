//! The original daemon's cache routes, with its exact answer shapes
//! (reference/original-daemon.md 6.1): `POST /{eid}/admin/cache/refresh`,
//! `DELETE /{eid}/admin/cache`, `DELETE /admin/cache`, `GET /{eid}/admin/cache/status`. The
//! partition is the path's endpoint id plus `Part-ID`, as on every endpoint. A refresh or a
//! clear is a definitions change of that partition (all, for `DELETE /admin/cache`): this node
//! reloads before it answers, and every other node through the bus, so each tells its own
//! clients once. Admins only (an admin's token, or `ADMIN_STATIC_TOKEN`; with authentication
//! off only the static token, since the original never served these without a bearer).

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::auth::http::guard::is_admin_bearer;
use crate::catalog::{CacheCounts, CatalogChanges};
use crate::engine::tasks::iso8601;
use crate::protocol::endpoint::CacheRoute;
use crate::protocol::{Endpoint, PartitionKey, PathKind};
use crate::transport::HttpState;
use crate::transport::http_error::HttpError;

/// The cache routes, for the app's router (paths from `protocol::endpoint`).
pub fn routes() -> Router<HttpState> {
    let mut r = Router::new();
    for path in Endpoint::Cache(CacheRoute::Refresh).routes() {
        r = r.route(path, post(cache_refresh_post));
    }
    for path in Endpoint::Cache(CacheRoute::Status).routes() {
        r = r.route(path, get(cache_status_get));
    }
    for path in Endpoint::Cache(CacheRoute::Cache).routes() {
        r = r.route(path, delete(cache_delete));
    }
    r
}

/// 403 unless the caller is an admin.
async fn require_admin(
    state: &HttpState,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<(), HttpError> {
    if principal.is_admin() || is_admin_bearer(state, headers).await {
        return Ok(());
    }
    tracing::warn!(subject = %principal.subject, "cache route refused: not an admin");
    Err(HttpError::forbidden(
        "the cache routes need an admin (a token with the admin role, or ADMIN_STATIC_TOKEN)",
    ))
}

fn now(state: &HttpState) -> String {
    iso8601(state.engine.backends.clock.now_ms())
}

/// The original's `cache_info` / `cache_stats` counts.
fn counts_json(c: &CacheCounts) -> Value {
    json!({
        "tools_count": c.tools_count,
        "resources_count": c.resources_count,
        "prompts_count": c.prompts_count,
        "modules_count": c.modules_count,
        "module_links_count": c.module_links_count,
    })
}

/// A definitions change through this node, or 503 when the other nodes cannot be told.
async fn purge(
    state: &HttpState,
    partition: Option<&PartitionKey>,
) -> Result<Vec<String>, HttpError> {
    let changed = state
        .engine
        .definitions_changed(partition, CatalogChanges::all())
        .await?;
    Ok(changed.into_iter().map(|(k, _)| k.to_string()).collect())
}

/// `POST /{eid}/admin/cache/refresh`.
pub async fn cache_refresh_post(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    require_admin(&state, &principal, &headers).await?;
    purge(&state, Some(&partition)).await?;
    let catalog = state.engine.catalog(&partition).await.map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.code,
            format!("Failed to refresh cache: {}", e.message),
        )
    })?;
    let counts = CacheCounts::of(&catalog);
    let mut stats = counts_json(&counts);
    stats["partition_key"] = json!(partition);
    Ok(Json(json!({
        "status": "success",
        "message": format!("Cache refreshed for partition: {partition}"),
        "timestamp": now(&state),
        "cache_stats": stats,
    }))
    .into_response())
}

/// `DELETE /{eid}/admin/cache` (one partition) and `DELETE /admin/cache` (all).
pub async fn cache_delete(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    headers: HeaderMap,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Result<Response, HttpError> {
    require_admin(&state, &principal, &headers).await?;
    if matches!(
        PathKind::of(uri.path()),
        PathKind::Endpoint { id: None, .. }
    ) {
        let cleared = purge(&state, None).await?;
        return Ok(Json(json!({
            "status": "success",
            "message": "All MCP configuration cache cleared",
            "timestamp": now(&state),
            "cleared_partitions": cleared,
        }))
        .into_response());
    }
    purge(&state, Some(&partition)).await?;
    Ok(Json(json!({
        "status": "success",
        "message": format!("Cache cleared for partition: {partition}"),
        "timestamp": now(&state),
    }))
    .into_response())
}

/// `GET /{eid}/admin/cache/status`: what this node has cached for the partition.
pub async fn cache_status_get(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    require_admin(&state, &principal, &headers).await?;
    let info = state.engine.catalogs().status(&partition);
    Ok(Json(json!({
        "partition_key": partition,
        "is_cached": info.is_some(),
        "timestamp": now(&state),
        "cache_info": info.as_ref().map(counts_json),
    }))
    .into_response())
}
