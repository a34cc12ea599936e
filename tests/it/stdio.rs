//! stdio, in-process over pipes and as the real binary.

use std::process::Stdio;
use std::sync::Arc;

use mcp_daemon::app;
use mcp_daemon::clock::SystemClock;
use mcp_daemon::transport::stdio;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;

#[tokio::test]
async fn in_process_round_trip_with_progress_and_notifications() {
    let engine = app::build_engine(&integration_config(), Arc::new(SystemClock))
        .await
        .unwrap();
    let (client_in, server_in) = tokio::io::duplex(64 * 1024);
    let (server_out, client_out) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(stdio::serve(
        engine,
        mcp_daemon::auth::Principal::anonymous(),
        server_in,
        server_out,
        1 << 20,
        64,
    ));
    let mut w = client_in;
    let mut lines = BufReader::new(client_out).lines();
    let mut send = async |v: Value| {
        w.write_all(format!("{v}\n").as_bytes()).await.unwrap();
    };
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize first")
    );

    send(json!({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "test_tool_with_progress", "_meta": {"progressToken": "s"}}})).await;
    let mut progress = 0;
    loop {
        let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        if v["method"] == "notifications/progress" {
            progress += 1;
        } else {
            assert_eq!(v["id"], 3);
            break;
        }
    }
    assert_eq!(progress, 3);
    send(json!({"jsonrpc": "2.0", "id": 4, "method": "resources/subscribe", "params": {"uri": "test://watched-resource"}})).await;
    lines.next_line().await.unwrap().unwrap();
    send(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "testkit_notify_resource", "arguments": {"uri": "test://watched-resource"}}})).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            serde_json::from_str::<Value>(&lines.next_line().await.unwrap().unwrap()).unwrap(),
        );
    }
    assert!(
        got.iter()
            .any(|m| m["method"] == "notifications/resources/updated"),
        "{got:?}"
    );
    send(Value::String("garbage".into())).await;
    w.write_all(b"{oops\n").await.unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["error"]["code"], -32600);
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["error"]["code"], -32700);
    drop(w);
    tokio::time::timeout(SECS5, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_binary_speaks_only_protocol_on_stdout_and_exits_on_eof() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-daemon"))
        .args(["--transport", "stdio", "--log-level", "debug"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "hello", "arguments": {}}});
    stdin
        .write_all(format!("{init}\n{call}\n").as_bytes())
        .await
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&out.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(first["id"], 1);
    let second: Value = serde_json::from_str(&out.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(second["result"]["content"][0]["text"], "Hello, World!");
    drop(stdin);
    let status = tokio::time::timeout(SECS5, child.wait())
        .await
        .expect("exits when stdin closes")
        .unwrap();
    assert!(status.success());
    assert!(
        out.next_line().await.unwrap().is_none(),
        "nothing else on stdout"
    );
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
        .await
        .unwrap();
    assert!(
        err.contains("serving MCP on stdio"),
        "logs go to stderr: {err}"
    );
}
