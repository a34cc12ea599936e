//! What one caller may keep in sessions, refused with an error that names the setting: live
//! sessions per user (and for unauthenticated callers together), the size of what `initialize`
//! declares, subscriptions per session.

use serde_json::{Value, json};

use crate::auth::AuthServer;
use crate::harness::*;

fn init(client_info: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client_info}})
}

#[tokio::test]
async fn oversized_client_metadata_is_refused_and_nothing_is_stored() {
    let mut c = integration_config();
    c.state_limits.max_client_metadata_bytes = 1024;
    let s = TestServer::start_with(c, std::sync::Arc::new(mcp_daemon::clock::SystemClock)).await;
    let big = json!({"name": "x".repeat(2000), "version": "1"});
    let resp = s.post(None, &init(big)).await;
    assert!(resp.headers().get("mcp-session-id").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("clientInfo") && msg.contains("MAX_CLIENT_METADATA_BYTES"),
        "{msg}"
    );
    let caps = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"experimental": {"x": "y".repeat(2000)}},
        "clientInfo": {"name": "it", "version": "1"}}});
    let body: Value = s.post(None, &caps).await.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'capabilities'"),
        "{body}"
    );
    assert_eq!(s.engine.footprint().await.unwrap().sessions, Some(0));
    // Within the limit it is accepted.
    s.initialize(
        "2025-11-25",
        json!({"experimental": {"x": "y".repeat(500)}}),
    )
    .await;
    assert_eq!(s.engine.footprint().await.unwrap().sessions, Some(1));
}

#[tokio::test]
async fn unauthenticated_callers_share_one_session_cap() {
    let mut c = integration_config();
    c.state_limits.max_anonymous_sessions = 3;
    let s = TestServer::start_with(c, std::sync::Arc::new(mcp_daemon::clock::SystemClock)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(s.initialize("2025-11-25", json!({})).await);
    }
    let resp = s
        .post(None, &init(json!({"name": "it", "version": "1"})))
        .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 0, "the refusal answers the initialize: {body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("MAX_ANONYMOUS_SESSIONS"), "{msg}");
    // The legacy SSE transport opens sessions too, under the same cap.
    let sse = s
        .http
        .get(s.url("/sse"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 429);
    assert!(sse.text().await.unwrap().contains("MAX_ANONYMOUS_SESSIONS"));
    assert_eq!(s.engine.footprint().await.unwrap().sessions, Some(3));
    // Ending one lets a new one in.
    assert_eq!(s.delete_session(&ids[0]).await.status(), 200);
    s.initialize("2025-11-25", json!({})).await;
}

#[tokio::test]
async fn each_user_has_a_session_cap_of_their_own() {
    let token = "static-admin-token-0123456789abcdef";
    let s = AuthServer::start_with("admin", |c| {
        c.admin_static_token = Some(token.into());
        c.state_limits.max_sessions_per_user = 2;
    })
    .await;
    let admin = s.srv.with_token(token);
    let first = admin.initialize("2025-11-25", json!({})).await;
    admin.initialize("2025-11-25", json!({})).await;
    let resp = admin
        .post(None, &init(json!({"name": "it", "version": "1"})))
        .await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("MAX_SESSIONS_PER_USER") && msg.contains("this user"),
        "{msg}"
    );
    assert_eq!(admin.delete_session(&first).await.status(), 200);
    admin.initialize("2025-11-25", json!({})).await;
}

#[tokio::test]
async fn subscriptions_per_session_and_uri_length_are_capped() {
    let mut c = integration_config();
    c.state_limits.max_subscriptions_per_session = 2;
    c.state_limits.max_subscription_uri_bytes = 64;
    let s = TestServer::start_with(c, std::sync::Arc::new(mcp_daemon::clock::SystemClock)).await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let sub = |n: &str| json!({"uri": format!("test://template/{n}/data")});
    for (i, n) in ["1", "2"].iter().enumerate() {
        let r = s
            .request(&sid, i as i64 + 1, "resources/subscribe", sub(n))
            .await;
        assert_eq!(r["result"], json!({}), "{r}");
    }
    let r = s.request(&sid, 3, "resources/subscribe", sub("3")).await;
    assert_eq!(r["error"]["code"], -32000, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_SUBSCRIPTIONS_PER_SESSION"),
        "{r}"
    );
    let r = s.request(&sid, 4, "resources/subscribe", sub("1")).await;
    assert_eq!(
        r["result"],
        json!({}),
        "subscribing again at the cap is a no-op: {r}"
    );
    let r = s.request(&sid, 5, "resources/unsubscribe", sub("1")).await;
    assert_eq!(r["result"], json!({}));
    let r = s.request(&sid, 6, "resources/subscribe", sub("3")).await;
    assert_eq!(r["result"], json!({}), "a freed slot takes a new one: {r}");
    let long = "9".repeat(80);
    let r = s.request(&sid, 7, "resources/subscribe", sub(&long)).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_SUBSCRIPTION_URI_BYTES"),
        "{r}"
    );
}
