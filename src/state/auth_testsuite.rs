//! The contract of `AuthStore`, run against memory and against a real `redis-server` (the
//! general contract from `testsuite.rs`, client expiry here, with a `ManualClock` on both).

use std::sync::Arc;

use super::auth_store::{AuthRecord, AuthStore, Rotation};
use crate::clock::{ManualClock, SystemClock};
use crate::state::memory::MemoryAuthStore;

pub async fn auth_store_contract(store: Arc<dyn AuthStore>) {
    // Codes are single use, even for concurrent takers.
    store
        .put(AuthRecord::Code, "c1", "grant", 60_000)
        .await
        .unwrap();
    assert_eq!(
        store.get(AuthRecord::Code, "c1").await.unwrap().as_deref(),
        Some("grant")
    );
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.take(AuthRecord::Code, "c1").await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in takers {
        won += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(won, 1, "exactly one taker gets a code");
    assert_eq!(store.take(AuthRecord::Code, "c1").await.unwrap(), None);
    assert_eq!(
        store.use_client("c1", 60_000, 1_000).await.unwrap(),
        None,
        "codes are not clients"
    );

    // Clients are counted under a cap, and a deleted one frees its place at once.
    assert!(store.put_client("app", "{}", 60_000, 2).await.unwrap());
    assert_eq!(
        store
            .use_client("app", 60_000, 1_000)
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    assert!(store.put_client("app2", "{}", 60_000, 2).await.unwrap());
    assert!(
        !store.put_client("app3", "{}", 60_000, 2).await.unwrap(),
        "the cap holds"
    );
    assert_eq!(
        store.use_client("app3", 60_000, 1_000).await.unwrap(),
        None,
        "a refused client is not stored"
    );
    assert_eq!(store.client_count().await.unwrap(), 2);
    store.delete_client("app").await.unwrap();
    assert_eq!(store.use_client("app", 60_000, 1_000).await.unwrap(), None);
    assert!(store.put_client("app3", "{}", 60_000, 2).await.unwrap());
    store.delete_client("app2").await.unwrap();
    store.delete_client("app3").await.unwrap();
    assert_eq!(store.client_count().await.unwrap(), 0);
    // Concurrent registrations against a cap of 3: exactly 3 are stored.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.put_client(&format!("r{i}"), "{}", 60_000, 3).await })
        })
        .collect();
    let mut stored = 0;
    for t in racers {
        stored += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(
        stored, 3,
        "concurrent registrations cannot pass the cap together"
    );
    assert_eq!(store.client_count().await.unwrap(), 3);
    for i in 0..8 {
        store.delete_client(&format!("r{i}")).await.unwrap();
    }

    // A family rotates once per generation; a concurrent refresh within the grace window gets
    // the same new generation; an older generation revokes the family.
    let now = 1_000_000;
    assert_eq!(store.family_grant("fam").await.unwrap(), None);
    store.create_family("fam", "g", 60_000).await.unwrap();
    assert_eq!(
        store.family_grant("fam").await.unwrap().as_deref(),
        Some("g")
    );
    let r = |generation, at| {
        let s = store.clone();
        async move {
            s.rotate_refresh("fam", generation, at, 5_000, 60_000, 60_000)
                .await
                .unwrap()
        }
    };
    let rotated = |generation| Rotation::Rotated {
        generation,
        grant: "g".into(),
    };
    assert_eq!(r(0, now).await, rotated(1));
    assert_eq!(
        r(0, now + 1_000).await,
        Rotation::Concurrent {
            generation: 1,
            grant: "g".into()
        }
    );
    assert_eq!(r(1, now + 2_000).await, rotated(2));
    assert!(!store.is_revoked("fam", "j").await.unwrap());
    assert_eq!(
        r(0, now + 3_000).await,
        Rotation::Reused,
        "two generations back"
    );
    assert_eq!(
        r(2, now + 3_000).await,
        Rotation::Unknown,
        "the family is gone"
    );
    assert!(store.is_revoked("fam", "any").await.unwrap());

    // Out of the grace window, the previous generation is a reuse too.
    store.create_family("f2", "g", 60_000).await.unwrap();
    store
        .rotate_refresh("f2", 0, now, 5_000, 60_000, 60_000)
        .await
        .unwrap();
    let late = store
        .rotate_refresh("f2", 0, now + 6_000, 5_000, 60_000, 60_000)
        .await
        .unwrap();
    assert_eq!(late, Rotation::Reused);

    // Of many concurrent refreshes of one token, one rotates and the rest share its result.
    store.create_family("f3", "g", 60_000).await.unwrap();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                s.rotate_refresh("f3", 0, now, 5_000, 60_000, 60_000)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotations = 0;
    for t in racers {
        match t.await.unwrap() {
            Rotation::Rotated { generation: 1, .. } => rotations += 1,
            Rotation::Concurrent { generation: 1, .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotations, 1);

    // Revocations: one token, or a whole family.
    store.revoke_token("f3", "jti-1", 60_000).await.unwrap();
    assert!(store.is_revoked("f3", "jti-1").await.unwrap());
    assert!(!store.is_revoked("f3", "jti-2").await.unwrap());
    store.revoke_family("f3", 60_000).await.unwrap();
    assert!(store.is_revoked("f3", "jti-2").await.unwrap());
    let gone = store
        .rotate_refresh("f3", 1, now, 5_000, 60_000, 60_000)
        .await
        .unwrap();
    assert_eq!(gone, Rotation::Unknown);
}

/// Clients expire when unused for their ttl; a use slides the expiry, at most once per touch
/// interval; an expired client frees its place under the cap. `clock` drives `store`.
pub async fn client_expiry_contract(store: &dyn AuthStore, clock: &ManualClock) {
    let (ttl, touch) = (3_600_000, 60_000);
    assert!(store.put_client("idle", "i", ttl, 2).await.unwrap());
    assert!(store.put_client("used", "u", ttl, 2).await.unwrap());
    clock.advance_ms(ttl - 1_000);
    let used = store.use_client("used", ttl, touch).await.unwrap();
    assert_eq!(used.as_deref(), Some("u"), "alive until its ttl has passed");
    clock.advance_ms(2_000);
    assert_eq!(
        store.use_client("idle", ttl, touch).await.unwrap(),
        None,
        "an unused client expires"
    );
    assert_eq!(store.client_count().await.unwrap(), 1);
    assert!(
        store.put_client("new", "n", ttl, 2).await.unwrap(),
        "an expired client frees its place under the cap"
    );
    // A use within the touch interval of the last slide does not slide it again...
    clock.advance_ms(30_000);
    let again = store.use_client("used", ttl, touch).await.unwrap();
    assert_eq!(again.as_deref(), Some("u"));
    // ...so the client expires one ttl after the slide, not after this use.
    clock.advance_ms(ttl - 31_999);
    assert_eq!(store.use_client("used", ttl, touch).await.unwrap(), None);
    assert_eq!(
        store
            .use_client("new", ttl, touch)
            .await
            .unwrap()
            .as_deref(),
        Some("n")
    );
    store.delete_client("new").await.unwrap();
    assert_eq!(store.client_count().await.unwrap(), 0);
}

#[tokio::test]
async fn memory_auth_store_expires_unused_clients() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = MemoryAuthStore::new(clock.clone());
    client_expiry_contract(&store, &clock).await;
}

use super::testsuite::redis_server;

#[tokio::test]
async fn redis_auth_store_expires_unused_clients_and_slides_without_a_write_per_use() {
    use crate::state::redis::{RedisSettings, connect};
    use std::time::Duration;
    let server = redis_server::RedisServer::start();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let settings = RedisSettings {
        urls: vec![server.url()],
        cluster: false,
        prefix: "t".into(),
        timeout: Duration::from_secs(2),
        session_ttl: Duration::from_secs(60),
        limits: Default::default(),
        eviction_check: crate::state::redis::EvictionCheck::Refuse,
    };
    let b = connect(&settings, clock.clone()).await.unwrap();
    client_expiry_contract(&*b.auth, &clock).await;
    // Repeated uses within the touch interval write nothing.
    let writes = |s: &redis_server::RedisServer| {
        s.command_calls()
            .into_iter()
            .filter(|(c, _)| c == "pexpire" || c == "zadd")
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    assert!(b.auth.put_client("hot", "h", 3_600_000, 10).await.unwrap());
    let before = writes(&server);
    for _ in 0..5 {
        clock.advance_ms(5_000);
        assert!(
            b.auth
                .use_client("hot", 3_600_000, 60_000)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        writes(&server),
        before,
        "no write within the touch interval"
    );
    clock.advance_ms(60_000);
    b.auth.use_client("hot", 3_600_000, 60_000).await.unwrap();
    assert!(writes(&server) > before, "the next use slides the expiry");
    // Every client key has a TTL in Redis (none is kept forever).
    let ttl = server
        .command(&["PTTL", "t:cl:{t-clients}:hot"])
        .unwrap_or_default();
    let ms: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(ms > 0 && ms <= 3_600_000, "PTTL {ms}");
}

#[tokio::test]
async fn memory_auth_store_meets_the_contract() {
    auth_store_contract(Arc::new(MemoryAuthStore::new(Arc::new(SystemClock)))).await;
}

#[tokio::test]
async fn memory_auth_store_expires_codes() {
    let clock = Arc::new(crate::clock::ManualClock::new(1_000));
    let store = MemoryAuthStore::new(clock.clone());
    store
        .put(AuthRecord::Code, "c", "v", 600_000)
        .await
        .unwrap();
    clock.advance_ms(600_001);
    assert_eq!(store.take(AuthRecord::Code, "c").await.unwrap(), None);
    store.revoke_token("f", "j", 1_000).await.unwrap();
    clock.advance_ms(1_001);
    assert!(
        !store.is_revoked("f", "j").await.unwrap(),
        "revocations expire with the token"
    );
}
