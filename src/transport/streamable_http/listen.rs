//! `subscriptions/listen` (MCP 2026-07-28 basic/patterns/subscriptions): a long-lived SSE
//! response fed from the bus, so a change made through any node reaches every listener of the
//! request's partition (and no other).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::catalog::CatalogChanges;
use crate::engine::list_notifications;
use crate::engine::modern::META_SUBSCRIPTION_ID;
use crate::engine::topics::CatalogEvent;
use crate::protocol::{PartitionKey, Request};
use crate::transport::HttpState;
use crate::transport::http_error::HttpError;
use crate::transport::sse;

/// `subscriptions/listen`: acknowledges at once, then sends the catalog notifications the
/// client asked for, each tagged with the subscription id (the listen request's id).
pub async fn listen(
    state: &HttpState,
    partition: &PartitionKey,
    req: &Request,
) -> Result<Response, HttpError> {
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
    let partition = partition.clone();
    let notes = events
        .filter_map(move |event| {
            let notes: Vec<Value> = match event {
                CatalogEvent::ListsChanged {
                    partition: p,
                    lists,
                } if p == partition => {
                    let wanted = CatalogChanges {
                        tools: lists.tools && tools,
                        resources: lists.resources && resources,
                        prompts: lists.prompts && prompts,
                    };
                    list_notifications(&wanted)
                        .map(|m| tag(json!({"jsonrpc": "2.0", "method": m, "params": {}})))
                        .collect()
                }
                CatalogEvent::ResourceUpdated { partition: p, uri }
                    if p == partition && uris.contains(&uri) =>
                {
                    vec![tag(json!({"jsonrpc": "2.0",
                        "method": "notifications/resources/updated", "params": {"uri": uri}}))]
                }
                _ => Vec::new(),
            };
            futures::future::ready(Some(futures::stream::iter(notes)))
        })
        .flatten();
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
