//! `subscriptions/listen` (MCP 2026-07-28 basic/patterns/subscriptions): a long-lived SSE
//! response fed from the bus, so a change made through any node reaches every listener.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::engine::modern::META_SUBSCRIPTION_ID;
use crate::protocol::Request;
use crate::transport::HttpState;
use crate::transport::http_error::HttpError;
use crate::transport::sse;

/// `subscriptions/listen`: acknowledges at once, then sends the catalog notifications the
/// client asked for, each tagged with the subscription id (the listen request's id).
pub async fn listen(state: &HttpState, req: &Request) -> Result<Response, HttpError> {
    let filter = req
        .params
        .as_ref()
        .and_then(|p| p.get("notifications"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let flag = |k: &str| filter.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (tools, prompts, resources) = (
        flag("toolsListChanged"),
        flag("promptsListChanged"),
        flag("resourcesListChanged"),
    );
    let uris: Vec<String> = filter
        .get("resourceSubscriptions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut honoured = serde_json::Map::new();
    for (k, on) in [
        ("toolsListChanged", tools),
        ("promptsListChanged", prompts),
        ("resourcesListChanged", resources),
    ] {
        if on {
            honoured.insert(k.into(), json!(true));
        }
    }
    if !uris.is_empty() {
        honoured.insert("resourceSubscriptions".into(), json!(uris));
    }
    let id = json!(req.id);
    let tag = move |mut note: Value| {
        note["params"]["_meta"][META_SUBSCRIPTION_ID] = id.clone();
        note
    };
    let ack = tag(
        json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": Value::Object(honoured)}}),
    );
    // Subscribe before answering, so nothing published after the ack is missed.
    let events = state.engine.catalog_events();
    let notes = events.filter_map(move |event| {
        let method = match event.get("type").and_then(Value::as_str) {
            Some("tools_changed") if tools => Some("notifications/tools/list_changed"),
            Some("prompts_changed") if prompts => Some("notifications/prompts/list_changed"),
            Some("resources_changed") if resources => Some("notifications/resources/list_changed"),
            Some("resource_updated") => {
                let uri = event.get("uri").and_then(Value::as_str).unwrap_or_default();
                if uris.iter().any(|u| u == uri) {
                    let note = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}});
                    return futures::future::ready(Some(tag(note)));
                }
                None
            }
            _ => None,
        };
        futures::future::ready(method.map(|m| tag(json!({"jsonrpc": "2.0", "method": m, "params": {}}))))
    });
    let keepalive = state.settings.sse_keepalive;
    let frames = futures::stream::once(futures::future::ready(ack))
        .chain(notes)
        .map(|v| sse::frame(None, None, &v.to_string(), None));
    let with_keepalive = futures::stream::select(
        frames,
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
            tokio::time::Instant::now() + keepalive,
            keepalive,
        ))
        .map(|_| Bytes::from_static(b": keep-alive\n\n")),
    );
    Ok(sse::response_from_body(Body::from_stream(
        with_keepalive.map(Ok::<_, Infallible>),
    )))
}
