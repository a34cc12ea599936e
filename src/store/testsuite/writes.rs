//! Contract: conditional and concurrent writes, versions and rollback.

use std::sync::Arc;

use super::*;

pub(super) async fn conditional_writes(s: &dyn CatalogStore) {
    let p = pk("cond");
    let err = s
        .put_function(&p, tool("f"), &Change::by("a").expecting(3))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Conflict, "{err}");
    assert_eq!(s.get_function(&p, "f").await.unwrap(), None);
    let v1 = s
        .put_function(&p, tool("f"), &Change::by("a").expecting(0))
        .await
        .unwrap();
    let err = s
        .put_function(&p, tool("f"), &Change::by("a").expecting(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        StoreErrorKind::Conflict,
        "create-only refuses an existing function"
    );
    let mut changed = tool("f");
    changed.description = Some("v2".into());
    let v2 = s
        .put_function(&p, changed.clone(), &Change::by("b").expecting(1))
        .await
        .unwrap();
    assert_eq!((v2.version, v2.created_at), (2, v1.created_at));
    let mut stale = tool("f");
    stale.description = Some("stale".into());
    let err = s
        .put_function(&p, stale, &Change::by("c").expecting(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("version 2"), "{err}");
    assert_eq!(
        s.get_function(&p, "f").await.unwrap().unwrap(),
        v2,
        "nothing written"
    );
    let versions = s.function_versions(&p, "f", Page::default()).await.unwrap();
    assert_eq!(versions.total, 2, "no version kept for the refused write");
    let audit = s
        .list_audit(&p, &AuditFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(audit.total, 2, "no audit entry for the refused write");
    let err = s
        .delete_function(&p, "f", &Change::by("c").expecting(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Conflict);
    assert!(s.get_function(&p, "f").await.unwrap().is_some());
    assert!(
        s.delete_function(&p, "f", &Change::by("c").expecting(2))
            .await
            .unwrap()
    );
}

pub(super) async fn concurrent_writers(s: Arc<dyn CatalogStore>) {
    let p = pk("race");
    s.put_function(&p, tool("hot"), &Change::by("seed"))
        .await
        .unwrap();
    // Several writers expecting the same version at once: exactly one wins.
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (s, p) = (s.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let mut d = tool("hot");
            d.description = Some(format!("writer {w}"));
            s.put_function(&p, d, &Change::by(format!("w{w}")).expecting(1))
                .await
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.kind == StoreErrorKind::Conflict)
    );

    // Writers that retry on conflict: every success is its own version, no gaps.
    let (writers, each) = (4, 3);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (s, p) = (s.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < each {
                let cur = s.get_function(&p, "hot").await.unwrap().unwrap();
                let mut d = cur.draft.clone();
                d.description = Some(format!("writer {w} #{done}"));
                match s
                    .put_function(&p, d, &Change::by(format!("r{w}")).expecting(cur.version))
                    .await
                {
                    Ok(r) => {
                        assert_eq!(r.version, cur.version + 1);
                        done += 1;
                    }
                    Err(e) => assert_eq!(e.kind, StoreErrorKind::Conflict, "{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Writers without an expectation never lose a write either.
    let mut tasks = Vec::new();
    for w in 0..3 {
        let (s, p) = (s.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            s.put_function(&p, tool("hot"), &Change::by(format!("blind{w}")))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let last = 2 + writers * each + 3;
    let cur = s.get_function(&p, "hot").await.unwrap().unwrap();
    assert_eq!(cur.version, last as u64);
    let versions = s
        .function_versions(&p, "hot", Page::new(1, 1000))
        .await
        .unwrap();
    let numbers: Vec<u64> = versions.items.iter().map(|v| v.record.version).collect();
    assert_eq!(
        numbers,
        (1..=last as u64).rev().collect::<Vec<_>>(),
        "no gaps, newest first"
    );
    assert!(versions.items[0].current && versions.items[1..].iter().all(|v| !v.current));
    let audit = s
        .list_audit(
            &p,
            &AuditFilter {
                entity: Some(AuditEntity::Function),
                key: Some("hot".into()),
            },
            Page::new(1, 1000),
        )
        .await
        .unwrap();
    assert_eq!(audit.total, last as u64, "one audit entry per version");
    let mut after: Vec<u64> = audit
        .items
        .iter()
        .map(|e| e.after.as_ref().unwrap()["version"].as_u64().unwrap())
        .collect();
    after.sort();
    assert_eq!(after, (1..=last as u64).collect::<Vec<_>>());
}

pub(super) async fn versions_and_rollback(s: &dyn CatalogStore) {
    let p = pk("versions");
    assert_eq!(
        s.function_versions(&p, "v", Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    for i in 1..=3 {
        let mut d = tool("v");
        d.description = Some(format!("content {i}"));
        s.put_function(&p, d, &Change::by(format!("u{i}")))
            .await
            .unwrap();
    }
    let vs = s.function_versions(&p, "v", Page::new(2, 2)).await.unwrap();
    assert_eq!(
        (vs.total, vs.items.len(), vs.items[0].record.version),
        (3, 1, 1)
    );
    assert_eq!(vs.items[0].record.updated_by, "u1");
    let rolled = s
        .rollback_function(&p, "v", 1, &Change::by("admin"))
        .await
        .unwrap();
    assert_eq!(
        (
            rolled.version,
            rolled.draft.description.as_deref(),
            rolled.updated_by.as_str()
        ),
        (4, Some("content 1"), "admin")
    );
    let err = s
        .rollback_function(&p, "v", 9, &Change::by("admin"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::NotFound, "{err}");
    let err = s
        .rollback_function(&p, "v", 2, &Change::by("admin").expecting(3))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Conflict);
    let last = s
        .list_audit(&p, &AuditFilter::default(), Page::new(1, 1))
        .await
        .unwrap();
    assert_eq!(last.items[0].action, AuditAction::Rollback);
    // A deleted function keeps its history; a rollback brings it back with the next number.
    assert!(
        s.delete_function(&p, "v", &Change::by("admin"))
            .await
            .unwrap()
    );
    let vs = s.function_versions(&p, "v", Page::default()).await.unwrap();
    assert_eq!(vs.total, 4);
    assert!(vs.items.iter().all(|v| !v.current));
    let back = s
        .rollback_function(&p, "v", 2, &Change::by("admin"))
        .await
        .unwrap();
    assert_eq!(
        (back.version, back.draft.description.as_deref()),
        (5, Some("content 2"))
    );
    assert!(
        s.delete_function(&p, "v", &Change::by("admin"))
            .await
            .unwrap()
    );
    let again = s
        .put_function(&p, tool("v"), &Change::by("admin"))
        .await
        .unwrap();
    assert_eq!(again.version, 6, "numbers never repeat after a delete");
}
