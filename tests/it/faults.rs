//! Faults in a cluster of three daemon processes: a node killed with SIGKILL, Redis frozen and
//! killed under load, sessions expiring; plus the Redis cost of the hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::nodes::{SharedRedis, three_nodes};

fn add(id: i64, a: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "add_numbers", "arguments": {"a": a, "b": 1}}})
}

#[tokio::test]
async fn a_killed_node_loses_no_buffered_event() {
    let redis = SharedRedis::single();
    let mut n = three_nodes(&redis, &[]).await;
    let sid = n[1].initialize("2025-11-25", json!({})).await;
    let mut get = SseReader::new(n[0].get_stream(&sid, None).await);
    for i in 0..5 {
        n[1].call_tool(
            &sid,
            "testkit_session_log",
            json!({"message": format!("m{i}")}),
        )
        .await;
    }
    // All five reached A's stream, so all five are in the replay buffer; the client only
    // processed two before A died.
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(get.next_message(SECS5).await.expect("event on A"));
    }
    let resume_from = seen[1].id.clone().unwrap();
    drop(get);
    n[0].kill();

    let resumed = n[2].get_stream(&sid, Some(&resume_from)).await;
    assert_eq!(resumed.status(), 200);
    let mut get = SseReader::new(resumed);
    for (i, before) in seen.iter().enumerate().skip(2) {
        let ev = get.next_message(SECS5).await.expect("buffered event");
        assert_eq!(ev.json()["params"]["data"], format!("m{i}"));
        assert_eq!(ev.id, before.id, "same event, same id");
    }
    // The stream lives on at C: new notifications still arrive.
    n[1].call_tool(&sid, "testkit_session_log", json!({"message": "after"}))
        .await;
    let ev = get.next_message(SECS5).await.expect("new event");
    assert_eq!(ev.json()["params"]["data"], "after");
    assert!(n[1].alive() && n[2].alive());
}

/// Sends calls round-robin until told to stop; returns (status, seconds) of each.
fn spawn_load(
    nodes: Vec<McpHttp>,
    sid: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(u16, f64)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut i = 0i64;
        while !stop.load(Ordering::Relaxed) {
            let node = &nodes[i as usize % nodes.len()];
            let t = Instant::now();
            let status = node.post(Some(&sid), &add(i, i)).await.status().as_u16();
            seen.push((status, t.elapsed().as_secs_f64()));
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    })
}

/// The Redis deadline of the outage test.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1500);
/// "Fails fast": one deadline, not two in a row (nor the OS's TCP timeout), with one more
/// deadline's worth of slack for a loaded 2-core machine.
const FAIL_FAST: Duration = Duration::from_millis(2 * 1500);

#[tokio::test]
async fn redis_outage_fails_fast_with_503_and_nodes_recover() {
    let mut redis = SharedRedis::durable();
    let timeout_ms = REDIS_TIMEOUT.as_millis().to_string();
    let mut n = three_nodes(&redis, &[("REDIS_TIMEOUT_MS", &timeout_ms)]).await;
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    // A GET stream held across the outage: it must work again afterwards without reopening.
    let mut get = SseReader::new(n[2].get_stream(&sid, None).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(
        n.iter().map(|x| x.client.clone()).collect(),
        sid.clone(),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Frozen Redis: nothing answers, so every request waits for the deadline, then 503.
    redis.single_server().pause();
    for node in &n {
        let t = Instant::now();
        let resp = node.post(Some(&sid), &add(7, 1)).await;
        let took = t.elapsed();
        assert_eq!(resp.status(), 503);
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["code"].is_i64(), "{body}");
        assert!(took < FAIL_FAST, "took {took:?}");
    }
    let health = n[0].http.get(n[0].url("/health")).send().await.unwrap();
    assert_eq!(
        health.status(),
        503,
        "a node that cannot reach Redis is not ready"
    );
    redis.single_server().resume();

    // Dead Redis: refused at once.
    redis.single_server().kill();
    for node in &n {
        let t = Instant::now();
        assert_eq!(node.post(Some(&sid), &add(8, 1)).await.status(), 503);
        assert!(t.elapsed() < FAIL_FAST, "took {:?}", t.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(n.iter_mut().all(|x| x.alive()), "no node went down");

    // Back with its AOF: every node serves the old session again, by itself (the pub/sub
    // backoff is at most 0.5 s; 20 s is for a loaded machine, the time taken is printed).
    redis.single_server().restart();
    let back = Instant::now();
    for node in &n {
        loop {
            let resp = node.post(Some(&sid), &add(9, 1)).await;
            if resp.status() == 200 {
                let v: Value = resp.json().await.unwrap();
                assert_eq!(v["result"]["content"][0]["text"], "2");
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(20),
                "no recovery within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("recovered after {:?}", back.elapsed());
    // The pub/sub connection comes back by itself (with backoff, so a notification published
    // before it did is lost: pub/sub is at-most-once): notifications made on A reach the GET
    // stream held on C since before the outage, without the client reopening it.
    let mut arrived = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        n[0].call_tool(
            &sid,
            "testkit_session_log",
            json!({"message": "after the outage"}),
        )
        .await;
        if let Some(ev) = get.next_message(Duration::from_millis(500)).await {
            arrived = Some(ev);
            break;
        }
    }
    let ev = arrived.expect("the old GET stream lives on");
    assert_eq!(ev.json()["params"]["data"], "after the outage");
    let health = n[0].http.get(n[0].url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    assert!(
        seen.iter().all(|(s, _)| *s == 200 || *s == 503),
        "only answers or 503s: {seen:?}"
    );
    let slowest = seen.iter().map(|(_, t)| *t).fold(0.0, f64::max);
    assert!(
        slowest < FAIL_FAST.as_secs_f64(),
        "a request under load took {slowest} s"
    );
    assert!(seen.iter().any(|(s, _)| *s == 503) && seen.iter().any(|(s, _)| *s == 200));
}

#[tokio::test]
async fn sessions_expire_on_every_node_and_redis_returns_to_its_baseline() {
    let redis = SharedRedis::single();
    let n = three_nodes(&redis, &[("SESSION_TTL_SECS", "3")]).await;
    let baseline = redis.key_count();

    // Sliding: activity keeps a session alive past its TTL (four touches a second apart: 4 s
    // in all, 2 s of slack per gap for a loaded machine); idling ends it on every node.
    // Redis expires keys by its own clock, so this is real time, not a ManualClock.
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    for i in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(n[i % 3].post(Some(&sid), &add(1, 1)).await.status(), 200);
    }
    // Waiting through a node would slide the TTL; Redis is watched instead.
    let record = format!("*:s:{{{sid}}}");
    assert_eq!(
        redis.servers()[0].keys(&record).len(),
        1,
        "the session lives"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !redis.servers()[0].keys(&record).is_empty() {
        assert!(Instant::now() < deadline, "the idle session never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for node in &n {
        assert_eq!(node.post(Some(&sid), &add(3, 1)).await.status(), 404);
    }

    // 1,000 sessions with replay buffers and GET streams; half end by DELETE, half expire.
    let clients: Vec<McpHttp> = n.iter().map(|x| x.client.clone()).collect();
    let mut work = Vec::new();
    for batch in 0..20 {
        let clients = clients.clone();
        work.push(tokio::spawn(async move {
            for j in 0..50 {
                let i = batch * 50 + j;
                let a = &clients[i % 3];
                let b = &clients[(i + 1) % 3];
                let sid = a.initialize("2025-11-25", json!({})).await;
                let streamed = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                    "name": "testkit_sleep", "arguments": {"ms": 0, "steps": 1},
                    "_meta": {"progressToken": 1}}});
                let body = b.post(Some(&sid), &streamed).await.text().await.unwrap();
                assert!(body.contains("slept 0 ms"));
                if i % 5 == 0 {
                    let get = b.get_stream(&sid, None).await;
                    assert_eq!(get.status(), 200);
                }
                if i % 2 == 0 {
                    let del = a.delete_session(&sid).await;
                    assert_eq!(del.status(), 200);
                }
            }
        }));
    }
    for w in work {
        w.await.unwrap();
    }
    // Sessions live in Redis (the earliest may already have expired: the TTL is 3 s).
    let busy = redis.key_count();
    assert!(
        busy > baseline + 50,
        "{busy} keys over a baseline of {baseline}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.key_count() != baseline {
        assert!(
            Instant::now() < deadline,
            "{} keys left over a baseline of {baseline}",
            redis.key_count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_tool_call_on_a_live_session_costs_one_redis_command() {
    let redis = SharedRedis::single();
    let n = three_nodes(&redis, &[]).await;
    let sid = n[0].initialize("2025-11-25", json!({})).await;
    assert_eq!(n[1].post(Some(&sid), &add(1, 1)).await.status(), 200);
    let server = redis.servers()[0];
    server.command(&["CONFIG", "RESETSTAT"]).unwrap();
    const CALLS: usize = 300;
    for i in 0..CALLS {
        let resp = n[i % 3].post(Some(&sid), &add(i as i64, i as i64)).await;
        assert_eq!(resp.status(), 200);
        // A call that failed (a JSON-RPC error is a 200 too) would cost nothing and prove
        // nothing: each must have run.
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["result"]["content"][0]["text"],
            (i + 1).to_string(),
            "{v}"
        );
    }
    let stats: Vec<(String, u64)> = server
        .command_calls()
        .into_iter()
        .filter(|(c, _)| c != "info" && !c.starts_with("config"))
        .collect();
    let total: u64 = stats.iter().map(|(_, n)| n).sum();
    eprintln!("Redis commands for {CALLS} calls: {stats:?}");
    assert!(
        total <= CALLS as u64,
        "budget is one command per call, got {total} for {CALLS}: {stats:?}"
    );
    // And the count sees the calls: a session on Redis is read (and its TTL slid) by every
    // call on any node, so fewer commands than calls would mean a node answered from stale
    // local state.
    assert!(
        total >= CALLS as u64,
        "{total} commands for {CALLS} calls: {stats:?}"
    );
}
