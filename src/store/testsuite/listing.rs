//! Contract: paging and filters of every list.

use serde_json::json;

use super::*;

pub(super) async fn paging_and_filters(s: &dyn CatalogStore) {
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
