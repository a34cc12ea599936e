//! Every bad input gets a clear error and leaves the server and other sessions intact.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::harness::*;
use mcp_daemon::clock::SystemClock;
use mcp_daemon::config::Config;

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    (status, body["error"].clone())
}

#[tokio::test]
async fn malformed_json_is_400_with_parse_error() {
    let s = TestServer::start().await;
    let (status, err) = error_of(s.post_raw(None, "{not json", &[]).await).await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(-32700)));
}

#[tokio::test]
async fn deep_nesting_is_refused_with_a_clear_message() {
    let s = TestServer::start().await;
    let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, err) = error_of(s.post_raw(None, body, &[]).await).await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(-32700)));
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("nesting deeper than 64")
    );
    // The server is still fine.
    let sid = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(
        s.request(&sid, 1, "ping", json!({})).await["result"],
        json!({})
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let mut c = integration_config();
    c.max_body_bytes = 1024;
    let s = TestServer::start_with(c, std::sync::Arc::new(mcp_daemon::clock::SystemClock)).await;
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4096)}});
    let (status, err) = error_of(s.post(None, &big).await).await;
    assert_eq!(status, 413);
    assert!(err["message"].as_str().unwrap().contains("1024-byte limit"));
}

#[tokio::test]
async fn session_rules_missing_400_unknown_404_deleted_404() {
    let s = TestServer::start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let (status, _) = error_of(s.post(None, &ping).await).await;
    assert_eq!(status, 400, "missing session on a non-initialize request");
    let (status, err) = error_of(
        s.post(Some("0123456789abcdef0123456789abcdef"), &ping)
            .await,
    )
    .await;
    assert_eq!((status, err["code"].as_i64()), (404, Some(-32001)));
    let (status, _) = error_of(s.post(Some("not a visible-ascii id"), &ping).await).await;
    assert_eq!(status, 404);

    let sid = s.initialize("2025-11-25", json!({})).await;
    let del = s.delete_session(&sid).await;
    assert_eq!(del.status(), 200);
    let (status, _) = error_of(s.post(Some(&sid), &ping).await).await;
    assert_eq!(status, 404, "a deleted session is gone");
    assert_eq!(s.get_stream(&sid, None).await.status(), 404);
    let del = s.delete_session(&sid).await;
    assert_eq!(del.status(), 404);
}

#[tokio::test]
async fn protocol_version_header_is_checked() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-06-18", json!({})).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let resp = s
        .post_raw(
            Some(&sid),
            ping.clone(),
            &[("mcp-protocol-version", "1999-01-01")],
        )
        .await;
    let (status, err) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("Unsupported protocol version")
    );
    let resp = s
        .post_raw(
            Some(&sid),
            ping.clone(),
            &[("mcp-protocol-version", "2025-11-25")],
        )
        .await;
    assert_eq!(resp.status(), 400, "must match the negotiated version");
    let resp = s
        .post_raw(Some(&sid), ping, &[("mcp-protocol-version", "2025-06-18")])
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn initialize_echoes_supported_versions_and_offers_latest_otherwise() {
    let s = TestServer::start().await;
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        s.initialize(v, json!({})).await;
    }
    let resp = s
        .post(None, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2099-01-01", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}))
        .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
    let resp = s
        .post(
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32602);
}

#[tokio::test]
async fn bad_origin_and_host_are_403() {
    let s = TestServer::start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let resp = s
        .post_raw(None, ping.clone(), &[("origin", "http://evil.example.com")])
        .await;
    assert_eq!(resp.status(), 403);
    let resp = s
        .post_raw(None, ping.clone(), &[("host", "evil.example.com")])
        .await;
    assert_eq!(resp.status(), 403);
    let health = s
        .http
        .get(s.url("/health"))
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 403, "every HTTP route is guarded");
    // Another page on this machine (any other port) is another origin: refused, so it
    // cannot drive a daemon that runs without authentication.
    let other_page = s
        .post_raw(None, ping.clone(), &[("origin", "http://localhost:5173")])
        .await;
    assert_eq!(other_page.status(), 403);
    let why: Value = other_page.json().await.unwrap();
    assert!(
        why["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Origin 'http://localhost:5173' is not allowed"),
        "{why}"
    );
    // The daemon's own origin (pages it serves) is accepted.
    let ok = s.post_raw(None, ping.clone(), &[("origin", &s.base)]).await;
    assert_ne!(ok.status(), 403);
    assert_eq!(
        ok.headers()["access-control-expose-headers"],
        "Mcp-Session-Id, WWW-Authenticate"
    );
}

#[tokio::test]
async fn configured_origins_are_accepted() {
    let mut c = integration_config();
    c.allowed_origins = vec!["http://localhost:5173".into()];
    let s = TestServer::start_with(c, Arc::new(SystemClock)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let ok = s
        .post_raw(None, ping.clone(), &[("origin", "http://localhost:5173")])
        .await;
    assert_ne!(ok.status(), 403);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let other = s
        .post_raw(None, ping, &[("origin", "http://localhost:5174")])
        .await;
    assert_eq!(other.status(), 403);
}

#[tokio::test]
async fn content_type_and_accept_are_enforced() {
    let s = TestServer::start().await;
    let resp = s
        .http
        .post(s.url("/mcp"))
        .header("content-type", "text/plain")
        .header("accept", "*/*")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = s
        .http
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
}

#[tokio::test]
async fn unknown_method_tool_prompt_resource_get_spec_codes() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let e = s.request(&sid, 1, "no/such/method", json!({})).await;
    assert_eq!(e["error"]["code"], -32601);
    let e = s
        .request(&sid, 2, "tools/call", json!({"name": "nope"}))
        .await;
    assert_eq!(e["error"]["code"], -32602);
    assert_eq!(e["error"]["message"], "Unknown tool: nope");
    let e = s
        .request(&sid, 3, "prompts/get", json!({"name": "nope"}))
        .await;
    assert_eq!(e["error"]["code"], -32602);
    let e = s
        .request(&sid, 4, "prompts/get", json!({"name": "example-prompt"}))
        .await;
    assert_eq!(
        e["error"]["code"], -32602,
        "missing required prompt argument"
    );
    let e = s
        .request(&sid, 5, "resources/read", json!({"uri": "test://nope"}))
        .await;
    assert_eq!(e["error"]["code"], -32002);
    assert_eq!(e["error"]["data"]["uri"], "test://nope");
    let e = s.request(&sid, 6, "tools/call", json!({})).await;
    assert_eq!(e["error"]["code"], -32602);
    let e = s
        .request(&sid, 7, "tools/list", json!({"cursor": "bogus"}))
        .await;
    assert_eq!(e["error"]["code"], -32602);
    let e = s
        .request(&sid, 8, "logging/setLevel", json!({"level": "loud"}))
        .await;
    assert_eq!(e["error"]["code"], -32602);
}

#[tokio::test]
async fn invalid_jsonrpc_shapes_are_invalid_requests() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    for body in [
        r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        r#"{"id":1,"method":"ping"}"#,
        r#""just a string""#,
    ] {
        let (status, err) = error_of(s.post_raw(Some(&sid), body, &[]).await).await;
        assert_eq!(
            (status, err["code"].as_i64()),
            (400, Some(-32600)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn batches_only_for_2025_03_26() {
    let s = TestServer::start().await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add_numbers", "arguments": {"a": 1, "b": 2}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"}
    ]);
    let new = s.initialize("2025-11-25", json!({})).await;
    let (status, err) = error_of(s.post(Some(&new), &batch).await).await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(-32600)));

    let old = s.initialize("2025-03-26", json!({})).await;
    let resp = s.post(Some(&old), &batch).await;
    assert_eq!(resp.status(), 200);
    let answers: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(answers.len(), 2);
    let sum = answers.iter().find(|a| a["id"] == 2).unwrap();
    assert_eq!(sum["result"]["content"][0]["text"], "3");
}

#[tokio::test]
async fn a_config_with_an_unavailable_runtime_fails_at_start_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, r#"{"tools":{"tools":[{"name":"py_tool"}],"tool_modules":[{"name":"py_tool","module_name":"my_pkg.tools","function_name":"run"}]}}"#).unwrap();
    let mut c = Config::for_test();
    c.config_file = Some(path);
    let err = mcp_daemon::app::build(&c).await.err().unwrap().to_string();
    assert!(
        err.contains("tool 'py_tool'") && err.contains("my_pkg.tools"),
        "{err}"
    );
}

#[tokio::test]
async fn a_request_id_in_use_is_refused_without_disturbing_the_running_call() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let sid = s.initialize("2025-11-25", json!({})).await;
    let call = |ms: u64| {
        json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
        "params": {"name": "testkit_sleep", "arguments": {"ms": ms, "steps": 1}}})
    };
    let (s2, sid2, first) = (s.clone(), sid.clone(), call(400));
    let running = tokio::spawn(async move {
        s2.post(Some(&sid2), &first)
            .await
            .json::<Value>()
            .await
            .unwrap()
    });
    wait_until("the first call runs", || async {
        s.engine.footprint().await.unwrap().running_requests > 0
    })
    .await;
    let dup: Value = s.post(Some(&sid), &call(0)).await.json().await.unwrap();
    assert_eq!(dup["error"]["code"], -32600);
    assert!(
        dup["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in use")
    );
    let first = running.await.unwrap();
    assert_eq!(first["result"]["content"][0]["text"], "slept 400 ms");
    // Another session may use the same id at the same time.
    let other = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(
        s.post(Some(&other), &call(0))
            .await
            .json::<Value>()
            .await
            .unwrap()["result"]["content"][0]["text"],
        "slept 0 ms"
    );
}
