//! The contract of `AuthStore`, run against memory and against a real `redis-server`.

use std::sync::Arc;

use super::auth_store::{AuthRecord, AuthStore, Rotation};
use crate::clock::SystemClock;
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
        store.get(AuthRecord::Client, "c1").await.unwrap(),
        None,
        "kinds are apart"
    );

    // Clients stay until deleted.
    store.put(AuthRecord::Client, "app", "{}", 0).await.unwrap();
    assert!(
        store
            .get(AuthRecord::Client, "app")
            .await
            .unwrap()
            .is_some()
    );
    store.delete(AuthRecord::Client, "app").await.unwrap();
    assert_eq!(store.get(AuthRecord::Client, "app").await.unwrap(), None);

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
