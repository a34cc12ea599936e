//! POST: one JSON-RPC message (or, in 2025-03-26 only, a batch). `initialize` creates the
//! session; everything else needs `Mcp-Session-Id`. Notifications and responses get 202.

use axum::Extension;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{exchange, modern};
use crate::auth::Principal;
use crate::auth::http::guard::check_tool_scopes;
use crate::protocol::jsonrpc::{self, Incoming};
use crate::protocol::{Message, PartitionKey, Request, Response as RpcResponse};
use crate::state::TransportKind;
use crate::transport::HttpState;
use crate::transport::http::{
    SESSION_HEADER, accepted, accepts, check_version_header, header_str, json_response,
    load_session, not_acceptable, read_body, require_json,
};
use crate::transport::http_error::HttpError;

pub async fn mcp_post(
    State(state): State<HttpState>,
    Extension(principal): Extension<Principal>,
    Extension(partition): Extension<PartitionKey>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    if !accepts(&headers, "application/json") || !accepts(&headers, "text/event-stream") {
        return Err(not_acceptable(
            "both application/json and text/event-stream",
        ));
    }
    require_json(&headers)?;
    let bytes = read_body(&state, &headers, body).await?;
    let incoming = jsonrpc::parse(&bytes, state.settings.max_json_depth)
        .map_err(|e| HttpError::from_rpc(StatusCode::BAD_REQUEST, e))?;

    // Era routing (spec digest "suggested era router"): a session means legacy; modern `_meta`
    // or a non-legacy version header without a session means the stateless era.
    let sessionless = header_str(&headers, SESSION_HEADER).is_none();
    match &incoming {
        Incoming::Single(Message::Request(r)) => {
            check_tool_scopes(&state, &principal, &partition, &headers, uri.path(), r).await?;
        }
        Incoming::Batch(items) => {
            for r in items.iter().flatten() {
                if let Message::Request(r) = r {
                    check_tool_scopes(&state, &principal, &partition, &headers, uri.path(), r)
                        .await?;
                }
            }
        }
        _ => {}
    }
    let incoming = match incoming {
        Incoming::Single(message) if sessionless && modern::is_modern(&headers, &message) => {
            return modern::handle(&state, principal, partition, &headers, message).await;
        }
        other => other,
    };
    if let Incoming::Single(Message::Request(req)) = &incoming
        && req.method == "initialize"
    {
        return initialize(&state, &principal, &partition, req).await;
    }

    let session = match load_session(&state, &headers, &principal, &partition).await {
        Ok(s) => s,
        Err(mut e) => {
            // The error answers a request we could read: say which one.
            if let Incoming::Single(Message::Request(r)) = &incoming {
                e.id = Some(r.id.clone());
            }
            return Err(e);
        }
    };
    check_version_header(&headers, &session)?;
    let (messages, batch) = match incoming {
        Incoming::Single(m) => (vec![m], false),
        Incoming::Batch(items) => {
            if !session.protocol_version.is_some_and(|v| v.allows_batches()) {
                return Err(HttpError::invalid_request(
                    "JSON-RPC batches are only accepted with protocol version 2025-03-26",
                ));
            }
            let mut ok = Vec::with_capacity(items.len());
            for item in items {
                // One bad item fails the batch: answering it partially would hide the error.
                ok.push(item.map_err(|e| HttpError::from_rpc(StatusCode::BAD_REQUEST, e))?);
            }
            (ok, true)
        }
    };

    let mut requests = Vec::new();
    for m in messages {
        match m {
            Message::Request(r) if r.method == "initialize" => {
                return Err(HttpError::invalid_request(
                    "initialize must be sent alone, without a session",
                ));
            }
            Message::Request(r) => requests.push(r),
            Message::Notification(n) => state.engine.handle_notification(Some(&session), &n),
            Message::Response(r) => state.engine.handle_response(&session.id, r),
        }
    }
    if requests.is_empty() {
        return Ok(accepted());
    }
    exchange::run(&state, principal, session, requests, batch).await
}

async fn initialize(
    state: &HttpState,
    principal: &Principal,
    partition: &PartitionKey,
    req: &Request,
) -> Result<Response, HttpError> {
    let engine = &state.engine;
    let params = req.params.as_ref().unwrap_or(&serde_json::Value::Null);
    let negotiated = match engine.negotiate(partition, params).await {
        Ok(n) => n,
        Err(e) => {
            return Ok(json_response(
                &RpcResponse::err(Some(req.id.clone()), e).to_value(),
                None,
            ));
        }
    };
    let session = engine
        .open_session(
            principal,
            partition,
            TransportKind::StreamableHttp,
            Some(&negotiated),
        )
        .await
        .map_err(|e| HttpError {
            id: Some(req.id.clone()),
            ..HttpError::from(e)
        })?;
    tracing::debug!(session = %session.id, version = %negotiated.version, "session created");
    let answer = RpcResponse::ok(req.id.clone(), negotiated.result).to_value();
    Ok(json_response(&answer, Some(&session.id)))
}
