//! SSE responses: priming, progress, Last-Event-ID resumption, replay isolation, cancellation,
//! and server-to-client requests answered by a later POST.

use std::sync::Arc;

use mcp_daemon::clock::SystemClock;
use serde_json::{Value, json};

use crate::harness::*;

fn call(id: i64, name: &str, args: Value, progress: Option<&str>) -> Value {
    let mut params = json!({"name": name, "arguments": args});
    if let Some(t) = progress {
        params["_meta"] = json!({"progressToken": t});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

#[tokio::test]
async fn progress_switches_to_sse_with_increasing_values() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let resp = s
        .post(
            Some(&sid),
            &call(5, "test_tool_with_progress", json!({}), Some("tok")),
        )
        .await;
    assert_eq!(resp.headers()["cache-control"], "no-cache, no-transform");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    assert!(resp.headers().get("content-encoding").is_none());
    let events = SseReader::new(resp).until_response(&json!(5), SECS5).await;
    assert_eq!(events[0].data, "", "priming event for 2025-11-25");
    assert_eq!(events[0].retry, Some(1000));
    let progress: Vec<f64> = events
        .iter()
        .map(|e| e.json())
        .filter(|m| m["method"] == "notifications/progress")
        .inspect(|m| assert_eq!(m["params"]["progressToken"], "tok"))
        .map(|m| m["params"]["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(progress, [0.0, 50.0, 100.0]);
    let ids: Vec<String> = events.iter().map(|e| e.id.clone().unwrap()).collect();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "event ids are unique: {ids:?}");
    assert!(
        ids.iter().all(|i| i.starts_with('p')),
        "ids name their stream: {ids:?}"
    );
    // Without a progress token nothing is sent first, so the same tool answers as JSON.
    let r = s
        .call_tool(&sid, "test_tool_with_progress", json!({}))
        .await;
    assert_eq!(r["content"][0]["text"], "Tool with progress completed");
}

#[tokio::test]
async fn no_priming_event_before_2025_11_25() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-06-18", json!({})).await;
    let resp = s
        .post(
            Some(&sid),
            &call(1, "test_tool_with_progress", json!({}), Some("t")),
        )
        .await;
    let events = SseReader::new(resp).until_response(&json!(1), SECS5).await;
    assert!(events.iter().all(|e| !e.data.is_empty()), "{events:?}");
}

#[tokio::test]
async fn dropped_post_stream_resumes_with_last_event_id_and_the_response_arrives() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let resp = s
        .post(
            Some(&sid),
            &call(
                7,
                "testkit_sleep",
                json!({"ms": 600, "steps": 6}),
                Some("p"),
            ),
        )
        .await;
    let mut first = SseReader::new(resp);
    let _priming = first.next(SECS5).await.unwrap();
    let step1 = first.next(SECS5).await.unwrap();
    assert_eq!(step1.json()["params"]["progress"], 1.0);
    drop(first); // the connection goes away mid-call

    let last_id = step1.id.clone().unwrap();
    let resumed = s.get_stream(&sid, Some(&last_id)).await;
    assert_eq!(resumed.status(), 200);
    let events = SseReader::new(resumed)
        .until_response(&json!(7), SECS5)
        .await;
    let progress: Vec<f64> = events
        .iter()
        .map(|e| e.json())
        .filter_map(|m| m["params"]["progress"].as_f64())
        .collect();
    assert_eq!(
        progress,
        [2.0, 3.0, 4.0, 5.0, 6.0],
        "replay continues after the last seen event, no duplicates"
    );
    let last = events.last().unwrap().json();
    assert_eq!(last["result"]["content"][0]["text"], "slept 600 ms");

    // Resuming the finished stream again replays it and ends.
    let again = SseReader::new(s.get_stream(&sid, Some(&last_id)).await)
        .until_response(&json!(7), SECS5)
        .await;
    assert_eq!(again.len(), events.len());
}

#[tokio::test]
async fn replay_never_crosses_sessions() {
    let s = TestServer::start().await;
    let a = s.initialize("2025-11-25", json!({})).await;
    let b = s.initialize("2025-11-25", json!({})).await;
    let resp = s
        .post(
            Some(&a),
            &call(1, "test_tool_with_progress", json!({}), Some("t")),
        )
        .await;
    let events = SseReader::new(resp).until_response(&json!(1), SECS5).await;
    let a_id = events[1].id.clone().unwrap();
    let stolen = s.get_stream(&b, Some(&a_id)).await;
    assert_eq!(
        stolen.status(),
        400,
        "session b cannot read session a's stream"
    );
    let body: Value = stolen.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer available")
    );
    let forged = s.get_stream(&b, Some("../../x-1")).await;
    assert_eq!(forged.status(), 400);
}

#[tokio::test]
async fn second_concurrent_get_stream_is_409() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let first = s.get_stream(&sid, None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(s.get_stream(&sid, None).await.status(), 409);
    drop(first);
    // Once the first stream is gone a new one may open.
    wait_until(
        "GET stream slot is released when the client disconnects",
        || async { s.get_stream(&sid, None).await.status() == 200 },
    )
    .await;
}

#[tokio::test]
async fn cancellation_really_stops_the_function() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let (s2, sid2) = (s.base.clone(), sid.clone());
    let pending = tokio::spawn(async move {
        crate::harness::http_client()
            .build()
            .unwrap()
            .post(format!("{s2}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", sid2)
            .body(call(42, "testkit_sleep", json!({"ms": 30000, "steps": 1}), None).to_string())
            .send()
            .await
            .unwrap()
    });
    wait_until("the call runs", || async {
        s.engine.footprint().await.unwrap().running_requests > 0
    })
    .await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 42, "reason": "test"}});
    assert_eq!(s.post(Some(&sid), &cancel).await.status(), 202);
    let resp = tokio::time::timeout(SECS5, pending)
        .await
        .expect("cancelled call ends at once")
        .unwrap();
    assert_eq!(resp.status(), 202, "a cancelled request gets no response");
    let stats = s
        .request(&sid, 2, "resources/read", json!({"uri": "testkit://stats"}))
        .await;
    let stats: Value =
        serde_json::from_str(stats["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(stats, json!({"started": 1, "completed": 0, "cancelled": 1}));
    assert_eq!(s.engine.footprint().await.unwrap().running_requests, 0);
    // Cancelling something unknown or finished is ignored.
    assert_eq!(s.post(Some(&sid), &cancel).await.status(), 202);
}

#[tokio::test]
async fn elicitation_round_trip_and_foreign_answers_are_ignored() {
    let s = TestServer::start().await;
    let a = s.initialize("2025-11-25", json!({"elicitation": {}})).await;
    let b = s.initialize("2025-11-25", json!({"elicitation": {}})).await;
    let resp = s
        .post(
            Some(&a),
            &call(
                3,
                "test_elicitation",
                json!({"message": "Who are you?"}),
                None,
            ),
        )
        .await;
    let mut reader = SseReader::new(resp);
    let request = reader.until_method("elicitation/create").await;
    assert_eq!(request["params"]["message"], "Who are you?");
    assert_eq!(
        request["params"]["requestedSchema"]["required"],
        json!(["username", "email"])
    );
    let answer = |who: &str| json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"username": who, "email": "x@y.z"}}});
    // Session b cannot answer a's request.
    assert_eq!(s.post(Some(&b), &answer("mallory")).await.status(), 202);
    assert_eq!(s.post(Some(&a), &answer("ada")).await.status(), 202);
    let rest = reader.until_response(&json!(3), SECS5).await;
    let text = rest.last().unwrap().json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("User response: action=accept"), "{text}");
    assert!(text.contains("ada") && !text.contains("mallory"), "{text}");
}

#[tokio::test]
async fn client_requests_need_the_capability_and_time_out() {
    let mut c = integration_config();
    c.client_request_timeout_secs = 1;
    let s = TestServer::start_with(c, Arc::new(SystemClock)).await;
    let without = s.initialize("2025-11-25", json!({})).await;
    let r = s
        .call_tool(&without, "test_sampling", json!({"prompt": "hi"}))
        .await;
    assert_eq!(r["isError"], true);
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("did not declare the 'sampling' capability")
    );

    let with = s.initialize("2025-11-25", json!({"sampling": {}})).await;
    let resp = s
        .post(
            Some(&with),
            &call(4, "test_sampling", json!({"prompt": "hi"}), None),
        )
        .await;
    let events = SseReader::new(resp).until_response(&json!(4), SECS5).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.json()["method"] == "sampling/createMessage")
            .count(),
        1
    );
    let last = events.last().unwrap().json();
    assert_eq!(last["result"]["isError"], true);
    assert!(
        last["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("did not answer sampling/createMessage within 1s")
    );
    assert_eq!(
        s.engine.footprint().await.unwrap().pending_client_requests,
        0
    );
}

#[tokio::test]
async fn plain_calls_stay_json() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    for i in 0..20 {
        let r = s
            .request(
                &sid,
                i,
                "tools/call",
                json!({"name": "add_numbers", "arguments": {"a": i, "b": 1}}),
            )
            .await;
        assert_eq!(r["result"]["content"][0]["text"], (i + 1).to_string());
    }
    assert_eq!(
        s.engine.footprint().await.unwrap().event_streams,
        0,
        "no replay buffer for JSON answers"
    );
}

#[tokio::test]
async fn roots_list_round_trip() {
    let s = TestServer::start().await;
    let sid = s
        .initialize("2025-11-25", json!({"roots": {"listChanged": true}}))
        .await;
    let resp = s
        .post(Some(&sid), &call(8, "testkit_list_roots", json!({}), None))
        .await;
    let mut reader = SseReader::new(resp);
    let request = reader.until_method("roots/list").await;
    let roots = json!({"roots": [{"uri": "file:///work", "name": "work"}]});
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": roots});
    assert_eq!(s.post(Some(&sid), &answer).await.status(), 202);
    let done = reader.until_response(&json!(8), SECS5).await;
    assert_eq!(
        done.last().unwrap().json()["result"]["structuredContent"],
        roots
    );
}

#[tokio::test]
async fn a_client_error_answer_becomes_a_tool_error() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({"roots": {}})).await;
    let resp = s
        .post(Some(&sid), &call(9, "testkit_list_roots", json!({}), None))
        .await;
    let mut reader = SseReader::new(resp);
    let request = reader.until_method("roots/list").await;
    let refusal = json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "no roots here"}});
    assert_eq!(s.post(Some(&sid), &refusal).await.status(), 202);
    let done = reader.until_response(&json!(9), SECS5).await;
    let result = done.last().unwrap().json()["result"].clone();
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no roots here")
    );
}

#[tokio::test]
async fn quiet_streams_carry_keep_alive_comments() {
    let mut c = integration_config();
    c.sse_keepalive_secs = 1;
    let s = TestServer::start_with(c, Arc::new(SystemClock)).await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let mut resp = s.get_stream(&sid, None).await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !seen.contains(": keep-alive") && tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(PATIENCE, resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(": keep-alive\n\n"), "{seen:?}");
}

#[tokio::test]
async fn a_server_closed_stream_is_resumed_and_the_result_arrives() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let resp = s
        .post(Some(&sid), &call(11, "test_reconnection", json!({}), None))
        .await;
    let mut post = SseReader::new(resp);
    let priming = post.next(SECS5).await.unwrap();
    assert_eq!(
        (priming.data.as_str(), priming.retry),
        ("", Some(1000)),
        "priming with retry first"
    );
    assert!(
        post.next(SECS5).await.is_none(),
        "the server closed the POST stream before the result"
    );
    let resumed = s.get_stream(&sid, priming.id.as_deref()).await;
    let events = SseReader::new(resumed)
        .until_response(&json!(11), SECS5)
        .await;
    assert_eq!(
        events.last().unwrap().json()["result"]["content"][0]["text"],
        "Reconnection test completed"
    );
}

#[tokio::test]
async fn errors_about_a_readable_request_carry_its_id() {
    let s = TestServer::start().await;
    let resp = s
        .post(
            None,
            &json!({"jsonrpc": "2.0", "id": 101, "method": "tools/list"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 101);
}
