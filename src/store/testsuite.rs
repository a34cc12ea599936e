//! The contract every `CatalogStore` must meet (see the trait's docs), run on SQLite in every
//! test run and on DynamoDB against moto's server: round trips, partition isolation, paging,
//! conditional and concurrent writes, versions and rollback, the audit trail, batch call
//! writes, the item limit and the original's "Cannot find" rule.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::protocol::PartitionKey;

pub fn pk(s: &str) -> PartitionKey {
    PartitionKey::parse(s).unwrap()
}

pub fn tool(name: &str) -> FunctionDraft {
    FunctionDraft {
        name: name.into(),
        mcp_type: McpType::Tool,
        description: Some(format!("the {name} tool")),
        data: json!({"input_schema": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 1.5}}}, "n": 3}),
        annotations: Some("{\"readOnlyHint\": true}".into()),
        module_name: Some("demo_module".into()),
        class_name: Some("Demo".into()),
        function_name: Some(name.into()),
        return_type: Some("text".into()),
        is_async: Some(false),
        enabled: true,
    }
}

pub fn call(p: &PartitionKey, uuid: &str, at_ms: u64) -> CallRecord {
    CallRecord {
        partition_key: p.clone(),
        mcp_function_call_uuid: uuid.into(),
        name: "get_weather".into(),
        mcp_type: McpType::Tool,
        arguments: json!({"city": "Oslo", "days": 3, "nested": {"deep": [1, 2.5, "x"]}}),
        content: Some("sunny".into()),
        content_in_s3: false,
        status: CallStatus::Completed,
        notes: None,
        time_spent: Some(1000),
        updated_by: "mcp_daemon_engine".into(),
        created_at: Timestamp::from_millis(at_ms),
        updated_at: Timestamp::from_millis(at_ms),
    }
}

/// Runs every part of the contract on `store` (which must start empty).
pub async fn catalog_store_contract(store: Arc<dyn CatalogStore>) {
    round_trips(store.as_ref()).await;
    isolation(store.as_ref()).await;
    paging_and_filters(store.as_ref()).await;
    conditional_writes(store.as_ref()).await;
    concurrent_writers(store.clone()).await;
    versions_and_rollback(store.as_ref()).await;
    calls(store.as_ref()).await;
    limits(store.as_ref()).await;
}

async fn round_trips(s: &dyn CatalogStore) {
    let p = pk("rt");
    assert_eq!(s.get_function(&p, "nope").await.unwrap(), None);
    assert!(
        !s.delete_function(&p, "nope", &Change::by("a"))
            .await
            .unwrap()
    );
    let mut draft = tool("get_weather");
    draft.is_async = Some(true);
    let f = s
        .put_function(&p, draft.clone(), &Change::by("alice"))
        .await
        .unwrap();
    assert_eq!((f.version, f.updated_by.as_str()), (1, "alice"));
    assert_eq!(f.created_at, f.updated_at);
    let got = s.get_function(&p, "get_weather").await.unwrap().unwrap();
    assert_eq!(got, f, "every attribute comes back");
    assert_eq!(
        got.draft.data["input_schema"]["properties"]["x"]["minimum"],
        json!(1.5)
    );
    assert_eq!(got.draft.data["n"], json!(3), "numbers stay numbers");
    let mut bare = tool("bare");
    (
        bare.description,
        bare.annotations,
        bare.module_name,
        bare.class_name,
    ) = (None, None, None, None);
    (
        bare.function_name,
        bare.return_type,
        bare.is_async,
        bare.data,
    ) = (None, None, None, json!({}));
    bare.mcp_type = McpType::Prompt;
    let b = s
        .put_function(&p, bare.clone(), &Change::by("alice"))
        .await
        .unwrap();
    assert_eq!(
        s.get_function(&p, "bare").await.unwrap().unwrap().draft,
        bare
    );
    assert!(
        s.delete_function(&p, "bare", &Change::by("alice"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_function(&p, "bare").await.unwrap(), None);
    let _ = b;

    let m = ModuleDraft {
        module_name: "demo_module".into(),
        package_name: "demo_package".into(),
        classes: json!([{"class_name": "Demo", "setting_id": "00000000000000000001"}]),
        source: Some("s3".into()),
    };
    let mr = s
        .put_module(&p, m.clone(), &Change::by("bob"))
        .await
        .unwrap();
    assert_eq!(s.get_module(&p, "demo_module").await.unwrap().unwrap(), mr);
    let m2 = ModuleDraft {
        source: None,
        ..m.clone()
    };
    let mr2 = s
        .put_module(&p, m2.clone(), &Change::by("carol"))
        .await
        .unwrap();
    assert_eq!(
        (mr2.created_at, mr2.draft.source.clone()),
        (mr.created_at, None),
        "upsert by key"
    );

    let st = s
        .put_setting(
            &p,
            SettingDraft {
                setting_id: None,
                setting: json!({"api_key": "k", "retries": 2}),
            },
            &Change::by("bob"),
        )
        .await
        .unwrap();
    assert!(
        st.setting_id.len() == 20 && st.setting_id.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        st.setting_id
    );
    assert_eq!(
        s.get_setting(&p, &st.setting_id).await.unwrap().unwrap(),
        st
    );
    let st2 = s
        .put_setting(
            &p,
            SettingDraft {
                setting_id: Some(st.setting_id.clone()),
                setting: json!({"api_key": "k2"}),
            },
            &Change::by("bob"),
        )
        .await
        .unwrap();
    assert_eq!(
        (st2.created_at, &st2.setting),
        (st.created_at, &json!({"api_key": "k2"}))
    );
    let err = s
        .put_setting(
            &p,
            SettingDraft {
                setting_id: Some("12345".into()),
                setting: json!({}),
            },
            &Change::by("bob"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().starts_with("Cannot find the mcp_setting"),
        "{err}"
    );
    assert_eq!(
        s.get_setting(&p, "12345").await.unwrap(),
        None,
        "nothing stored"
    );

    // The audit trail saw every admin change, newest first.
    let audit = s
        .list_audit(&p, &AuditFilter::default(), Page::default())
        .await
        .unwrap();
    let actions: Vec<_> = audit
        .items
        .iter()
        .map(|e| (e.entity, e.action, e.key.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            (
                AuditEntity::Setting,
                AuditAction::Update,
                st.setting_id.as_str()
            ),
            (
                AuditEntity::Setting,
                AuditAction::Insert,
                st.setting_id.as_str()
            ),
            (AuditEntity::Module, AuditAction::Update, "demo_module"),
            (AuditEntity::Module, AuditAction::Insert, "demo_module"),
            (AuditEntity::Function, AuditAction::Delete, "bare"),
            (AuditEntity::Function, AuditAction::Insert, "bare"),
            (AuditEntity::Function, AuditAction::Insert, "get_weather"),
        ]
    );
    let upd = &audit.items[2];
    assert_eq!(upd.by, "carol");
    assert_eq!(upd.before.as_ref().unwrap()["source"], json!("s3"));
    assert_eq!(upd.after.as_ref().unwrap()["source"], json!(null));
    let only = s
        .list_audit(
            &p,
            &AuditFilter {
                entity: Some(AuditEntity::Function),
                key: Some("bare".into()),
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(only.total, 2);
    assert!(only.items[0].after.is_none() && only.items[0].before.is_some());

    // Deleting modules and settings.
    assert!(
        s.delete_module(&p, "demo_module", &Change::by("bob"))
            .await
            .unwrap()
    );
    assert!(
        !s.delete_module(&p, "demo_module", &Change::by("bob"))
            .await
            .unwrap()
    );
    assert!(
        s.delete_setting(&p, &st.setting_id, &Change::by("bob"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_setting(&p, &st.setting_id).await.unwrap(), None);
    assert!(
        !s.delete_setting(&p, &st.setting_id, &Change::by("bob"))
            .await
            .unwrap()
    );
}

async fn isolation(s: &dyn CatalogStore) {
    let (x, y, xy) = (pk("iso-x"), pk("iso-y"), pk("iso-x#part"));
    s.put_function(&x, tool("only_x"), &Change::by("a"))
        .await
        .unwrap();
    let m = ModuleDraft {
        module_name: "mx".into(),
        package_name: "mx".into(),
        classes: json!([]),
        source: None,
    };
    s.put_module(&x, m, &Change::by("a")).await.unwrap();
    let st = s
        .put_setting(
            &x,
            SettingDraft {
                setting_id: None,
                setting: json!({}),
            },
            &Change::by("a"),
        )
        .await
        .unwrap();
    s.put_calls(&[call(&x, "00000000000000000042", 1_000)])
        .await
        .unwrap();
    for other in [&y, &xy] {
        assert_eq!(s.get_function(other, "only_x").await.unwrap(), None);
        assert_eq!(s.get_module(other, "mx").await.unwrap(), None);
        assert_eq!(s.get_setting(other, &st.setting_id).await.unwrap(), None);
        assert_eq!(
            s.get_call(other, "00000000000000000042").await.unwrap(),
            None
        );
        assert_eq!(
            s.list_functions(other, &FunctionFilter::default(), Page::default())
                .await
                .unwrap()
                .total,
            0
        );
        assert_eq!(
            s.list_calls(other, &CallFilter::default(), Page::default())
                .await
                .unwrap()
                .total,
            0
        );
        assert_eq!(
            s.list_audit(other, &AuditFilter::default(), Page::default())
                .await
                .unwrap()
                .total,
            0
        );
        assert_eq!(
            s.load_partition(other).await.unwrap(),
            PartitionSnapshot::default()
        );
        assert!(
            !s.delete_function(other, "only_x", &Change::by("a"))
                .await
                .unwrap()
        );
        let err = s
            .put_setting(
                other,
                SettingDraft {
                    setting_id: Some(st.setting_id.clone()),
                    setting: json!({}),
                },
                &Change::by("a"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.kind,
            StoreErrorKind::NotFound,
            "an id of X is unknown in Y"
        );
    }
    assert!(
        s.get_function(&x, "only_x").await.unwrap().is_some(),
        "Y's delete left X alone"
    );
    let parts = s.partitions().await.unwrap();
    assert!(parts.contains(&x) && !parts.contains(&y), "{parts:?}");
    let snap = s.load_partition(&x).await.unwrap();
    assert_eq!(
        (
            snap.functions.len(),
            snap.modules.len(),
            snap.settings.len()
        ),
        (1, 1, 1)
    );
}

async fn paging_and_filters(s: &dyn CatalogStore) {
    let p = pk("paging");
    for i in 0..250 {
        let mut d = tool(&format!("fn_{i:03}"));
        if i % 5 == 0 {
            d.mcp_type = McpType::Resource;
            d.module_name = Some("other_module".into());
        }
        if i % 10 == 3 {
            d.enabled = false;
            d.description = Some("a DISABLED one".into());
        }
        s.put_function(&p, d, &Change::by("loader").loading())
            .await
            .unwrap();
    }
    let all = FunctionFilter::default();
    let mut seen = Vec::new();
    for (number, want) in [(1, 100), (2, 100), (3, 50), (4, 0)] {
        let page = s
            .list_functions(&p, &all, Page::new(number, 100))
            .await
            .unwrap();
        assert_eq!(
            (
                page.items.len(),
                page.total,
                page.page_number,
                page.page_size
            ),
            (want, 250, number, 100),
            "page {number}"
        );
        seen.extend(page.items.into_iter().map(|f| f.draft.name));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        (seen.len(), sorted == seen),
        (250, true),
        "every function once, by name"
    );
    let default = s.list_functions(&p, &all, Page::new(0, 0)).await.unwrap();
    assert_eq!(
        (default.items.len(), default.page_number, default.page_size),
        (100, 1, 100)
    );

    let pr = &p;
    let count = |f: FunctionFilter| async move {
        s.list_functions(pr, &f, Page::new(1, 1000)).await.unwrap()
    };
    let res = count(FunctionFilter {
        mcp_type: Some(McpType::Resource),
        ..Default::default()
    })
    .await;
    assert_eq!(res.total, 50);
    assert!(
        res.items
            .iter()
            .all(|f| f.draft.mcp_type == McpType::Resource)
    );
    assert_eq!(
        count(FunctionFilter {
            module_name: Some("other_module".into()),
            ..Default::default()
        })
        .await
        .total,
        50
    );
    assert_eq!(
        count(FunctionFilter {
            function_name: Some("fn_007".into()),
            ..Default::default()
        })
        .await
        .total,
        1
    );
    assert_eq!(
        count(FunctionFilter {
            description_contains: Some("DISABLED".into()),
            ..Default::default()
        })
        .await
        .total,
        25
    );
    assert_eq!(
        count(FunctionFilter {
            enabled: Some(false),
            ..Default::default()
        })
        .await
        .total,
        25
    );
    assert_eq!(
        count(FunctionFilter {
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .total,
        225
    );
    let both = count(FunctionFilter {
        mcp_type: Some(McpType::Tool),
        enabled: Some(false),
        ..Default::default()
    })
    .await;
    assert_eq!(both.total, 25);
    let page2 = s
        .list_functions(
            &p,
            &FunctionFilter {
                mcp_type: Some(McpType::Tool),
                ..Default::default()
            },
            Page::new(2, 150),
        )
        .await
        .unwrap();
    assert_eq!(
        (page2.total, page2.items.len()),
        (200, 50),
        "a filtered list pages too"
    );

    let snap = s.load_partition(&p).await.unwrap();
    assert_eq!(
        snap.functions.len(),
        225,
        "disabled functions are not loaded"
    );
    let audit = s
        .list_audit(&p, &AuditFilter::default(), Page::new(3, 100))
        .await
        .unwrap();
    assert_eq!((audit.total, audit.items.len()), (250, 50));
    assert!(audit.items.iter().all(|e| e.action == AuditAction::Load));

    // Settings and modules page the same way.
    for i in 0..30 {
        let m = ModuleDraft {
            module_name: format!("mod_{i:02}"),
            package_name: format!("pkg_{}", i % 3),
            classes: json!([]),
            source: None,
        };
        s.put_module(&p, m, &Change::by("a")).await.unwrap();
    }
    let mods = s
        .list_modules(&p, &ModuleFilter::default(), Page::new(2, 20))
        .await
        .unwrap();
    assert_eq!(
        (
            mods.total,
            mods.items.len(),
            mods.items[0].draft.module_name.as_str()
        ),
        (30, 10, "mod_20")
    );
    let f = ModuleFilter {
        package_name: Some("pkg_1".into()),
        module_name_contains: Some("mod_1".into()),
    };
    let names: Vec<_> = s
        .list_modules(&p, &f, Page::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.draft.module_name)
        .collect();
    assert_eq!(names, ["mod_10", "mod_13", "mod_16", "mod_19"]);
    for _ in 0..3 {
        s.put_setting(
            &p,
            SettingDraft {
                setting_id: None,
                setting: json!({}),
            },
            &Change::by("a"),
        )
        .await
        .unwrap();
    }
    let sets = s
        .list_settings(&p, &SettingFilter::default(), Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!((sets.total, sets.items.len()), (3, 2));
    let one = &sets.items[0].setting_id;
    let hit = s
        .list_settings(
            &p,
            &SettingFilter {
                setting_id_contains: Some(one[10..].into()),
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert!(hit.items.iter().any(|x| &x.setting_id == one));
}

async fn conditional_writes(s: &dyn CatalogStore) {
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

async fn concurrent_writers(s: Arc<dyn CatalogStore>) {
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

async fn versions_and_rollback(s: &dyn CatalogStore) {
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

async fn calls(s: &dyn CatalogStore) {
    let (p, q) = (pk("calls"), pk("calls#other"));
    // The recorder's batch: past 25 items, two partitions, one record refused.
    let mut batch: Vec<CallRecord> = (0..60u64)
        .map(|i| {
            let mut c = call(
                if i % 4 == 0 { &q } else { &p },
                &format!("{:020}", 1000 + i),
                1_700_000_000_000 + i * 1000,
            );
            if i % 3 == 0 {
                c.status = CallStatus::Failed;
                c.notes = Some("Traceback ...".into());
                c.content = None;
            }
            if i % 7 == 0 {
                c.name = "other_tool".into();
                c.mcp_type = McpType::Resource;
            }
            c
        })
        .collect();
    let mut huge = call(&p, "99999999999999999999", 1_700_000_000_000);
    huge.content = Some("x".repeat(MAX_ITEM_BYTES + 1));
    batch.push(huge);
    let report = s.put_calls(&batch).await.unwrap();
    assert_eq!(report.written, 60);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(
        (report.refused[0].0.as_str(), report.refused[0].1.kind),
        ("99999999999999999999", StoreErrorKind::TooLarge)
    );
    assert_eq!(s.get_call(&p, "99999999999999999999").await.unwrap(), None);
    let got = s
        .get_call(&p, &batch[1].mcp_function_call_uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, batch[1], "every attribute comes back");
    assert_eq!(
        s.get_call(&q, &batch[0].mcp_function_call_uuid)
            .await
            .unwrap()
            .unwrap(),
        batch[0]
    );

    let all = s
        .list_calls(&p, &CallFilter::default(), Page::new(1, 20))
        .await
        .unwrap();
    assert_eq!((all.total, all.items.len()), (45, 20));
    assert_eq!(
        all.items[0].mcp_function_call_uuid,
        format!("{:020}", 1059),
        "newest first"
    );
    assert!(
        all.items
            .windows(2)
            .all(|w| w[0].updated_at >= w[1].updated_at)
    );
    let page3 = s
        .list_calls(&p, &CallFilter::default(), Page::new(3, 20))
        .await
        .unwrap();
    assert_eq!(page3.items.len(), 5);
    assert_eq!(
        s.list_calls(&p, &CallFilter::default(), Page::new(4, 20))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    let pr = &p;
    let count = |f: CallFilter| async move {
        s.list_calls(pr, &f, Page::new(1, 1000))
            .await
            .unwrap()
            .total
    };
    let in_p: Vec<u64> = (0..60).filter(|i| i % 4 != 0).collect();
    let n = |pred: &dyn Fn(u64) -> bool| in_p.iter().filter(|i| pred(**i)).count() as u64;
    assert_eq!(
        count(CallFilter {
            status: Some(CallStatus::Failed),
            ..Default::default()
        })
        .await,
        n(&|i| i % 3 == 0)
    );
    assert_eq!(
        count(CallFilter {
            name: Some("other_tool".into()),
            ..Default::default()
        })
        .await,
        n(&|i| i % 7 == 0)
    );
    assert_eq!(
        count(CallFilter {
            mcp_type: Some(McpType::Resource),
            ..Default::default()
        })
        .await,
        n(&|i| i % 7 == 0)
    );
    let t = |i: u64| Some(Timestamp::from_millis(1_700_000_000_000 + i * 1000));
    assert_eq!(
        count(CallFilter {
            updated_after: t(10),
            ..Default::default()
        })
        .await,
        n(&|i| i > 10)
    );
    assert_eq!(
        count(CallFilter {
            updated_before: t(10),
            ..Default::default()
        })
        .await,
        n(&|i| i < 10)
    );
    let window = CallFilter {
        updated_after: t(10),
        updated_before: t(30),
        status: Some(CallStatus::Failed),
        name: Some("other_tool".into()),
        ..Default::default()
    };
    assert_eq!(
        count(window).await,
        n(&|i| i > 10 && i < 30 && i % 3 == 0 && i % 7 == 0)
    );

    // Writing the same batch again replaces, never duplicates.
    let mut again = batch[..60].to_vec();
    for c in &mut again {
        c.status = CallStatus::Completed;
    }
    assert_eq!(s.put_calls(&again).await.unwrap().written, 60);
    assert_eq!(
        count(CallFilter {
            status: Some(CallStatus::Failed),
            ..Default::default()
        })
        .await,
        0
    );

    // The original's insertUpdateMcpFunctionCall.
    let fresh = s
        .upsert_call(
            &p,
            CallPatch {
                name: Some("t".into()),
                mcp_type: Some(McpType::Tool),
                arguments: Some(json!({"a": 1})),
                ..Default::default()
            },
            "mcp_daemon_engine",
        )
        .await
        .unwrap();
    assert_eq!(fresh.status, CallStatus::Initial);
    assert!(
        fresh.mcp_function_call_uuid.len() == 20
            && fresh
                .mcp_function_call_uuid
                .bytes()
                .all(|b| b.is_ascii_digit())
    );
    let done = s
        .upsert_call(
            &p,
            CallPatch {
                mcp_function_call_uuid: Some(fresh.mcp_function_call_uuid.clone()),
                status: Some(CallStatus::Completed),
                content: Some("ok".into()),
                time_spent: Some(2000),
                ..Default::default()
            },
            "mcp_daemon_engine",
        )
        .await
        .unwrap();
    assert_eq!(
        (
            done.status,
            done.content.as_deref(),
            done.time_spent,
            &done.arguments
        ),
        (
            CallStatus::Completed,
            Some("ok"),
            Some(2000),
            &json!({"a": 1})
        )
    );
    assert_eq!(
        s.get_call(&p, &fresh.mcp_function_call_uuid)
            .await
            .unwrap()
            .unwrap(),
        done
    );
    let err = s
        .upsert_call(
            &p,
            CallPatch {
                mcp_function_call_uuid: Some("404".into()),
                status: Some(CallStatus::Failed),
                ..Default::default()
            },
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with("Cannot find the mcp_function_call"),
        "{err}"
    );
    assert_eq!(s.get_call(&p, "404").await.unwrap(), None);
    let err = s
        .upsert_call(
            &p,
            CallPatch {
                name: Some("t".into()),
                ..Default::default()
            },
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        StoreErrorKind::Invalid,
        "a new call needs its mcp_type"
    );
    let err = s
        .upsert_call(
            &p,
            CallPatch {
                name: Some("t".into()),
                mcp_type: Some(McpType::Tool),
                arguments: Some(json!("no")),
                ..Default::default()
            },
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        StoreErrorKind::Invalid,
        "arguments must be an object"
    );
    assert!(
        s.delete_call(&p, &fresh.mcp_function_call_uuid)
            .await
            .unwrap()
    );
    assert!(
        !s.delete_call(&p, &fresh.mcp_function_call_uuid)
            .await
            .unwrap()
    );
}

async fn limits(s: &dyn CatalogStore) {
    let p = pk("limits");
    let mut big = tool("big");
    big.data = json!({"blob": "y".repeat(MAX_ITEM_BYTES)});
    let err = s.put_function(&p, big, &Change::by("a")).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::TooLarge, "{err}");
    assert!(err.to_string().contains("function big"), "{err}");
    assert_eq!(s.get_function(&p, "big").await.unwrap(), None);
    assert_eq!(
        s.list_audit(&p, &AuditFilter::default(), Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    // Just under the limit fits (and its audit entry names the versions instead).
    let mut large = tool("large");
    large.data = json!({"blob": "y".repeat(MAX_ITEM_BYTES - 2000)});
    s.put_function(&p, large.clone(), &Change::by("a"))
        .await
        .unwrap();
    s.put_function(&p, large, &Change::by("a")).await.unwrap();
    let audit = s
        .list_audit(&p, &AuditFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(
        audit.items[0].after,
        Some(json!({"omitted": "too large", "version": 2}))
    );
    let m = ModuleDraft {
        module_name: "m".into(),
        package_name: "p".into(),
        classes: json!([{"class_name": "x".repeat(MAX_ITEM_BYTES)}]),
        source: None,
    };
    assert_eq!(
        s.put_module(&p, m, &Change::by("a"))
            .await
            .unwrap_err()
            .kind,
        StoreErrorKind::TooLarge
    );
    let err = s
        .put_setting(
            &p,
            SettingDraft {
                setting_id: None,
                setting: json!({"v": "z".repeat(MAX_ITEM_BYTES)}),
            },
            &Change::by("a"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::TooLarge);
    // Bad shapes.
    let mut bad = tool("");
    assert_eq!(
        s.put_function(&p, bad.clone(), &Change::by("a"))
            .await
            .unwrap_err()
            .kind,
        StoreErrorKind::Invalid
    );
    bad.name = "ok".into();
    bad.data = json!([1]);
    assert_eq!(
        s.put_function(&p, bad, &Change::by("a"))
            .await
            .unwrap_err()
            .kind,
        StoreErrorKind::Invalid
    );
    assert_eq!(
        s.put_function(&p, tool("ok"), &Change::by(" "))
            .await
            .unwrap_err()
            .kind,
        StoreErrorKind::Invalid
    );
    let err = s
        .put_setting(
            &p,
            SettingDraft {
                setting_id: None,
                setting: json!("str"),
            },
            &Change::by("a"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert_eq!(s.get_function(&p, "ok").await.unwrap(), None);
    assert_eq!(
        s.list_settings(&p, &SettingFilter::default(), Page::default())
            .await
            .unwrap()
            .total,
        0
    );
}
