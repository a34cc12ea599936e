//! Partitions (endpoint id from the path, `Part-ID` header): a session belongs to the
//! partition it was opened in on every transport, odd ids answer 400 with the reason, list
//! changes reach only the partition they are for, and the original's cache routes purge a
//! partition on every node.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::legacy_sse;
use crate::modern;
use crate::nodes::{Node, SharedRedis};

const ADMIN: &str = "partition-test-admin-token";

/// The same server seen through `/{prefix}/...` with `Part-ID: part` on every request
/// (spelled as given: header names are case-insensitive).
fn under(c: &McpHttp, prefix: &str, part: Option<(&str, &str)>) -> McpHttp {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some((name, value)) = part {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let http = http_client()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .unwrap();
    McpHttp {
        base: format!("{}{prefix}", c.base),
        http,
    }
}

fn ping(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

async fn status_of(c: &McpHttp, sid: &str) -> u16 {
    c.post(Some(sid), &ping(3)).await.status().as_u16()
}

async fn tool_names(c: &McpHttp, sid: &str) -> Vec<String> {
    let listed = c.request(sid, 90, "tools/list", json!({})).await;
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// A copy of the integration config that a test may edit.
fn editable_config() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.json");
    std::fs::copy(INTEGRATION, &path).unwrap();
    (dir, path)
}

/// Removes the tool `hello` from the config file.
fn drop_hello(path: &std::path::Path) {
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    config["tools"]["tools"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["name"] != "hello");
    config["tools"]["tool_modules"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["name"] != "hello");
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

async fn cache_route(
    c: &McpHttp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = c.http.request(method, c.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_session_is_unknown_under_any_other_partition() {
    let s = TestServer::start().await;
    let a = under(&s, "/a", None);
    let sid = a.initialize("2025-11-25", json!({})).await;
    assert_eq!(status_of(&a, &sid).await, 200);
    for (what, other) in [
        ("/b/mcp", under(&s, "/b", None)),
        ("/mcp", under(&s, "", None)),
        (
            "/a/mcp with Part-ID: x",
            under(&s, "/a", Some(("Part-ID", "x"))),
        ),
    ] {
        assert_eq!(status_of(&other, &sid).await, 404, "{what}");
        let get = other.get_stream(&sid, None).await;
        assert_eq!(get.status(), 404, "GET {what}");
        assert_eq!(
            other.delete_session(&sid).await.status(),
            404,
            "DELETE {what}"
        );
    }
    assert_eq!(
        status_of(&a, &sid).await,
        200,
        "still alive where it was made"
    );

    // Part-ID in any spelling names the same partition; without it, another one.
    let tenant = under(&s, "/a", Some(("Part-Id", "t-1")));
    let sid = tenant.initialize("2025-11-25", json!({})).await;
    for spelling in ["part-id", "PART-ID", "Part-ID"] {
        let same = under(&s, "/a", Some((spelling, "t-1")));
        assert_eq!(status_of(&same, &sid).await, 200, "{spelling}");
    }
    assert_eq!(
        status_of(&a, &sid).await,
        404,
        "/a without Part-ID is another partition"
    );
    let other_part = under(&s, "/a", Some(("part-id", "t-2")));
    assert_eq!(status_of(&other_part, &sid).await, 404);
}

#[tokio::test]
async fn a_legacy_sse_session_is_unknown_under_any_other_partition() {
    let s = TestServer::start().await;
    let a = under(&s, "/a", Some(("Part-ID", "p")));
    let (mut stream, endpoint) = legacy_sse::open(&a, "/sse").await;
    assert!(
        endpoint.starts_with("/a/messages?session_id="),
        "{endpoint}"
    );
    let query = endpoint.trim_start_matches("/a/messages");
    for (what, other) in [
        ("/b/messages", under(&s, "/b", Some(("Part-ID", "p")))),
        ("/messages", under(&s, "", Some(("Part-ID", "p")))),
        ("/a/messages without Part-ID", under(&s, "/a", None)),
        (
            "/a/messages with Part-ID q",
            under(&s, "/a", Some(("part-id", "q"))),
        ),
    ] {
        let r = legacy_sse::post(&other, &format!("/messages{query}"), ping(1)).await;
        assert_eq!(r.status(), 404, "{what}");
    }
    let r = legacy_sse::post(&under(&s, "", Some(("Part-ID", "p"))), &endpoint, ping(2)).await;
    assert_eq!(r.status(), 202, "its own path and Part-ID");
    let ev = stream.next(SECS5).await.unwrap();
    assert_eq!(
        ev.json()["id"],
        2,
        "only the request sent to its own partition ran"
    );
}

#[tokio::test]
async fn odd_endpoint_ids_and_part_ids_answer_400_with_the_reason() {
    let s = TestServer::start().await;
    for path in [
        "/a.b/mcp",
        "/a.b/sse",
        "/a.b/messages",
        "/a.b/http",
        "/a.b/admin/cache",
    ] {
        let r = s
            .http
            .post(s.url(path))
            .header("content-type", "application/json")
            .body(ping(1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("invalid endpoint id \\\"a.b\\\""),
            "{path}: {body}"
        );
    }
    for part in ["a#b", "a/b", &"x".repeat(65)] {
        let c = under(&s, "/a", Some(("Part-ID", part)));
        let r = c.post(None, &ping(1)).await;
        assert_eq!(r.status(), 400, "{part}");
        assert!(
            r.text().await.unwrap().contains("invalid Part-ID"),
            "{part}"
        );
        let r = c
            .http
            .post(c.url("/http"))
            .header("content-type", "application/json")
            .body(ping(1).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "/http with {part}");
    }
    let twice = s
        .http
        .post(s.url("/a/mcp"))
        .header("part-id", "x")
        .header("part-id", "y")
        .header("content-type", "application/json")
        .body(ping(1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "two Part-IDs are one too many");
    let r = s.http.post(s.url("/.well-known/mcp")).send().await.unwrap();
    assert_eq!(r.status(), 404, "no endpoint id starts with a dot");
    // Plain HTTP serves each partition, odd ones refused before anything runs.
    let r = under(&s, "/a", Some(("Part-ID", "p")))
        .http
        .post(s.url("/a/http"))
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "hello", "arguments": {"name": "A"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "Hello, A!");
}

#[tokio::test]
async fn a_list_change_of_one_partition_reaches_its_sessions_only() {
    let (_dir, path) = editable_config();
    let mut config = integration_config();
    config.config_file = Some(path.clone());
    config.admin_static_token = Some(ADMIN.into());
    let s =
        TestServer::start_with(config, std::sync::Arc::new(mcp_daemon::clock::SystemClock)).await;
    let mut streams = Vec::new();
    for prefix in ["/a", "/b", ""] {
        let c = under(&s, prefix, None);
        let sid = c.initialize("2025-11-25", json!({})).await;
        assert!(tool_names(&c, &sid).await.contains(&"hello".into()));
        streams.push((
            prefix,
            c.clone(),
            sid.clone(),
            SseReader::new(c.get_stream(&sid, None).await),
        ));
    }
    let (mut listen_a, _) = modern::listen_for_tool_changes(&under(&s, "/a", None)).await;
    let (mut listen_b, _) = modern::listen_for_tool_changes(&under(&s, "/b", None)).await;

    drop_hello(&path);
    let (status, body) = cache_route(
        &s,
        reqwest::Method::POST,
        "/a/admin/cache/refresh",
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], "Cache refreshed for partition: a");
    assert_eq!(body["cache_stats"]["partition_key"], "a");

    let (_, a, sid_a, stream_a) = &mut streams[0];
    let note = stream_a
        .next_message(SECS5)
        .await
        .expect("a's client is told");
    assert_eq!(note.json()["method"], "notifications/tools/list_changed");
    assert!(
        !tool_names(a, sid_a).await.contains(&"hello".into()),
        "a serves the new list"
    );
    let heard = listen_a.next(SECS5).await.unwrap().json();
    assert_eq!(heard["method"], "notifications/tools/list_changed");
    for (prefix, c, sid, stream) in &mut streams[1..] {
        assert!(
            stream
                .next_message(Duration::from_millis(500))
                .await
                .is_none(),
            "{prefix:?} was told"
        );
        assert!(
            tool_names(c, sid).await.contains(&"hello".into()),
            "{prefix:?} still serves its own list"
        );
    }
    assert!(
        listen_b
            .next_message(Duration::from_millis(300))
            .await
            .is_none(),
        "b's listener was told"
    );
}

#[tokio::test]
async fn the_cache_routes_answer_the_original_shapes_and_refuse_non_admins() {
    let mut config = integration_config();
    config.admin_static_token = Some(ADMIN.into());
    let s =
        TestServer::start_with(config, std::sync::Arc::new(mcp_daemon::clock::SystemClock)).await;
    let t = under(&s, "/team", Some(("Part-ID", "p1")));
    let sid = t.initialize("2025-11-25", json!({})).await;
    let mut stream = SseReader::new(t.get_stream(&sid, None).await);
    let (st, v) = cache_route(&t, reqwest::Method::GET, "/admin/cache/status", Some(ADMIN)).await;
    assert_eq!(st, 200);
    assert_eq!(v["partition_key"], "team#p1");
    assert_eq!(v["is_cached"], true);
    assert!(v["cache_info"]["tools_count"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["cache_info"]["modules_count"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    let (st, v) = cache_route(
        &under(&s, "/other", None),
        reqwest::Method::GET,
        "/admin/cache/status",
        Some(ADMIN),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["is_cached"].clone(), v["cache_info"].clone()),
        (json!(false), Value::Null)
    );

    for (method, path) in [
        (reqwest::Method::POST, "/admin/cache/refresh"),
        (reqwest::Method::DELETE, "/admin/cache"),
        (reqwest::Method::GET, "/admin/cache/status"),
    ] {
        for token in [None, Some("not-the-admin-token")] {
            let (st, _) = cache_route(&t, method.clone(), path, token).await;
            assert_eq!(st, 403, "{method} {path} with {token:?}");
        }
    }
    let (st, _) = cache_route(&s, reqwest::Method::DELETE, "/admin/cache", None).await;
    assert_eq!(st, 403);

    let (st, v) = cache_route(&t, reqwest::Method::DELETE, "/admin/cache", Some(ADMIN)).await;
    assert_eq!(st, 200);
    assert_eq!(v["message"], "Cache cleared for partition: team#p1");
    let (st, v) = cache_route(&s, reqwest::Method::DELETE, "/admin/cache", Some(ADMIN)).await;
    assert_eq!(st, 200);
    assert_eq!(v["message"], "All MCP configuration cache cleared");
    let cleared = v["cleared_partitions"].as_array().unwrap();
    assert!(cleared.contains(&json!("team#p1")), "{v}");
    assert!(
        stream
            .next_message(Duration::from_millis(500))
            .await
            .is_none(),
        "nothing changed, nothing announced"
    );
    assert_eq!(status_of(&t, &sid).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cache_refresh_on_one_node_is_served_by_every_node_within_a_second() {
    let redis = SharedRedis::single();
    let (_dir, path) = editable_config();
    let env = [("ADMIN_STATIC_TOKEN", ADMIN)];
    let nodes = [
        Node::start_with_config(&redis, &path, &env).await,
        Node::start_with_config(&redis, &path, &env).await,
        Node::start_with_config(&redis, &path, &env).await,
    ];
    let mut clients = Vec::new();
    for node in &nodes {
        let a = under(&node.client, "/a", None);
        let sid = a.initialize("2025-11-25", json!({})).await;
        assert!(tool_names(&a, &sid).await.contains(&"hello".into()));
        let stream = SseReader::new(a.get_stream(&sid, None).await);
        let plain = under(&node.client, "", None);
        let default_sid = plain.initialize("2025-11-25", json!({})).await;
        let default_stream = SseReader::new(plain.get_stream(&default_sid, None).await);
        clients.push((a, sid, stream, default_stream));
    }
    let (mut listen_a, _) =
        modern::listen_for_tool_changes(&under(&nodes[2].client, "/a", None)).await;
    let (mut listen_b, _) =
        modern::listen_for_tool_changes(&under(&nodes[1].client, "/b", None)).await;
    drop_hello(&path);
    // Non-admins purge nothing.
    let (st, _) = cache_route(
        &nodes[0].client,
        reqwest::Method::POST,
        "/a/admin/cache/refresh",
        None,
    )
    .await;
    assert_eq!(st, 403);
    for (a, sid, _, _) in &clients {
        assert!(
            tool_names(a, sid).await.contains(&"hello".into()),
            "refused, nothing purged"
        );
    }
    let (st, _) = cache_route(
        &nodes[0].client,
        reqwest::Method::POST,
        "/a/admin/cache/refresh",
        Some(ADMIN),
    )
    .await;
    assert_eq!(st, 200);
    let answered = Instant::now();
    for (i, (a, sid, stream, default_stream)) in clients.iter_mut().enumerate() {
        let note = stream
            .next_message(SECS5)
            .await
            .unwrap_or_else(|| panic!("node {i}'s client was not told"));
        assert_eq!(note.json()["method"], "notifications/tools/list_changed");
        assert!(
            !tool_names(a, sid).await.contains(&"hello".into()),
            "node {i} told before serving"
        );
        assert!(
            answered.elapsed() < Duration::from_secs(1),
            "node {i} took {:?}",
            answered.elapsed()
        );
        assert!(
            stream
                .next_message(Duration::from_millis(300))
                .await
                .is_none(),
            "node {i}: one notice"
        );
        assert!(
            default_stream
                .next_message(Duration::from_millis(100))
                .await
                .is_none(),
            "node {i}: default told"
        );
    }
    let heard = listen_a.next(SECS5).await.unwrap().json();
    assert_eq!(
        heard["method"], "notifications/tools/list_changed",
        "a's listener on node C"
    );
    assert!(
        listen_a
            .next_message(Duration::from_millis(300))
            .await
            .is_none(),
        "one notice"
    );
    assert!(
        listen_b
            .next_message(Duration::from_millis(100))
            .await
            .is_none(),
        "b's listener was told"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_on_one_node_is_served_by_the_others_within_a_second() {
    let redis = SharedRedis::single();
    let (_dir, path) = editable_config();
    let nodes = [
        Node::start_with_config(&redis, &path, &[]).await,
        Node::start_with_config(&redis, &path, &[]).await,
        Node::start_with_config(&redis, &path, &[]).await,
    ];
    let mut clients = Vec::new();
    for node in &nodes[1..] {
        let sid = node.initialize("2025-11-25", json!({})).await;
        let stream = SseReader::new(node.get_stream(&sid, None).await);
        clients.push((node, sid, stream));
    }
    let a_sid = nodes[0].initialize("2025-11-25", json!({})).await;
    drop_hello(&path);
    nodes[0].signal("HUP");
    wait_until("node A reloads", || async {
        !tool_names(&nodes[0], &a_sid)
            .await
            .contains(&"hello".into())
    })
    .await;
    let reloaded = Instant::now();
    for (i, (node, sid, stream)) in clients.iter_mut().enumerate() {
        let note = stream
            .next_message(SECS5)
            .await
            .unwrap_or_else(|| panic!("client {i} not told"));
        assert_eq!(note.json()["method"], "notifications/tools/list_changed");
        assert!(
            !tool_names(node, sid).await.contains(&"hello".into()),
            "told before serving"
        );
        assert!(
            reloaded.elapsed() < Duration::from_secs(1),
            "took {:?}",
            reloaded.elapsed()
        );
        assert!(
            stream
                .next_message(Duration::from_millis(300))
                .await
                .is_none(),
            "one notice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_bus_reconnects_reloads_its_catalogs() {
    let mut redis = SharedRedis::durable();
    let (_dir, path) = editable_config();
    let node = Node::start_with_config(&redis, &path, &[]).await;
    let sid = node.initialize("2025-11-25", json!({})).await;
    assert!(tool_names(&node, &sid).await.contains(&"hello".into()));
    drop_hello(&path);
    // No SIGHUP, no event: only the reconnect tells the node it may have missed one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tool_names(&node, &sid).await.contains(&"hello".into()),
        "nothing reloads by itself"
    );
    redis.single_server().restart();
    wait_until("the node reloads after Redis came back", || async {
        let r = node
            .post(
                Some(&sid),
                &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
            )
            .await;
        if r.status() != 200 {
            return false;
        }
        let v: Value = r.json().await.unwrap();
        !v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "hello")
    })
    .await;
}
