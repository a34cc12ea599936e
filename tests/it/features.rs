//! Tools, resources, prompts, completion, logging and server notifications over /mcp.

use std::sync::Arc;

use mcp_daemon::catalog::Catalog;
use mcp_daemon::clock::SystemClock;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn tools_list_paginates_with_opaque_cursors() {
    let mut c = integration_config();
    c.page_size = 4;
    let s = TestServer::start_with(c, Arc::new(SystemClock)).await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for page in 0.. {
        let params = if cursor.is_null() {
            json!({})
        } else {
            json!({"cursor": cursor})
        };
        let r = s.request(&sid, page, "tools/list", params).await["result"].clone();
        let tools = r["tools"].as_array().unwrap();
        assert!(tools.len() <= 4);
        names.extend(
            tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        cursor = r.get("nextCursor").cloned().unwrap_or(Value::Null);
        if cursor.is_null() {
            break;
        }
    }
    let all = s
        .engine
        .catalog(&Default::default())
        .await
        .unwrap()
        .tools
        .len();
    assert_eq!(names.len(), all);
    assert!(names.contains(&"hello".to_string()) && names.contains(&"testkit_sleep".to_string()));
}

#[tokio::test]
async fn tool_calls_validate_arguments_and_shape_results() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(
        s.call_tool(&sid, "hello", json!({"name": "Ada"})).await["content"][0]["text"],
        "Hello, Ada!"
    );
    assert_eq!(
        s.call_tool(&sid, "add_numbers", json!({"a": 1.5, "b": 2}))
            .await["content"][0]["text"],
        "3.5"
    );
    let bad = s.call_tool(&sid, "add_numbers", json!({"a": "one"})).await;
    assert_eq!(bad["isError"], true);
    assert!(
        bad["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Invalid arguments")
    );
    let err = s.call_tool(&sid, "test_error_handling", json!({})).await;
    assert_eq!(err["isError"], true);
    assert_eq!(
        err["content"][0]["text"],
        "This tool intentionally returns an error for testing"
    );
    let mixed = s
        .call_tool(&sid, "test_multiple_content_types", json!({}))
        .await;
    let kinds: Vec<&str> = mixed["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["text", "image", "resource"]);
    // outputSchema -> structuredContent, plus its text form for older clients.
    let who = s.call_tool(&sid, "testkit_whoami", json!({})).await;
    assert_eq!(who["structuredContent"]["session"], sid.as_str());
    assert_eq!(who["structuredContent"]["subject"], "anonymous");
    assert!(who["content"][0]["text"].as_str().unwrap().contains(&sid));
}

#[tokio::test]
async fn older_revisions_do_not_see_output_schemas() {
    let s = TestServer::start().await;
    let old = s.initialize("2025-03-26", json!({})).await;
    let new = s.initialize("2025-11-25", json!({})).await;
    let find = |v: Value| {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "testkit_whoami")
            .cloned()
            .unwrap()
    };
    assert!(
        find(s.request(&old, 1, "tools/list", json!({})).await)
            .get("outputSchema")
            .is_none()
    );
    assert!(
        find(s.request(&new, 1, "tools/list", json!({})).await)
            .get("outputSchema")
            .is_some()
    );
}

#[tokio::test]
async fn resources_list_templates_and_read() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let list = s.request(&sid, 1, "resources/list", json!({})).await["result"]["resources"].clone();
    let uris: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.contains(&"status://server") && uris.contains(&"test://static-text"));
    let t = s
        .request(&sid, 2, "resources/templates/list", json!({}))
        .await;
    assert_eq!(
        t["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://template/{id}/data"
    );
    let r = s
        .request(
            &sid,
            3,
            "resources/read",
            json!({"uri": "test://template/42/data"}),
        )
        .await;
    let text: Value =
        serde_json::from_str(r["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        text,
        json!({"id": "42", "templateTest": true, "data": "Data for ID: 42"})
    );
    let bin = s
        .request(
            &sid,
            4,
            "resources/read",
            json!({"uri": "test://static-binary"}),
        )
        .await;
    assert_eq!(bin["result"]["contents"][0]["mimeType"], "image/png");
    assert!(bin["result"]["contents"][0]["blob"].as_str().unwrap().len() > 20);
    let status = s
        .request(&sid, 5, "resources/read", json!({"uri": "status://server"}))
        .await;
    let st: Value =
        serde_json::from_str(status["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(st["status"], "ok");
}

#[tokio::test]
async fn prompts_and_completion() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-11-25", json!({})).await;
    let list = s.request(&sid, 1, "prompts/list", json!({})).await["result"]["prompts"].clone();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "test_prompt_with_arguments")
    );
    let p = s
        .request(
            &sid,
            2,
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
        )
        .await;
    assert_eq!(
        p["result"]["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='a', arg2='b'"
    );
    let p = s
        .request(
            &sid,
            3,
            "prompts/get",
            json!({"name": "example-prompt", "arguments": {"arg1": "zz"}}),
        )
        .await;
    assert!(
        p["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("zz")
    );
    let c = s
        .request(&sid, 4, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": "x"}}))
        .await;
    assert_eq!(c["result"]["completion"]["values"], json!([]));
    let c = s.request(&sid, 5, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "a", "value": ""}})).await;
    assert_eq!(c["error"]["code"], -32602);
}

#[tokio::test]
async fn logging_set_level_filters_messages_per_session() {
    let s = TestServer::start().await;
    let quiet = s.initialize("2025-11-25", json!({})).await;
    let chatty = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(
        s.request(&quiet, 1, "logging/setLevel", json!({"level": "warning"}))
            .await["result"],
        json!({})
    );
    // Info messages are filtered: nothing is sent first, so the answer is plain JSON.
    let r = s
        .call_tool(&quiet, "test_tool_with_logging", json!({}))
        .await;
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("logging")
    );
    // The other session still gets them, on an SSE response.
    let resp = s.post(Some(&chatty), &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "test_tool_with_logging"}})).await;
    let events = SseReader::new(resp).until_response(&json!(9), SECS5).await;
    let logs: Vec<Value> = events
        .iter()
        .map(|e| e.json())
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["params"]["data"], "Tool execution started");
    assert_eq!(logs[0]["params"]["level"], "info");
}

#[tokio::test]
async fn subscribed_resource_updates_reach_only_subscribers_on_their_get_stream() {
    let s = TestServer::start().await;
    let a = s.initialize("2025-11-25", json!({})).await;
    let b = s.initialize("2025-11-25", json!({})).await;
    assert_eq!(
        s.request(
            &a,
            1,
            "resources/subscribe",
            json!({"uri": "test://watched-resource"})
        )
        .await["result"],
        json!({})
    );
    let mut stream_a = SseReader::new(s.get_stream(&a, None).await);
    let mut stream_b = SseReader::new(s.get_stream(&b, None).await);
    assert_eq!(
        stream_a.next(SECS5).await.unwrap().data,
        "",
        "priming event first"
    );
    assert_eq!(stream_b.next(SECS5).await.unwrap().data, "");
    s.call_tool(
        &b,
        "testkit_notify_resource",
        json!({"uri": "test://watched-resource"}),
    )
    .await;
    let ev = stream_a.next(SECS5).await.unwrap();
    assert_eq!(ev.json()["method"], "notifications/resources/updated");
    assert_eq!(ev.json()["params"]["uri"], "test://watched-resource");
    assert!(ev.id.unwrap().starts_with("g-"));
    // b did not subscribe: nothing arrives there.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), stream_b.next(SECS5))
            .await
            .is_err()
    );
    // After unsubscribing, a gets nothing either.
    s.request(
        &a,
        2,
        "resources/unsubscribe",
        json!({"uri": "test://watched-resource"}),
    )
    .await;
    s.call_tool(
        &b,
        "testkit_notify_resource",
        json!({"uri": "test://watched-resource"}),
    )
    .await;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), stream_a.next(SECS5))
            .await
            .is_err()
    );
    let e = s
        .request(
            &a,
            3,
            "resources/subscribe",
            json!({"uri": "test://unknown"}),
        )
        .await;
    assert_eq!(e["error"]["code"], -32002);
}

#[tokio::test]
async fn catalog_changes_send_list_changed_to_open_streams() {
    let s = TestServer::start().await;
    let sid = s.initialize("2025-06-18", json!({})).await;
    let mut stream = SseReader::new(s.get_stream(&sid, None).await);
    s.engine
        .replace_catalog(
            Catalog::load(None, &mcp_daemon::runtime::Runtimes::builtin_only())
                .await
                .unwrap(),
        )
        .await;
    let mut methods = Vec::new();
    for _ in 0..3 {
        methods.push(
            stream.next(SECS5).await.unwrap().json()["method"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    methods.sort();
    assert_eq!(
        methods,
        [
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
            "notifications/tools/list_changed"
        ]
    );
    let tools = s.request(&sid, 1, "tools/list", json!({})).await["result"]["tools"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(tools, 2, "the new catalog serves the demo tools only");
}
