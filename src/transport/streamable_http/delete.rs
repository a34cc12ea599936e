//! DELETE: the client ends its session; every later request with that id gets 404.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::protocol::PartitionKey;
use crate::transport::HttpState;
use crate::transport::http::{check_version_header, load_session, refuse_stateless};
use crate::transport::http_error::HttpError;

pub async fn mcp_delete(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    refuse_stateless(&headers)?;
    let session = load_session(&state, &headers, &principal, &partition).await?;
    check_version_header(&headers, &session)?;
    state.engine.end_session(&session.id).await?;
    tracing::debug!(session = %session.id, "session ended by the client");
    Ok(StatusCode::OK.into_response())
}
