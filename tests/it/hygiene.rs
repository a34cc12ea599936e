//! Request hygiene on every route: body limits beyond `POST /mcp`, no duplicate JSON keys or
//! `Mcp-*` headers (two readers could disagree), and a `/health` that tells the public only
//! whether the node is up.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::auth::{AuthServer, access};
use crate::harness::{TestServer, integration_config};
use mcp_daemon::clock::SystemClock;

#[tokio::test]
async fn duplicate_json_keys_are_a_parse_error() {
    let s = TestServer::start().await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}"#;
    let resp = s.post_raw(None, body, &[]).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("duplicate key \"method\""), "{message}");
    // The same on plain HTTP, and inside params.
    let nested = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_numbers","arguments":{"a":1,"a":2,"b":3}}}"#;
    let resp = s
        .http
        .post(s.url("/http"))
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700, "{v}");
}

#[tokio::test]
async fn duplicate_mcp_headers_are_refused_with_400() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-06-18", json!({})).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    for (name, a, b) in [
        ("mcp-session-id", sid.as_str(), "other-session"),
        ("mcp-protocol-version", "2025-06-18", "2025-03-26"),
        ("mcp-method", "ping", "tools/call"),
        ("mcp-name", "a", "b"),
    ] {
        let mut extra = vec![(name, a), (name, b)];
        if name != "mcp-session-id" {
            extra.push(("mcp-session-id", sid.as_str()));
        }
        let resp = s.post_raw(None, ping.clone(), &extra).await;
        assert_eq!(resp.status(), 400, "{name}");
        let v: Value = resp.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("the {name} header appears more than once")),
            "{message}"
        );
    }
    // Once each is fine.
    let ok = s.post_raw(Some(&sid), ping, &[]).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn every_route_family_applies_the_body_limit() {
    let s = AuthServer::start_with("admin", |c| c.max_body_bytes = 8 * 1024).await;
    let big = format!("a={}", "x".repeat(12 * 1024));
    let form = "application/x-www-form-urlencoded";
    for (path, content_type) in [
        ("/token", form),
        ("/revoke", form),
        ("/register", "application/json"),
        ("/authorize/login", form),
        ("/authorize/consent", form),
        ("/authorize/upstream", form),
        ("/auth/login", "application/json"),
    ] {
        let resp = s
            .http
            .post(s.url(path))
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413, "{path} read a body past MAX_BODY_BYTES");
    }
    // Under the limit the endpoints read the body and answer as usual (here: a token request
    // from no known client).
    let small = s
        .http
        .post(s.url("/token"))
        .header("content-type", form)
        .body(format!(
            "grant_type=refresh_token&refresh_token={}",
            "x".repeat(6 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(small.status(), 413);
    assert!(small.status().is_client_error());
}

#[tokio::test]
async fn registration_keeps_its_smaller_limit() {
    let s = AuthServer::start("admin").await;
    let metadata = json!({"redirect_uris": ["http://127.0.0.1:5999/cb"], "client_name": "x".repeat(20 * 1024)});
    let resp = s
        .http
        .post(s.url("/register"))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn public_health_is_minimal_and_details_need_the_admin_token() {
    let token = "health-admin-static-token-0123456789abcdef";
    let mut c = integration_config();
    c.admin_static_token = Some(token.into());
    let s = TestServer::start_with(c, Arc::new(SystemClock)).await;
    let public: Value = s.get_json(s.url("/health")).await;
    assert_eq!(public, json!({"status": "ok"}));
    let wrong: Value = s
        .with_token("not-the-admin-token-0123456789abcdefgh")
        .get_json(s.url("/health"))
        .await;
    assert_eq!(wrong, json!({"status": "ok"}));
    let admin: Value = s.with_token(token).get_json(s.url("/health")).await;
    assert_eq!(admin["status"], "ok");
    assert!(admin["version"].is_string(), "{admin}");
    assert_eq!(admin["footprint"]["sessions"], 0, "{admin}");
}

#[tokio::test]
async fn health_details_with_auth_need_an_admin_bearer() {
    let admin = AuthServer::start("admin").await;
    let (_, t) = admin.oauth.sign_in(&[]).await;
    let details: Value = admin
        .with_token(access(&t))
        .get_json(admin.url("/health"))
        .await;
    assert!(details["footprint"].is_object(), "{details}");
    let alice = AuthServer::start("alice").await;
    let (_, t) = alice.oauth.sign_in(&[]).await;
    let plain: Value = alice
        .with_token(access(&t))
        .get_json(alice.url("/health"))
        .await;
    assert_eq!(plain, json!({"status": "ok"}));
}
