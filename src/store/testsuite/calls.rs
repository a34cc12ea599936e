//! Contract: recorded calls (upserts, lists, batches) and the item limit.

use serde_json::json;

use super::*;

pub(super) async fn calls(s: &dyn CatalogStore) {
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

pub(super) async fn limits(s: &dyn CatalogStore) {
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
