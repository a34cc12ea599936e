//! The 2024-11-05 HTTP+SSE transport.

use serde_json::{Value, json};

use crate::harness::*;

pub async fn open(s: &McpHttp, path: &str) -> (SseReader, String) {
    let resp = s
        .http
        .get(s.url(path))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut r = SseReader::new(resp);
    let ev = r.next(SECS5).await.unwrap();
    assert_eq!(ev.event.as_deref(), Some("endpoint"));
    (r, ev.data)
}

pub async fn post(s: &McpHttp, endpoint: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url(endpoint))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn endpoint_event_then_responses_on_the_stream() {
    let s = TestServer::start().await;
    let (mut stream, endpoint) = open(&s, "/sse").await;
    assert!(endpoint.starts_with("/messages?session_id="), "{endpoint}");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(post(&s, &endpoint, init).await.status(), 202);
    let ev = stream.next(SECS5).await.unwrap();
    assert_eq!(ev.event.as_deref(), Some("message"));
    assert_eq!(ev.json()["result"]["protocolVersion"], "2024-11-05");
    post(
        &s,
        &endpoint,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "hello", "arguments": {"name": "SSE"}}});
    assert_eq!(post(&s, &endpoint, call).await.status(), 202);
    let ev = stream.next(SECS5).await.unwrap();
    assert_eq!(ev.json()["result"]["content"][0]["text"], "Hello, SSE!");
}

#[tokio::test]
async fn endpoint_id_prefix_is_kept() {
    let s = TestServer::start().await;
    let (_stream, endpoint) = open(&s, "/team-a/sse").await;
    assert!(
        endpoint.starts_with("/team-a/messages?session_id="),
        "{endpoint}"
    );
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(post(&s, &endpoint, ping).await.status(), 202);
}

#[tokio::test]
async fn bad_or_unknown_session_ids() {
    let s = TestServer::start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(post(&s, "/messages", ping.clone()).await.status(), 400);
    assert_eq!(
        post(&s, "/messages?session_id=has%20space", ping.clone())
            .await
            .status(),
        400
    );
    assert_eq!(
        post(
            &s,
            "/messages?session_id=00112233445566778899aabbccddeeff",
            ping.clone()
        )
        .await
        .status(),
        404
    );
    // A streamable-HTTP session is not an SSE session.
    let sid = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(
        post(&s, &format!("/messages?session_id={sid}"), ping)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn closing_the_stream_ends_the_session() {
    let s = TestServer::start().await;
    let before = s.engine.footprint().await.unwrap();
    let (stream, endpoint) = open(&s, "/sse").await;
    assert_eq!(
        s.engine.footprint().await.unwrap().sessions,
        before.sessions.map(|n| n + 1)
    );
    drop(stream);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    crate::harness::wait_until("the closed stream's session ends", || async {
        post(&s, &endpoint, ping.clone()).await.status() == 404
    })
    .await;
    assert_eq!(s.engine.footprint().await.unwrap(), before);
}
