//! Cross-node behaviour: three daemon processes share one Redis (and, in the second test, a
//! three-master Redis Cluster); consecutive requests of one client go to different nodes, as
//! a round-robin load balancer without stickiness sends them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::legacy_sse;
use crate::modern::{json_of, listen_for_tool_changes, meta, poll_until, send, with_tasks};
use crate::nodes::{Node, SharedRedis, three_nodes};

const WATCHED: &str = "test://watched-resource";

fn call(id: i64, name: &str, args: Value, progress: Option<&str>) -> Value {
    let mut params = json!({"name": name, "arguments": args});
    if let Some(t) = progress {
        params["_meta"] = json!({"progressToken": t});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

fn ping(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

const MARKER: &str = "end of the notifications under test";

/// Every message on `get` until `done(seen)` holds (each awaited for up to `PATIENCE`: a loaded
/// machine is slow, not wrong), then every message before a marker sent through `via` after
/// those, then anything that follows the marker within half a second. A duplicate or a stray
/// message ends up in the result instead of slipping past a fixed quiet window; the tail
/// catches the copies a second writer would append around the marker.
async fn messages_then_marker(
    get: &mut SseReader,
    via: &McpHttp,
    sid: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    while !done(&seen) {
        let ev = get.next_message(PATIENCE).await;
        seen.push(
            ev.unwrap_or_else(|| panic!("no message for {PATIENCE:?}; got {seen:?}"))
                .json(),
        );
    }
    via.call_tool(sid, "testkit_session_log", json!({"message": MARKER}))
        .await;
    loop {
        let m = get.next_message(PATIENCE).await.expect("the marker").json();
        if m["params"]["data"] == MARKER {
            break;
        }
        seen.push(m);
    }
    while let Some(ev) = get.next_message(Duration::from_millis(500)).await {
        seen.push(ev.json());
    }
    seen
}

async fn testkit_stats(node: &McpHttp, sid: &str) -> Value {
    let v = node
        .request(sid, 90, "resources/read", json!({"uri": "testkit://stats"}))
        .await;
    serde_json::from_str(v["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn nodes_share_sessions_streams_and_routing_on_one_redis() {
    let redis = SharedRedis::single();
    let nodes = three_nodes(&redis, &[]).await;
    every_scenario(&nodes).await;
}

#[tokio::test]
async fn nodes_share_sessions_streams_and_routing_on_a_redis_cluster() {
    let redis = SharedRedis::cluster();
    let nodes = three_nodes(&redis, &[]).await;
    every_scenario(&nodes).await;
}

async fn every_scenario(n: &[Node; 3]) {
    any_node_serves_any_request_and_delete_is_seen_everywhere(n).await;
    a_get_stream_receives_notifications_made_on_another_node_once(n).await;
    concurrent_subscriptions_through_different_nodes_all_land(n).await;
    a_client_answer_reaches_the_node_that_asked(n).await;
    a_cancellation_reaches_the_node_that_runs_the_call(n).await;
    a_dropped_stream_resumes_on_another_node(n).await;
    legacy_sse_stream_on_one_node_posts_on_another(n).await;
    stateless_era_listen_and_request_state_cross_nodes(n).await;
}

async fn any_node_serves_any_request_and_delete_is_seen_everywhere(n: &[Node; 3]) {
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    let sum = n[1]
        .call_tool(&sid, "add_numbers", json!({"a": 2, "b": 3}))
        .await;
    assert_eq!(sum["content"][0]["text"], "5");
    let hi = n[2].call_tool(&sid, "hello", json!({"name": "C"})).await;
    assert_eq!(hi["content"][0]["text"], "Hello, C!");
    let del = n[1].delete_session(&sid).await;
    assert_eq!(del.status(), 200);
    for node in n {
        let resp = node.post(Some(&sid), &ping(3)).await;
        assert_eq!(resp.status(), 404, "{} still knows the session", node.base);
    }
}

async fn a_get_stream_receives_notifications_made_on_another_node_once(n: &[Node; 3]) {
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    n[2].request(&sid, 2, "resources/subscribe", json!({"uri": WATCHED}))
        .await;
    let mut get = SseReader::new(n[0].get_stream(&sid, None).await);
    n[1].call_tool(&sid, "test_trigger_tool_change", json!({}))
        .await;
    n[1].call_tool(&sid, "testkit_notify_resource", json!({"uri": WATCHED}))
        .await;
    n[1].call_tool(&sid, "testkit_session_log", json!({"message": "from B"}))
        .await;
    let seen = messages_then_marker(&mut get, &n[1], &sid, |s| s.len() >= 3).await;
    let mut methods = Vec::new();
    for m in &seen {
        if m["method"] == "notifications/message" {
            assert_eq!(m["params"]["data"], "from B");
        }
        methods.push(m["method"].as_str().unwrap_or_default().to_string());
    }
    methods.sort();
    assert_eq!(
        methods,
        [
            "notifications/message",
            "notifications/resources/updated",
            "notifications/tools/list_changed"
        ],
        "each notification exactly once"
    );

    // The client opens its GET stream again through C: the stream on A closes (a message goes
    // on one stream only) and the pump moves (A's stops), so a notification is still buffered
    // once, not once per node that ever held the stream.
    let mut old = get;
    let mut get = SseReader::new(n[2].get_stream(&sid, None).await);
    // A may still see C's priming event (an empty event on the same replay stream) before it
    // closes, but no message.
    while let Some(ev) = old.next(PATIENCE).await {
        assert!(
            ev.data.is_empty(),
            "the stream on A ends when C takes over: {ev:?}"
        );
    }
    n[1].call_tool(&sid, "testkit_session_log", json!({"message": "from B"}))
        .await;
    let seen = messages_then_marker(&mut get, &n[1], &sid, |s| !s.is_empty()).await;
    assert_eq!(
        seen.len(),
        1,
        "one pump per session across the cluster: {seen:?}"
    );
    assert_eq!(seen[0]["params"]["data"], "from B");
}

async fn concurrent_subscriptions_through_different_nodes_all_land(n: &[Node; 3]) {
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    let mut get = SseReader::new(n[0].get_stream(&sid, None).await);
    let uris: Vec<String> = (0..6)
        .map(|i| format!("test://template/{i}/data"))
        .collect();
    let subscribes = uris.iter().enumerate().map(|(i, uri)| {
        n[i % 3].request(
            &sid,
            10 + i as i64,
            "resources/subscribe",
            json!({"uri": uri}),
        )
    });
    futures::future::join_all(subscribes).await;
    for uri in &uris {
        n[1].call_tool(&sid, "testkit_notify_resource", json!({"uri": uri}))
            .await;
    }
    let is_update = |m: &Value| m["method"] == "notifications/resources/updated";
    let seen = messages_then_marker(&mut get, &n[1], &sid, |s| {
        s.iter().filter(|m| is_update(m)).count() >= uris.len()
    })
    .await;
    let mut updated: Vec<String> = seen
        .iter()
        .filter(|m| is_update(m))
        .map(|m| m["params"]["uri"].as_str().unwrap().to_string())
        .collect();
    updated.sort();
    assert_eq!(updated, uris, "no subscription lost to a concurrent one");
}

async fn a_client_answer_reaches_the_node_that_asked(n: &[Node; 3]) {
    let sid = n[0]
        .initialize("2025-11-25", json!({"elicitation": {}}))
        .await;
    let resp = n[1]
        .post(
            Some(&sid),
            &call(3, "test_elicitation", json!({"message": "Who?"}), None),
        )
        .await;
    let mut reader = SseReader::new(resp);
    let request = reader.until_method("elicitation/create").await;
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"username": "ada", "email": "a@b.c"}}});
    assert_eq!(n[2].post(Some(&sid), &answer).await.status(), 202);
    let rest = reader.until_response(&json!(3), SECS5).await;
    let text = rest.last().unwrap().json()["result"]["content"][0]["text"].clone();
    assert!(text.as_str().unwrap().contains("ada"), "{text}");
}

async fn a_cancellation_reaches_the_node_that_runs_the_call(n: &[Node; 3]) {
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    let before = testkit_stats(&n[1], &sid).await;
    let runner = n[1].client.clone();
    let sid2 = sid.clone();
    let pending = tokio::spawn(async move {
        runner
            .post(
                Some(&sid2),
                &call(42, "testkit_sleep", json!({"ms": 30000, "steps": 1}), None),
            )
            .await
    });
    wait_until("the call runs on B", || async {
        testkit_stats(&n[1], &sid).await["started"] != before["started"]
    })
    .await;
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 42}});
    assert_eq!(n[2].post(Some(&sid), &cancel).await.status(), 202);
    let resp = tokio::time::timeout(SECS5, pending)
        .await
        .expect("the call on B stops at once")
        .unwrap();
    assert_eq!(resp.status(), 202, "a cancelled request gets no response");
    let after = testkit_stats(&n[1], &sid).await;
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    assert_eq!((delta("cancelled"), delta("completed")), (1, 0));
}

async fn a_dropped_stream_resumes_on_another_node(n: &[Node; 3]) {
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    let resp = n[1]
        .post(
            Some(&sid),
            &call(
                5,
                "testkit_sleep",
                json!({"ms": 600, "steps": 3}),
                Some("t"),
            ),
        )
        .await;
    let mut reader = SseReader::new(resp);
    let first = loop {
        let ev = reader.next(SECS5).await.unwrap();
        if ev.json()["method"] == "notifications/progress" {
            break ev;
        }
    };
    drop(reader); // the connection to B breaks mid-call
    let last_id = first.id.clone().unwrap();
    let resumed = n[2].get_stream(&sid, Some(&last_id)).await;
    assert_eq!(resumed.status(), 200);
    let rest = SseReader::new(resumed)
        .until_response(&json!(5), SECS5)
        .await;
    assert!(
        rest.iter().all(|e| e.id.as_deref() != Some(&last_id)),
        "no duplicates"
    );
    let progress: Vec<f64> = rest
        .iter()
        .filter(|e| e.json()["method"] == "notifications/progress")
        .map(|e| e.json()["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert!(progress.first().unwrap() > &first.json()["params"]["progress"].as_f64().unwrap());
    let text = rest.last().unwrap().json()["result"]["content"][0]["text"].clone();
    assert_eq!(text, "slept 600 ms");

    // Another session (here: another user's, as far as the store knows) cannot replay it.
    let other = n[2].initialize("2025-11-25", json!({})).await;
    let foreign = n[0].get_stream(&other, Some(&last_id)).await;
    assert_eq!(foreign.status(), 400, "replay never crosses sessions");
}

async fn legacy_sse_stream_on_one_node_posts_on_another(n: &[Node; 3]) {
    let (mut stream, endpoint) = legacy_sse::open(&n[0], "/sse").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "l", "version": "1"}}});
    assert_eq!(legacy_sse::post(&n[1], &endpoint, init).await.status(), 202);
    let answer = stream.next(SECS5).await.unwrap().json();
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    let add = call(2, "add_numbers", json!({"a": 20, "b": 22}), None);
    assert_eq!(legacy_sse::post(&n[2], &endpoint, add).await.status(), 202);
    let answer = stream.next(SECS5).await.unwrap().json();
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["content"][0]["text"], "42");
}

async fn stateless_era_listen_and_request_state_cross_nodes(n: &[Node; 3]) {
    let (mut stream, _) = listen_for_tool_changes(&n[0]).await;
    send(
        &n[1],
        "tools/call",
        json!({"name": "test_trigger_tool_change"}),
        &[],
    )
    .await;
    let note = stream.next(SECS5).await.unwrap().json();
    assert_eq!(note["method"], "notifications/tools/list_changed");

    let caps = json!({"elicitation": {}});
    let call = |extra: Value| {
        let mut p =
            json!({"name": "test_input_required_result_multi_round", "_meta": meta(caps.clone())});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let answer = |k: &str, f: &str, v: &str| json!({k: {"action": "accept", "content": {f: v}}});
    let (_, r1) = json_of(send(&n[0], "tools/call", call(json!({})), &[]).await).await;
    let state1 = r1["result"]["requestState"].as_str().unwrap().to_string();
    let (_, r2) = json_of(
        send(
            &n[1],
            "tools/call",
            call(json!({"inputResponses": answer("step1", "name", "Ada"), "requestState": state1})),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(
        r2["result"]["inputRequests"]["step2"]["method"], "elicitation/create",
        "node B opened the state node A sealed: {r2}"
    );
    let state2 = r2["result"]["requestState"].as_str().unwrap().to_string();
    let (_, r3) = json_of(
        send(
            &n[2],
            "tools/call",
            call(
                json!({"inputResponses": answer("step2", "color", "teal"), "requestState": state2}),
            ),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(r3["result"]["content"][0]["text"], "Ada likes teal");

    // A task runs on the node that created it (A); polled on B, answered and cancelled on C.
    let (_, v) = json_of(send(&n[0], "tools/call", json!({"name": "confirm_delete", "arguments": {"filename": "a.txt"}, "_meta": with_tasks()}), &[]).await).await;
    let id = v["result"]["taskId"].as_str().unwrap().to_string();
    let waiting = poll_until(&n[1], &id, "input_required").await;
    assert_eq!(
        waiting["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let answer = json!({"taskId": id, "inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}}, "_meta": with_tasks()});
    let (_, ack) = json_of(send(&n[2], "tasks/update", answer, &[("mcp-name", &id)]).await).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let done = poll_until(&n[1], &id, "completed").await;
    assert_eq!(done["result"]["content"][0]["text"], "Deleted a.txt");

    let (_, v) = json_of(
        send(
            &n[0],
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 60}, "_meta": with_tasks()}),
            &[],
        )
        .await,
    )
    .await;
    let id = v["result"]["taskId"].as_str().unwrap().to_string();
    let cancel = json!({"taskId": id, "_meta": with_tasks()});
    let (_, ack) = json_of(send(&n[2], "tasks/cancel", cancel, &[("mcp-name", &id)]).await).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    poll_until(&n[1], &id, "cancelled").await;

    // An unknown task on a node that does not exist is -32602, not a hang.
    let ghost = "task-srv00000000-00";
    let get = json!({"taskId": ghost, "_meta": with_tasks()});
    let (_, v) = json_of(send(&n[1], "tasks/get", get, &[("mcp-name", ghost)]).await).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
}
