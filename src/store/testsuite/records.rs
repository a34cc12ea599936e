//! Contract: round trips of every record type, and partition isolation.

use serde_json::json;

use super::*;

pub(super) async fn round_trips(s: &dyn CatalogStore) {
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

pub(super) async fn isolation(s: &dyn CatalogStore) {
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
