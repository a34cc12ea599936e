//! Signals sent to running nodes: SIGHUP reloads the config file on every node of a cluster,
//! and SIGTERM ends a node within a bounded time even with open streams and calls in flight.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{INTEGRATION, SseReader, wait_until};
use crate::nodes::{Node, SharedRedis};

/// A copy of the integration config that a test may edit, and the tool it adds.
fn editable_config() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.json");
    std::fs::copy(INTEGRATION, &path).unwrap();
    (dir, path)
}

/// Adds a tool `reloaded_hello` (the builtin `hello` under another name) to the config file.
fn add_tool(path: &std::path::Path) {
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tools = config["tools"]["tools"].as_array_mut().unwrap();
    let mut hello = tools.iter().find(|t| t["name"] == "hello").unwrap().clone();
    hello["name"] = json!("reloaded_hello");
    tools.push(hello);
    let modules = config["tools"]["tool_modules"].as_array_mut().unwrap();
    let mut module = modules
        .iter()
        .find(|m| m["name"] == "hello")
        .unwrap()
        .clone();
    module["name"] = json!("reloaded_hello");
    modules.push(module);
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

async fn tool_names(node: &Node, sid: &str) -> Vec<String> {
    let listed = node.request(sid, 90, "tools/list", json!({})).await;
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_on_one_node_reloads_every_node_and_each_client_hears_once() {
    let redis = SharedRedis::single();
    let (_dir, path) = editable_config();
    let nodes = [
        Node::start_with_config(&redis, &path, &[]).await,
        Node::start_with_config(&redis, &path, &[]).await,
        Node::start_with_config(&redis, &path, &[]).await,
    ];
    let mut streams = Vec::new();
    let mut sessions = Vec::new();
    for node in &nodes {
        let sid = node.initialize("2025-11-25", json!({})).await;
        assert!(
            !tool_names(node, &sid)
                .await
                .contains(&"reloaded_hello".into())
        );
        streams.push(SseReader::new(node.get_stream(&sid, None).await));
        sessions.push(sid);
    }

    add_tool(&path);
    nodes[1].signal("HUP");

    for (i, stream) in streams.iter_mut().enumerate() {
        let note = stream
            .next_message(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("the client on node {i} was not told"));
        assert_eq!(note.json()["method"], "notifications/tools/list_changed");
        // The node that told its client already serves the new list.
        assert!(
            tool_names(&nodes[i], &sessions[i])
                .await
                .contains(&"reloaded_hello".into()),
            "node {i} announced a list it does not serve yet"
        );
    }
    // Every node reloads its own file (each on its own time).
    for (node, sid) in nodes.iter().zip(&sessions) {
        wait_until("every node serves the new list", || async {
            tool_names(node, sid)
                .await
                .contains(&"reloaded_hello".into())
        })
        .await;
    }
    let call = nodes[2]
        .call_tool(&sessions[2], "reloaded_hello", json!({"name": "HUP"}))
        .await;
    assert_eq!(call["content"][0]["text"], "Hello, HUP!", "{call}");
    // One announcement per client, not one per node: nothing more arrives on any stream.
    for stream in &mut streams {
        if let Some(extra) = stream.next_message(Duration::from_secs(1)).await {
            panic!("a second announcement: {:?}", extra.json());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_config_that_no_longer_loads_keeps_every_node_serving_the_old_one() {
    let redis = SharedRedis::single();
    let (_dir, path) = editable_config();
    let nodes = [
        Node::start_with_config(&redis, &path, &[]).await,
        Node::start_with_config(&redis, &path, &[]).await,
    ];
    let sid = nodes[0].initialize("2025-11-25", json!({})).await;
    let before = tool_names(&nodes[0], &sid).await;
    let mut stream = SseReader::new(nodes[1].get_stream(&sid, None).await);
    std::fs::write(&path, b"{ not json").unwrap();
    nodes[0].signal("HUP");
    assert!(
        stream.next_message(Duration::from_secs(2)).await.is_none(),
        "a failed reload announces nothing"
    );
    for node in &nodes {
        assert_eq!(tool_names(node, &sid).await, before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_a_call_in_flight_finish_and_exits_despite_open_streams() {
    let redis = SharedRedis::single();
    let mut node = Node::start(&redis, &[("SHUTDOWN_GRACE_SECS", "4")]).await;
    let sid = node.initialize("2025-11-25", json!({})).await;
    let _held_open = SseReader::new(node.get_stream(&sid, None).await);
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "testkit_sleep", "arguments": {"ms": 2000, "steps": 4},
        "_meta": {"progressToken": "p"}}});
    let mut running = SseReader::new(node.post(Some(&sid), &call).await);
    let first = running.until_method("notifications/progress").await;
    assert_eq!(first["params"]["progressToken"], "p", "the call is running");

    let stopped_at = std::time::Instant::now();
    node.signal("TERM");
    let rest = running
        .until_response(&json!(7), Duration::from_secs(10))
        .await;
    let answer = rest.last().unwrap().json();
    assert_eq!(
        answer["result"]["content"][0]["text"], "slept 2000 ms",
        "{answer}"
    );
    let status = node
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the node exits although a GET stream is still open");
    assert!(status.success(), "{status:?}");
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(1),
        "it waited for the call in flight"
    );
    assert!(
        std::fs::read_to_string(&node.log)
            .unwrap()
            .contains("shutdown grace period over"),
        "the open stream was cut at the end of the grace period"
    );
}

/// Runs the daemon against `redis` until it is listening or exits; `Ok(log)` once listening
/// (the process is then killed), `Err(log)` when it exited first.
async fn start_up(redis: &SharedRedis, env: &[(&str, &str)]) -> Result<String, String> {
    let mut node = Node::try_start(redis, env).await;
    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
    if node.alive() { Ok(log) } else { Err(log) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_security_state_is_refused_at_start_up() {
    let lru =
        SharedRedis::single_with(&["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]);
    let refused = start_up(&lru, &[])
        .await
        .expect_err("volatile-lru is refused");
    assert!(
        refused.contains("maxmemory-policy volatile-lru") && refused.contains("noeviction"),
        "the refusal names the policy and the fix: {refused}"
    );
    let warned = start_up(&lru, &[("REDIS_EVICTION_CHECK", "warn")])
        .await
        .expect("REDIS_EVICTION_CHECK=warn starts anyway");
    assert!(warned.contains("volatile-lru"), "and says why: {warned}");

    // The shipped redis.conf passes, with a memory limit set.
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/redis/redis.conf");
    let shipped = SharedRedis::single_with(&["--include", conf, "--maxmemory", "64mb"]);
    let log = start_up(&shipped, &[])
        .await
        .expect("the shipped redis.conf is accepted");
    assert!(!log.contains("maxmemory-policy"), "{log}");
}
