//! `/http`: one JSON-RPC message in, one JSON response out, no session.

use serde_json::{Value, json};

use crate::harness::*;

async fn rpc(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = s
        .http
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn calls_reads_and_prompts_without_a_session() {
    let s = TestServer::start().await;
    let (st, v) = rpc(&s, "/http", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_numbers", "arguments": {"a": 2, "b": 40}}})).await;
    assert_eq!(
        (st, v["result"]["content"][0]["text"].as_str()),
        (200, Some("42"))
    );
    let (_, v) = rpc(&s, "/team-a/http", json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "status://server"}})).await;
    assert_eq!(v["result"]["contents"][0]["uri"], "status://server");
    let (_, v) = rpc(&s, "/http", json!({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "example-prompt", "arguments": {"arg1": "q"}}})).await;
    assert!(
        v["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains('q')
    );
    let (_, v) = rpc(
        &s,
        "/http",
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
    )
    .await;
    assert!(v["result"]["tools"].as_array().unwrap().len() > 2);
}

#[tokio::test]
async fn session_only_features_fail_clearly() {
    let s = TestServer::start().await;
    let (_, v) = rpc(&s, "/http", json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "info"}})).await;
    assert_eq!(v["error"]["code"], -32600);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs a session")
    );
    let (_, v) = rpc(&s, "/http", json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "test_elicitation", "arguments": {"message": "x"}}})).await;
    assert_eq!(v["result"]["isError"], true);
    let (st, v) = rpc(
        &s,
        "/http",
        json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32600)));
    let (st, _) = rpc(
        &s,
        "/http",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(st, 202);
    // An endpoint id the partition rules refuse: 400 with the reason (the original's
    // "Invalid endpoint_id"), not a 404 that reads like a missing route.
    let (st, v) = rpc(
        &s,
        "/bad.id/http",
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid endpoint id"),
        "{v}"
    );
}
