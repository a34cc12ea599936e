//! Plain HTTP (`/http`): POST one JSON-RPC message, get one JSON response. No session, no
//! stream: for callers that just want `tools/call` or `resources/read` over a simple request.

use axum::Extension;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::HttpState;
use super::http::{accepted, json_response, read_body, require_json};
use super::http_error::HttpError;
use crate::auth::Principal;
use crate::auth::http::guard::check_tool_scopes;
use crate::engine::Call;
use crate::protocol::{Message, PartitionKey, jsonrpc};

pub async fn http_post(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    require_json(&headers)?;
    let bytes = read_body(&state, &headers, body).await?;
    let message = jsonrpc::parse_single(&bytes, state.settings.max_json_depth)
        .map_err(|e| HttpError::from_rpc(StatusCode::BAD_REQUEST, e))?;
    match message {
        Message::Request(req) => {
            check_tool_scopes(&state, &principal, &partition, &headers, uri.path(), &req).await?;
            let call = Call::legacy(principal, partition, None, None);
            match state.engine.handle_request(call, req).await {
                Some(resp) => Ok(json_response(&resp.to_value(), None)),
                None => Ok(accepted()),
            }
        }
        // Nothing to route a notification or response to without a session.
        Message::Notification(_) | Message::Response(_) => Ok(accepted()),
    }
}
