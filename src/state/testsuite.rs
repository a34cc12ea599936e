//! The contract every state backend must meet. Each implementation's tests call these
//! functions; the Redis backend will run the very same suite against a real server.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use super::memory::{EventLogLimits, MemoryBus, MemoryEventLog, MemorySessionStore};
use super::*;
use crate::clock::{Clock, ManualClock, SystemClock};

/// `advance(ms)` moves the store's notion of time forward: a manual clock for the memory store,
/// real sleeping for Redis (whose TTLs run on its own clock). Steps are thirds of the TTL, so
/// real time has slack on both sides.
pub async fn session_store_contract<F, Fut>(
    store: &dyn SessionStore,
    now_ms: u64,
    ttl_ms: u64,
    advance: F,
) where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rec = SessionRecord::new("alice", TransportKind::StreamableHttp, now_ms);
    let id = rec.id.clone();
    store.create(rec.clone()).await.unwrap();
    assert!(
        store.create(rec.clone()).await.is_err(),
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

    // Sliding TTL: activity renews, idleness expires.
    let third = ttl_ms / 3;
    advance(2 * third).await;
    assert!(
        store.get(&id).await.unwrap().is_some(),
        "get renews the TTL"
    );
    advance(2 * third).await;
    assert!(
        store.peek(&id).await.unwrap().is_some(),
        "still inside the renewed TTL"
    );
    advance(2 * third).await;
    assert!(
        store.get(&id).await.unwrap().is_none(),
        "expired after idling a whole TTL"
    );
    assert!(
        store.modify(&id, &|_| {}).await.unwrap().is_none(),
        "an expired session cannot be changed"
    );
    let purged = store.purge_expired().await.unwrap();
    assert!(purged.is_empty() || purged == vec![id.clone()]);
    assert!(matches!(store.count().await.unwrap(), None | Some(0)));

    let rec = SessionRecord::new("bob", TransportKind::Stdio, now_ms);
    let id = rec.id.clone();
    store.create(rec).await.unwrap();
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.delete(&id).await.unwrap(), "delete is idempotent");
    assert!(store.get(&id).await.unwrap().is_none());
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
    let advance = |ms| {
        clock.advance_ms(ms);
        async {}
    };
    session_store_contract(&store, clock.now_ms(), 60_000, advance).await;
}

#[tokio::test]
async fn memory_event_log_meets_the_contract() {
    event_log_contract(&MemoryEventLog::new(EventLogLimits::default())).await;
}

#[tokio::test]
async fn memory_bus_meets_the_contract() {
    bus_contract(&MemoryBus::new()).await;
}

#[tokio::test]
async fn memory_event_log_caps_events_and_streams() {
    let log = MemoryEventLog::new(EventLogLimits {
        events_per_stream: 3,
        streams_per_session: 2,
    });
    caps_contract(&log, 3, false).await;
}

/// A log limited to `events` events per stream and 2 streams per session keeps the newest
/// events and evicts finished streams first. `approximate`: the cap may be exceeded by a
/// bounded amount (Redis `MAXLEN ~` trims whole nodes), but never grows without bound.
pub async fn caps_contract(log: &dyn EventLog, events: usize, approximate: bool) {
    let s = SessionId::random();
    let a = StreamKey::new(&s, "pa");
    log.open(&a).await.unwrap();
    for i in 0..1000 {
        log.append(&a, format!("{i}").into(), false).await.unwrap();
    }
    let mut sub = log.subscribe(&a, ReplayFrom::Start).await.unwrap().unwrap();
    let first = sub.next().await.unwrap();
    let kept = 1000 - first.data.parse::<usize>().unwrap();
    if approximate {
        assert!(kept >= events && kept <= events + 200, "kept {kept} events");
    } else {
        assert_eq!(kept, events, "oldest events were dropped");
        assert_eq!(log.footprint().1, events);
    }

    for (name, last) in [("pb", true), ("pc", false)] {
        let k = StreamKey::new(&s, name);
        log.open(&k).await.unwrap();
        log.append(&k, "x".into(), last).await.unwrap();
    }
    assert!(
        log.subscribe(&StreamKey::new(&s, "pb"), ReplayFrom::Start)
            .await
            .unwrap()
            .is_none(),
        "finished stream evicted first"
    );
    for name in ["pa", "pc"] {
        assert!(
            log.subscribe(&StreamKey::new(&s, name), ReplayFrom::Start)
                .await
                .unwrap()
                .is_some(),
            "{name} kept"
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
        let b = backends(&server, 1500, EventLogLimits::default()).await;
        let advance = |ms| tokio::time::sleep(Duration::from_millis(ms));
        session_store_contract(&*b.sessions, SystemClock.now_ms(), 1500, advance).await;
        assert_eq!(server.dbsize(), 0, "nothing left behind");
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
    async fn redis_event_log_caps_events_and_streams() {
        let server = RedisServer::start();
        let limits = EventLogLimits {
            events_per_stream: 3,
            streams_per_session: 2,
        };
        let b = backends(&server, 60_000, limits).await;
        caps_contract(&*b.events, 3, true).await;
    }
}
