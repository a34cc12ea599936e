//! Session lifetime: expiry after inactivity, and no leak after many sessions come and go.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn idle_sessions_expire_and_are_removed() {
    let mut c = integration_config();
    c.session_ttl_secs = 60;
    let (s, clock) = TestServer::with_manual_clock(c).await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    clock.advance_ms(59_000);
    assert_eq!(
        s.request(&sid, 1, "ping", json!({})).await["result"],
        json!({}),
        "activity renews the TTL"
    );
    clock.advance_ms(59_000);
    assert_eq!(
        s.request(&sid, 2, "ping", json!({})).await["result"],
        json!({})
    );
    clock.advance_ms(60_001);
    let resp = s
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        )
        .await;
    assert_eq!(resp.status(), 404, "idle for a whole TTL: gone");
    assert_eq!(s.engine.reap_expired().await.unwrap(), 1);
    assert_eq!(s.engine.footprint().await.unwrap().sessions, Some(0));
}

#[tokio::test]
async fn a_thousand_sessions_leave_nothing_behind() {
    let mut c = integration_config();
    c.session_ttl_secs = 600;
    let (s, clock) = TestServer::with_manual_clock(c).await;
    let baseline = s.engine.footprint().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..1000 {
        let sid = s.initialize("2025-11-25", json!({})).await;
        if i % 10 == 0 {
            // Some sessions also leave a replay buffer, a GET stream and a subscription behind.
            s.request(
                &sid,
                1,
                "resources/subscribe",
                json!({"uri": "test://watched-resource"}),
            )
            .await;
            let resp = s
                .post(
                    Some(&sid),
                    &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "test_tool_with_progress", "_meta": {"progressToken": 1}}}),
                )
                .await;
            SseReader::new(resp).until_response(&json!(2), SECS5).await;
            let get = s.get_stream(&sid, None).await;
            assert_eq!(get.status(), 200);
            drop(get);
        }
        ids.push(sid);
    }
    let busy = s.engine.footprint().await.unwrap();
    assert_eq!(busy.sessions, Some(1000));
    assert!(
        busy.event_streams >= 100 && busy.buffered_bytes > 0,
        "{busy:?}"
    );

    // Half end by DELETE, half by expiry.
    for sid in &ids[..500] {
        let r = s.delete_session(sid).await;
        assert_eq!(r.status(), 200);
    }
    clock.advance_ms(600_001);
    assert_eq!(s.engine.reap_expired().await.unwrap(), 500);
    let after = s.engine.footprint().await.unwrap();
    assert_eq!(
        after, baseline,
        "every session, stream, buffer, pump and topic is released"
    );
    for sid in ids.iter().step_by(97) {
        assert_eq!(
            s.post(
                Some(sid),
                &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})
            )
            .await
            .status(),
            404
        );
    }
}

#[tokio::test]
async fn concurrent_sessions_are_isolated() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let sid = s.initialize("2025-11-25", json!({})).await;
            let level = if n % 2 == 0 { "debug" } else { "error" };
            s.request(&sid, 1, "logging/setLevel", json!({"level": level}))
                .await;
            for i in 0..10 {
                let who = s.call_tool(&sid, "testkit_whoami", json!({})).await;
                assert_eq!(
                    who["structuredContent"]["session"],
                    sid.as_str(),
                    "each call sees its own session"
                );
                let sum = s
                    .call_tool(&sid, "add_numbers", json!({"a": n, "b": i}))
                    .await;
                assert_eq!(sum["content"][0]["text"], (n + i).to_string());
            }
            let resp = s
                .post(
                    Some(&sid),
                    &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "test_tool_with_logging"}}),
                )
                .await;
            let is_sse = resp.headers()["content-type"] == "text/event-stream";
            assert_eq!(
                is_sse,
                n % 2 == 0,
                "only sessions at debug level get the info logs"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
