//! The contract every state backend must meet. Each implementation's tests call these
//! functions; the Redis backend will run the very same suite against a real server.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::memory::{EventLogLimits, MemoryBus, MemoryEventLog, MemorySessionStore};
use super::*;
use crate::clock::{Clock, ManualClock, SystemClock};

/// How a backend's expiry is observed. `advance(ms)` moves the store's notion of time forward:
/// a manual clock for the memory store, real sleeping for Redis (whose TTLs run on its own
/// clock). Every expiry check is a pair that can fail either way: present after idling
/// `live_for`, absent after idling `gone_after`. On a manual clock they are the exact bounds
/// (`ttl - 1`, `ttl`); in real time `live_for` leaves a wide margin below the TTL, since a
/// loaded machine only makes real idling longer, and "absent" checks are always past the TTL.
pub struct Expiry<F> {
    pub ttl_ms: u64,
    pub live_for: u64,
    pub gone_after: u64,
    pub advance: F,
    /// The backend expires sessions itself (Redis): `purge_expired` finds none and `count` is
    /// not tracked. Otherwise `purge_expired` must return exactly the expired sessions.
    pub native: bool,
}

pub async fn session_store_contract<F, Fut>(store: &dyn SessionStore, now_ms: u64, t: Expiry<F>)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    assert!(t.live_for < t.ttl_ms && t.gone_after >= t.ttl_ms);
    assert!(
        t.gone_after - t.live_for < t.ttl_ms,
        "a renewed session is checked live"
    );
    let rec = SessionRecord::new("alice", TransportKind::StreamableHttp, now_ms);
    let id = rec.id.clone();
    assert!(store.create(rec.clone(), 2).await.unwrap());
    assert!(
        store.create(rec.clone(), 2).await.is_err(),
        "ids never collide silently"
    );
    assert_eq!(store.get(&id).await.unwrap().unwrap().subject, "alice");
    assert!(
        store.get(&SessionId::random()).await.unwrap().is_none(),
        "missing is Ok(None)"
    );

    let saved = store
        .modify(&id, &|s| s.log_level = Some(LogLevel::Warning))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.log_level, Some(LogLevel::Warning));
    // Concurrent changes all land (no lost update).
    let adds = (0..8).map(|i| {
        let id = id.clone();
        async move {
            let uri = format!("test://r{i}");
            store
                .modify(&id, &move |s| {
                    s.subscriptions.insert(uri.clone());
                })
                .await
                .unwrap()
        }
    });
    futures::future::join_all(adds).await;
    let back = store.peek(&id).await.unwrap().unwrap();
    assert_eq!(back.log_level, Some(LogLevel::Warning));
    assert_eq!(back.subscriptions.len(), 8, "{:?}", back.subscriptions);

    // The per-subject cap: a full subject is refused and nothing is stored; other subjects
    // are unaffected; an ended session stops counting at once.
    let second = SessionRecord::new("alice", TransportKind::StreamableHttp, now_ms);
    assert!(store.create(second.clone(), 2).await.unwrap());
    let refused = SessionRecord::new("alice", TransportKind::StreamableHttp, now_ms);
    assert!(
        !store.create(refused.clone(), 2).await.unwrap(),
        "alice is full"
    );
    assert!(
        store.peek(&refused.id).await.unwrap().is_none(),
        "a refusal stores nothing"
    );
    let bob = SessionRecord::new("bob", TransportKind::Stdio, now_ms);
    assert!(
        store.create(bob.clone(), 2).await.unwrap(),
        "bob has his own cap"
    );
    assert!(store.delete(&second.id).await.unwrap());
    let third = SessionRecord::new("alice", TransportKind::StreamableHttp, now_ms);
    assert!(
        store.create(third.clone(), 2).await.unwrap(),
        "a deleted session frees its slot"
    );
    assert!(store.delete(&bob.id).await.unwrap());
    assert!(
        !store.delete(&bob.id).await.unwrap(),
        "delete is idempotent"
    );
    assert!(store.get(&bob.id).await.unwrap().is_none());

    // Sliding TTL: `id` is renewed, `third` idles.
    (t.advance)(t.live_for).await;
    assert!(
        store.get(&id).await.unwrap().is_some(),
        "live before its TTL"
    );
    assert!(
        store.peek(&third.id).await.unwrap().is_some(),
        "idle for less than the TTL: still live"
    );
    (t.advance)(t.gone_after - t.live_for).await;
    assert!(
        store.peek(&third.id).await.unwrap().is_none(),
        "idle for the whole TTL: expired"
    );
    assert!(
        store.modify(&third.id, &|_| {}).await.unwrap().is_none(),
        "an expired session cannot be changed"
    );
    assert!(
        store.peek(&id).await.unwrap().is_some(),
        "get renewed the TTL (created a whole TTL ago, still live)"
    );
    (t.advance)(t.gone_after).await;
    assert!(
        store.peek(&id).await.unwrap().is_none(),
        "renewed, then idle: expired"
    );
    assert!(
        store.get(&id).await.unwrap().is_none(),
        "get does not revive it"
    );

    let mut purged = store.purge_expired().await.unwrap();
    purged.sort();
    if t.native {
        assert_eq!(
            purged,
            Vec::<SessionId>::new(),
            "the backend expires by itself"
        );
        assert_eq!(store.count().await.unwrap(), None);
    } else {
        let mut expected = vec![id.clone(), third.id.clone()];
        expected.sort();
        assert_eq!(purged, expected, "exactly the expired sessions are purged");
        assert_eq!(store.count().await.unwrap(), Some(0));
        assert!(
            store.purge_expired().await.unwrap().is_empty(),
            "purged once"
        );
    }
    // Expired sessions do not count against their subject, purged or not.
    for _ in 0..2 {
        let fresh = SessionRecord::new("alice", TransportKind::StreamableHttp, now_ms);
        assert!(
            store.create(fresh.clone(), 2).await.unwrap(),
            "expired ones free slots"
        );
        assert!(store.delete(&fresh.id).await.unwrap());
    }
}

pub async fn event_log_contract(log: &dyn EventLog) {
    let s1 = SessionId::random();
    let a = StreamKey::new(&s1, "pa");
    let b = StreamKey::new(&s1, "pb");
    assert!(
        log.subscribe(&a, ReplayFrom::Start)
            .await
            .unwrap()
            .is_none(),
        "unknown stream is Ok(None)"
    );
    assert_eq!(
        log.append(&a, "lost".into(), false).await.unwrap(),
        None,
        "unopened streams take nothing"
    );

    log.open(&a).await.unwrap();
    log.open(&b).await.unwrap();
    log.open(&a).await.unwrap();
    let one = log.append(&a, "one".into(), false).await.unwrap().unwrap();
    assert!(one > 0);
    assert!(
        log.append(&b, "other".into(), false)
            .await
            .unwrap()
            .is_some()
    );
    let two = log.append(&a, "two".into(), false).await.unwrap().unwrap();
    assert!(two > one, "sequence numbers increase per stream");

    // A live reader sees only what comes after it subscribed.
    let mut live_b = log.subscribe(&b, ReplayFrom::Live).await.unwrap().unwrap();
    log.append(&b, "fresh".into(), false).await.unwrap();
    assert_eq!(&*live_b.next().await.unwrap().data, "fresh");

    // Replay after an id gives only later events of that stream.
    let mut sub = log
        .subscribe(&a, ReplayFrom::After(one))
        .await
        .unwrap()
        .unwrap();
    let ev = sub.next().await.unwrap();
    assert_eq!((ev.seq, &*ev.data), (two, "two"));

    // Live: an append after subscribing arrives; the last event ends the subscription.
    let writer = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        log.append(&a, "three".into(), true).await.unwrap();
    };
    let reader = async {
        let ev = sub.next().await.unwrap();
        assert_eq!(&*ev.data, "three");
        assert!(ev.last);
        assert!(
            sub.next().await.is_none(),
            "stream ends after its last event"
        );
    };
    tokio::join!(writer, reader);

    // Another session's stream with the same name is a different stream.
    let s2 = SessionId::random();
    assert!(
        log.subscribe(&StreamKey::new(&s2, "pa"), ReplayFrom::Start)
            .await
            .unwrap()
            .is_none()
    );

    // Removing the session ends live subscribers and frees the buffers for good.
    log.remove_session(&s1).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), live_b.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        log.subscribe(&a, ReplayFrom::Start)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        log.append(&a, "late".into(), false).await.unwrap(),
        None,
        "no resurrection"
    );
    assert_eq!(log.footprint(), (0, 0, 0));
}

pub async fn bus_contract(bus: &dyn Bus) {
    bus.publish("t", json!(0)).await.unwrap(); // nobody listens: dropped, not an error
    let mut s1 = bus.subscribe("t").await.unwrap();
    let mut s2 = bus.subscribe("t").await.unwrap();
    let mut other = bus.subscribe("u").await.unwrap();
    bus.publish("t", json!({"n": 1})).await.unwrap();
    assert_eq!(s1.next().await.unwrap(), json!({"n": 1}));
    assert_eq!(s2.next().await.unwrap(), json!({"n": 1}));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), other.next())
            .await
            .is_err()
    );
    drop((s1, s2, other));
    bus.publish("t", json!(2)).await.unwrap();
    assert_eq!(
        bus.topic_count(),
        0,
        "topics without subscribers are forgotten"
    );
}

#[tokio::test]
async fn memory_session_store_meets_the_contract() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = MemorySessionStore::new(60_000, clock.clone());
    let expiry = Expiry {
        ttl_ms: 60_000,
        live_for: 59_999,
        gone_after: 60_000,
        advance: |ms| {
            clock.advance_ms(ms);
            async {}
        },
        native: false,
    };
    session_store_contract(&store, clock.now_ms(), expiry).await;
}

#[tokio::test]
async fn memory_event_log_meets_the_contract() {
    event_log_contract(&MemoryEventLog::new(EventLogLimits::default())).await;
}

#[tokio::test]
async fn memory_bus_meets_the_contract() {
    bus_contract(&MemoryBus::new()).await;
}

/// The limits `caps_contract` expects.
pub const CAPS: EventLogLimits = EventLogLimits {
    events_per_stream: 3,
    streams_per_session: 2,
    bytes_per_stream: 100,
};

#[tokio::test]
async fn memory_event_log_caps_events_bytes_and_streams() {
    let log = MemoryEventLog::new(CAPS);
    caps_contract(&log, true).await;
}

/// The events `key` buffers, oldest first: the first `expect` of them (read with a generous
/// deadline), then whatever else arrives within a short wait. A slow backend can only make
/// the extra wait see nothing, which fails the caller's comparison only if the cap leaked.
async fn buffered(log: &dyn EventLog, key: &StreamKey, expect: usize) -> Vec<String> {
    let mut sub = log
        .subscribe(key, ReplayFrom::Start)
        .await
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..expect {
        let ev = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
        out.push(ev.unwrap().unwrap().data.to_string());
    }
    // The stream has no last event, so it follows live after its buffer: anything more that
    // comes at once was buffered too.
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
        out.push(ev.data.to_string());
    }
    out
}

/// A log with the `CAPS` limits keeps exactly the newest events within both the event cap
/// and the byte cap (never dropping the newest event), and evicts finished streams first.
/// `counts_bytes`: the backend reports its buffered bytes in `footprint` (memory).
pub async fn caps_contract(log: &dyn EventLog, counts_bytes: bool) {
    let s = SessionId::random();
    let a = StreamKey::new(&s, "pa");
    log.open(&a).await.unwrap();
    for i in 0..1000 {
        log.append(&a, format!("{i}").into(), false).await.unwrap();
    }
    assert_eq!(
        buffered(log, &a, 3).await,
        ["997", "998", "999"],
        "event cap, exactly"
    );

    // Byte cap (100 bytes; few events, so the event cap of 3 does not interfere).
    let b = StreamKey::new(&s, "pb");
    log.open(&b).await.unwrap();
    let ev = |c: char, n: usize| -> Arc<str> { c.to_string().repeat(n).into() };
    log.append(&b, ev('a', 60), false).await.unwrap();
    log.append(&b, ev('b', 40), false).await.unwrap();
    assert_eq!(
        buffered(log, &b, 2).await.len(),
        2,
        "100 bytes: within the cap"
    );
    if counts_bytes {
        assert_eq!(log.footprint().2, 9 + 100, "pa holds 9 bytes, pb 100");
    }
    log.append(&b, ev('c', 1), false).await.unwrap();
    assert_eq!(
        buffered(log, &b, 2).await,
        [ev('b', 40).to_string(), "c".into()],
        "101 bytes: the oldest event went"
    );
    // One event larger than the cap stays alone (a live reader must get it)...
    log.append(&b, ev('d', 500), false).await.unwrap();
    assert_eq!(buffered(log, &b, 1).await, [ev('d', 500).to_string()]);
    // ...until the next event pushes it out.
    log.append(&b, ev('e', 10), false).await.unwrap();
    assert_eq!(buffered(log, &b, 1).await, [ev('e', 10).to_string()]);
    if counts_bytes {
        assert_eq!(log.footprint().2, 9 + 10);
    }

    // Streams: finish pb, open pc: the finished one is evicted first.
    log.append(&b, "x".into(), true).await.unwrap();
    let c = StreamKey::new(&s, "pc");
    log.open(&c).await.unwrap();
    log.append(&c, "x".into(), false).await.unwrap();
    assert!(
        log.subscribe(&b, ReplayFrom::Start)
            .await
            .unwrap()
            .is_none(),
        "finished stream evicted first"
    );
    for key in [&a, &c] {
        assert!(
            log.subscribe(key, ReplayFrom::Start)
                .await
                .unwrap()
                .is_some(),
            "{} kept",
            key.stream
        );
    }
    log.remove_session(&s).await.unwrap();
}

#[path = "../../tests/support/redis_server.rs"]
pub(super) mod redis_server;

/// The same contract against a real `redis-server` on a free port.
mod on_redis {
    use super::*;
    use crate::state::redis::{RedisBackends, RedisSettings, connect};

    use super::redis_server::RedisServer;

    async fn backends(server: &RedisServer, ttl_ms: u64, limits: EventLogLimits) -> RedisBackends {
        let settings = RedisSettings {
            urls: vec![server.url()],
            cluster: false,
            prefix: "t".into(),
            timeout: Duration::from_secs(2),
            session_ttl: Duration::from_millis(ttl_ms),
            limits,
            eviction_check: crate::state::redis::EvictionCheck::Refuse,
        };
        connect(&settings, Arc::new(SystemClock)).await.unwrap()
    }

    #[tokio::test]
    async fn redis_session_store_meets_the_contract() {
        let server = RedisServer::start();
        let ttl_ms = 3000;
        let b = backends(&server, ttl_ms, EventLogLimits::default()).await;
        let expiry = Expiry {
            ttl_ms,
            live_for: 1500,
            gone_after: 3300,
            advance: |ms| tokio::time::sleep(Duration::from_millis(ms)),
            native: true,
        };
        session_store_contract(&*b.sessions, SystemClock.now_ms(), expiry).await;
        // What is left (the owners' session indexes) expires by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server.dbsize() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "keys without an end: {:?}",
                server.command(&["KEYS", "*"])
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn redis_event_log_meets_the_contract() {
        let server = RedisServer::start();
        let b = backends(&server, 60_000, EventLogLimits::default()).await;
        event_log_contract(&*b.events).await;
        assert_eq!(server.dbsize(), 0, "nothing left behind");
    }

    #[tokio::test]
    async fn redis_auth_store_meets_the_contract() {
        let server = RedisServer::start();
        let b = backends(&server, 60_000, EventLogLimits::default()).await;
        crate::state::auth_testsuite::auth_store_contract(b.auth).await;
    }

    #[tokio::test]
    async fn redis_bus_meets_the_contract() {
        let server = RedisServer::start();
        let b = backends(&server, 60_000, EventLogLimits::default()).await;
        bus_contract(&*b.bus).await;
    }

    #[tokio::test]
    async fn redis_event_log_caps_events_bytes_and_streams() {
        let server = RedisServer::start();
        let b = backends(&server, 60_000, CAPS).await;
        caps_contract(&*b.events, false).await;
        assert_eq!(server.dbsize(), 0, "nothing left behind");
    }
}
