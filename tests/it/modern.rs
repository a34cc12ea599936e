//! The stateless era (MCP 2026-07-28) on the same endpoint as the legacy one.

use serde_json::{Value, json};

use crate::harness::*;

const V: &str = "2026-07-28";

pub fn meta(caps: Value) -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": caps})
}

/// Sends one stateless request with correct headers unless `headers` overrides them.
pub async fn send(
    s: &McpHttp,
    method: &str,
    mut params: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    if params.get("_meta").is_none() {
        params["_meta"] = meta(json!({}));
    }
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let mut req = s
        .http
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    let overridden = |h: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(h));
    if !overridden("mcp-protocol-version") {
        req = req.header("mcp-protocol-version", V);
    }
    if !overridden("mcp-method") {
        req = req.header("mcp-method", method);
    }
    if let Some(n) = name.filter(|_| !overridden("mcp-name")) {
        req = req.header("mcp-name", n);
    }
    for (k, v) in headers {
        if !v.is_empty() {
            req = req.header(*k, *v);
        }
    }
    req.body(body.to_string()).send().await.unwrap()
}

/// Opens `subscriptions/listen` for tool list changes and reads its acknowledgement.
pub async fn listen_for_tool_changes(s: &McpHttp) -> (SseReader, Value) {
    let resp = send(
        s,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        &[],
    )
    .await;
    let mut stream = SseReader::new(resp);
    let ack = stream.next(SECS5).await.unwrap().json();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    (stream, ack)
}

pub async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn discover_and_decorated_results() {
    let s = TestServer::start().await;
    let (st, v) = json_of(send(&s, "server/discover", json!({}), &[]).await).await;
    assert_eq!(st, 200);
    let r = &v["result"];
    assert_eq!(r["supportedVersions"], json!([V]));
    assert_eq!(r["resultType"], "complete");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-daemon"
    );
    assert!(r["capabilities"]["tools"].is_object());
    let (_, v) = json_of(send(&s, "tools/list", json!({}), &[]).await).await;
    assert_eq!(
        (
            v["result"]["cacheScope"].as_str(),
            v["result"]["resultType"].as_str()
        ),
        (Some("public"), Some("complete"))
    );
    assert!(v["result"]["ttlMs"].is_u64());
    let (_, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "add_numbers", "arguments": {"a": 2, "b": 2}}),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(v["result"]["content"][0]["text"], "4");
    let (_, v) =
        json_of(send(&s, "resources/read", json!({"uri": "test://nope"}), &[]).await).await;
    assert_eq!(
        (
            v["error"]["code"].as_i64(),
            v["error"]["data"]["uri"].as_str()
        ),
        (Some(-32602), Some("test://nope"))
    );
}

#[tokio::test]
async fn meta_headers_versions_and_methods_are_validated() {
    let s = TestServer::start().await;
    let (st, v) = json_of(
        send(
            &s,
            "server/discover",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": V}}),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_i64(), v["id"].as_i64()),
        (400, Some(-32602), Some(7))
    );
    let (st, v) = json_of(
        send(
            &s,
            "tools/list",
            json!({}),
            &[("mcp-method", "prompts/list")],
        )
        .await,
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32020)));
    let (st, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "hello"}),
            &[("mcp-name", "other")],
        )
        .await,
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32020)));
    let bad_version = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "v999", "io.modelcontextprotocol/clientCapabilities": {}}});
    let (st, v) = json_of(
        send(
            &s,
            "server/discover",
            bad_version.clone(),
            &[("mcp-protocol-version", "v999")],
        )
        .await,
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32022)));
    assert_eq!(v["error"]["data"]["supported"], json!([V]));
    let (st, v) = json_of(send(&s, "server/discover", bad_version, &[]).await).await;
    assert_eq!(
        (st, v["error"]["code"].as_i64()),
        (400, Some(-32020)),
        "header and _meta disagree"
    );
    for removed in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "no/such",
    ] {
        let (st, v) = json_of(send(&s, removed, json!({}), &[]).await).await;
        assert_eq!(
            (st, v["error"]["code"].as_i64()),
            (404, Some(-32601)),
            "{removed}"
        );
    }
    let get = s
        .http
        .get(s.url("/mcp"))
        .header("mcp-protocol-version", V)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    // x-mcp-header parameters must be mirrored, base64 sentinels decoded.
    let call = json!({"name": "test_header_param", "arguments": {"region": "Hello"}});
    let (st, _) = json_of(send(&s, "tools/call", call.clone(), &[]).await).await;
    assert_eq!(st, 400, "Mcp-Param-Region missing");
    let (st, v) = json_of(
        send(
            &s,
            "tools/call",
            call.clone(),
            &[("mcp-param-region", "=?base64?SGVsbG8=?=")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["result"]["content"][0]["text"].as_str()),
        (200, Some("Region: Hello"))
    );
    let (st, _) = json_of(
        send(
            &s,
            "tools/call",
            call,
            &[("mcp-param-region", "=?base64?SGVs!!bG8=?=")],
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn input_required_round_trips_with_sealed_state() {
    let s = TestServer::start().await;
    let caps = json!({"elicitation": {}, "sampling": {}, "roots": {}});
    let call = |extra: Value| {
        let mut p =
            json!({"name": "test_input_required_result_multi_round", "_meta": meta(caps.clone())});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let (_, r1) = json_of(send(&s, "tools/call", call(json!({})), &[]).await).await;
    let r1 = &r1["result"];
    assert_eq!(r1["resultType"], "input_required");
    assert_eq!(r1["inputRequests"]["step1"]["method"], "elicitation/create");
    let state1 = r1["requestState"].as_str().unwrap().to_string();
    let answer = |k: &str, f: &str, v: &str| json!({k: {"action": "accept", "content": {f: v}}});
    let (_, r2) = json_of(
        send(
            &s,
            "tools/call",
            call(json!({"inputResponses": answer("step1", "name", "Ada"), "requestState": state1})),
            &[],
        )
        .await,
    )
    .await;
    let r2 = &r2["result"];
    assert_eq!(r2["inputRequests"]["step2"]["method"], "elicitation/create");
    let state2 = r2["requestState"].as_str().unwrap().to_string();
    assert_ne!(state2, state1);
    let (_, r3) = json_of(send(&s, "tools/call", call(json!({"inputResponses": answer("step2", "color", "teal"), "requestState": state2.clone()})), &[]).await).await;
    assert_eq!(r3["result"]["content"][0]["text"], "Ada likes teal");
    // A tampered state is refused, and so is a state replayed against another tool.
    let tampered = format!("{state2}x");
    let (_, bad) = json_of(send(&s, "tools/call", call(json!({"inputResponses": answer("step2", "color", "red"), "requestState": tampered})), &[]).await).await;
    assert_eq!(bad["error"]["code"], -32602);
    let elsewhere = json!({"name": "test_input_required_result_tampered_state", "_meta": meta(caps.clone()),
        "inputResponses": answer("confirm", "ok", "true"), "requestState": state2});
    let (_, bad) = json_of(send(&s, "tools/call", elsewhere, &[]).await).await;
    assert_eq!(bad["error"]["code"], -32602);
    // Undeclared capability: -32021 with the capability named, HTTP 400.
    let (st, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "test_missing_capability"}),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32021)));
    assert_eq!(
        v["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
}

#[tokio::test]
async fn logs_only_with_a_level_and_progress_streams() {
    let s = TestServer::start().await;
    let (_, v) =
        json_of(send(&s, "tools/call", json!({"name": "test_logging_tool"}), &[]).await).await;
    assert_eq!(
        v["result"]["content"][0]["text"], "Logging evaluated",
        "no logLevel: plain JSON, no messages"
    );
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/logLevel"] = json!("info");
    m["progressToken"] = json!("p1");
    let resp = send(
        &s,
        "tools/call",
        json!({"name": "test_logging_tool", "_meta": m}),
        &[],
    )
    .await;
    let events = SseReader::new(resp).until_response(&json!(7), SECS5).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.json()["method"] == "notifications/message")
            .count(),
        2
    );
}

#[tokio::test]
async fn listen_acknowledges_and_filters() {
    let s = TestServer::start().await;
    let (mut stream, ack) = listen_for_tool_changes(&s).await;
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
    send(
        &s,
        "tools/call",
        json!({"name": "test_trigger_prompt_change"}),
        &[],
    )
    .await;
    send(
        &s,
        "tools/call",
        json!({"name": "test_trigger_tool_change"}),
        &[],
    )
    .await;
    let note = stream.next(SECS5).await.unwrap().json();
    assert_eq!(
        note["method"], "notifications/tools/list_changed",
        "prompt changes were filtered out"
    );
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
}

#[tokio::test]
async fn legacy_and_stateless_clients_share_the_endpoint() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({"elicitation": {}})).await;
    assert_eq!(
        s.call_tool(&sid, "hello", json!({})).await["content"][0]["text"],
        "Hello, World!"
    );
    let (_, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "hello", "arguments": {"name": "Now"}}),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(v["result"]["content"][0]["text"], "Hello, Now!");
    // The same builtin asks for input in both eras: a request on the stream in the legacy one.
    let resp = s
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "test_input_required_result_elicitation"}}),
        )
        .await;
    let mut reader = SseReader::new(resp);
    let req = reader.until_method("elicitation/create").await;
    let answer = json!({"jsonrpc": "2.0", "id": req["id"], "result": {"action": "accept", "content": {"name": "Lin"}}});
    s.post(Some(&sid), &answer).await;
    let done = reader.until_response(&json!(4), SECS5).await;
    assert_eq!(
        done.last().unwrap().json()["result"]["content"][0]["text"],
        "Hello, Lin!"
    );
    assert!(
        done.last().unwrap().json()["result"]
            .get("resultType")
            .is_none(),
        "legacy results stay undecorated"
    );
}

#[tokio::test]
async fn closing_the_response_cancels_the_work() {
    let s = TestServer::start().await;
    let mut m = meta(json!({}));
    m["progressToken"] = json!("t");
    let resp = send(
        &s,
        "tools/call",
        json!({"name": "testkit_sleep", "arguments": {"ms": 20000, "steps": 200}, "_meta": m}),
        &[],
    )
    .await;
    let mut reader = SseReader::new(resp);
    let first = reader.next(SECS5).await.unwrap().json();
    assert_eq!(first["method"], "notifications/progress");
    drop(reader); // the client goes away
    let read_stats = || async {
        let (_, v) =
            json_of(send(&s, "resources/read", json!({"uri": "testkit://stats"}), &[]).await).await;
        serde_json::from_str::<Value>(v["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
    };
    crate::harness::wait_until("the call is cancelled", || async {
        read_stats().await["cancelled"] == 1
    })
    .await;
    assert_eq!(
        read_stats().await,
        json!({"started": 1, "completed": 0, "cancelled": 1})
    );
}

pub fn with_tasks() -> Value {
    meta(json!({"elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}))
}

pub async fn poll_until(s: &McpHttp, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + crate::harness::PATIENCE;
    while tokio::time::Instant::now() < deadline {
        let (_, v) = json_of(
            send(
                s,
                "tasks/get",
                json!({"taskId": id, "_meta": with_tasks()}),
                &[("mcp-name", id)],
            )
            .await,
        )
        .await;
        if v["result"]["status"] == status {
            return v["result"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("task {id} never reached {status}");
}

#[tokio::test]
async fn tasks_run_answer_questions_and_cancel() {
    let s = TestServer::start().await;
    // Without the extension an optional-task tool answers inline; a required one is -32021.
    let (_, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0.05}}),
            &[],
        )
        .await,
    )
    .await;
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("computed")
    );
    let (st, v) = json_of(send(&s, "tools/call", json!({"name": "failing_job"}), &[]).await).await;
    assert_eq!((st, v["error"]["code"].as_i64()), (400, Some(-32021)));
    assert!(
        v["error"]["data"]["requiredCapabilities"]["extensions"]["io.modelcontextprotocol/tasks"]
            .is_object()
    );

    // With it, the call becomes a task that completes in the background.
    let (_, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0.1}, "_meta": with_tasks()}),
            &[],
        )
        .await,
    )
    .await;
    let created = &v["result"];
    assert_eq!(
        (created["resultType"].as_str(), created["status"].as_str()),
        (Some("task"), Some("working"))
    );
    let id = created["taskId"].as_str().unwrap().to_string();
    let done = poll_until(&s, &id, "completed").await;
    assert!(
        done["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("computed for 0.1")
    );

    // A task that asks: input_required until tasks/update answers.
    let (_, v) = json_of(send(&s, "tools/call", json!({"name": "confirm_delete", "arguments": {"filename": "a.txt"}, "_meta": with_tasks()}), &[]).await).await;
    let id = v["result"]["taskId"].as_str().unwrap().to_string();
    let waiting = poll_until(&s, &id, "input_required").await;
    assert_eq!(
        waiting["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let answer = json!({"taskId": id, "inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}}, "_meta": with_tasks()});
    let (_, ack) = json_of(send(&s, "tasks/update", answer, &[("mcp-name", &id)]).await).await;
    assert_eq!(ack["result"]["resultType"], "complete");
    assert_eq!(
        poll_until(&s, &id, "completed").await["result"]["content"][0]["text"],
        "Deleted a.txt"
    );

    // Cancelling stops the work and the status stays cancelled.
    let (_, v) = json_of(
        send(
            &s,
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 60}, "_meta": with_tasks()}),
            &[],
        )
        .await,
    )
    .await;
    let id = v["result"]["taskId"].as_str().unwrap().to_string();
    send(
        &s,
        "tasks/cancel",
        json!({"taskId": id, "_meta": with_tasks()}),
        &[("mcp-name", &id)],
    )
    .await;
    assert_eq!(
        poll_until(&s, &id, "cancelled").await["status"],
        "cancelled"
    );
    let (_, v) = json_of(
        send(
            &s,
            "tasks/get",
            json!({"taskId": "task-nope", "_meta": with_tasks()}),
            &[("mcp-name", "task-nope")],
        )
        .await,
    )
    .await;
    assert_eq!(v["error"]["code"], -32602);
    let (st, v) =
        json_of(send(&s, "tasks/get", json!({"taskId": id}), &[("mcp-name", &id)]).await).await;
    assert_eq!(
        (st, v["error"]["code"].as_i64()),
        (400, Some(-32021)),
        "tasks/* need the extension declared"
    );
}

#[tokio::test]
async fn a_single_node_answers_unknown_tasks_at_once() {
    // With no other nodes, a task id naming another node is simply unknown: no forwarding, no
    // waiting for a reply that cannot come.
    let s = TestServer::start().await;
    let ghost = "task-srv00000000-00";
    let t = std::time::Instant::now();
    let get = json!({"taskId": ghost, "_meta": with_tasks()});
    let (_, v) = json_of(send(&s, "tasks/get", get, &[("mcp-name", ghost)]).await).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
}
