//! The session reaper (`app::spawn_reaper`): expired sessions lose everything a node holds for
//! them (notification pump, GET stream, bus topics, replay buffers), in memory (swept from the
//! store) and on Redis (expired by Redis's own TTL, found through what the node holds), while
//! live sessions keep theirs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_daemon::app;
use mcp_daemon::clock::SystemClock;
use mcp_daemon::engine::{Engine, Footprint};
use serde_json::json;

use crate::harness::*;
use crate::nodes::RedisServer;

/// Polls the engine's footprint until `done` holds; fails after a generous deadline.
async fn wait_for(engine: &Engine, what: &str, done: impl Fn(&Footprint) -> bool) -> Footprint {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let f = engine.footprint().await.unwrap();
        if done(&f) {
            return f;
        }
        assert!(Instant::now() < deadline, "{what}: still {f:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `reader` until its stream ends; fails if it is still open after a generous deadline.
async fn ends(reader: &mut SseReader) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.next(Duration::from_secs(30)).await.is_some() {
        assert!(Instant::now() < deadline, "the GET stream stays open");
    }
}

#[tokio::test]
async fn the_reaper_releases_expired_sessions_in_memory() {
    let mut c = integration_config();
    c.session_ttl_secs = 60;
    let (s, clock) = TestServer::with_manual_clock(c).await;
    let baseline = s.engine.footprint().await.unwrap();
    let idle = s.initialize("2025-11-25", json!({})).await;
    let busy = s.initialize("2025-11-25", json!({})).await;
    let mut streams = Vec::new();
    for sid in [&idle, &busy] {
        s.request(
            sid,
            1,
            "resources/subscribe",
            json!({"uri": "test://watched-resource"}),
        )
        .await;
        let get = s.get_stream(sid, None).await;
        assert_eq!(get.status(), 200);
        streams.push(SseReader::new(get));
    }
    let held = s.engine.footprint().await.unwrap();
    assert_eq!(held.notification_pumps, 2, "{held:?}");
    let reaper = app::spawn_reaper(s.engine.clone(), Duration::from_millis(10));

    clock.advance_ms(30_000);
    s.request(&busy, 2, "ping", json!({})).await;
    clock.advance_ms(30_001); // `idle` idled 60.001 s, `busy` 30.001 s
    wait_for(&s.engine, "the idle session is reaped", |f| {
        f.sessions == Some(1)
    })
    .await;
    ends(&mut streams[0]).await;
    wait_for(
        &s.engine,
        "its pump, topics and buffers are released",
        |f| f.notification_pumps == 1 && f.bus_topics < held.bus_topics && f.event_streams == 1,
    )
    .await;
    assert_eq!(
        s.post(
            Some(&idle),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"})
        )
        .await
        .status(),
        404
    );
    let r = s.request(&busy, 4, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}), "the live session keeps working");

    clock.advance_ms(60_000);
    wait_for(&s.engine, "everything is released", |f| *f == baseline).await;
    ends(&mut streams[1]).await;
    reaper.abort();
}

#[tokio::test]
async fn the_reaper_releases_node_state_of_sessions_redis_expired() {
    let redis = RedisServer::start();
    let mut c = integration_config();
    c.redis_url = Some(redis.url());
    c.request_state_key = Some("reaper-test-request-state-key-0123456789".into());
    c.session_ttl_secs = 2;
    let s = TestServer::start_with(c, Arc::new(SystemClock)).await;
    let baseline = s.engine.footprint().await.unwrap();
    let idle = s.initialize("2025-11-25", json!({})).await;
    let live = s.initialize("2025-11-25", json!({})).await;
    s.request(
        &idle,
        1,
        "resources/subscribe",
        json!({"uri": "test://watched-resource"}),
    )
    .await;
    let get = s.get_stream(&idle, None).await;
    assert_eq!(get.status(), 200);
    let mut stream = SseReader::new(get);
    let held = s.engine.footprint().await.unwrap();
    assert_eq!(held.notification_pumps, 1, "{held:?}");
    assert!(held.bus_topics > baseline.bus_topics, "{held:?}");
    let reaper = app::spawn_reaper(s.engine.clone(), Duration::from_millis(100));

    // Keep `live` active (a ping every 0.3 s against a 2 s TTL) while `idle` expires in Redis
    // (its GET stream's keep-alives renew nothing).
    let pinger = {
        let client = (*s).clone();
        let live = live.clone();
        tokio::spawn(async move {
            for i in 10.. {
                let r = client.request(&live, i, "ping", json!({})).await;
                assert_eq!(r["result"], json!({}), "the live session keeps working");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    ends(&mut stream).await;
    let after = wait_for(&s.engine, "the expired session's pump and topics go", |f| {
        f.notification_pumps == 0 && f.bus_topics == baseline.bus_topics
    })
    .await;
    assert_eq!(after.running_requests, 0, "{after:?}");
    let keys = redis.command(&["KEYS", "*"]).unwrap_or_default();
    assert!(
        !keys.contains(&idle),
        "the expired session's buffers are removed at once: {keys}"
    );
    assert_eq!(
        s.post(
            Some(&idle),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"})
        )
        .await
        .status(),
        404
    );
    assert!(!pinger.is_finished(), "the live session kept working");
    pinger.abort();
    let r = s.request(&live, 4, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    // A new GET stream on the live session works (its slot on this node was not disturbed).
    let get = s.get_stream(&live, None).await;
    assert_eq!(get.status(), 200);
    reaper.abort();
}
