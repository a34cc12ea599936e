//! A Redis Cluster losing a primary: its replica is promoted, and every node's pub/sub
//! connection (which may have been on the lost primary) follows the cluster, so cross-node
//! routing keeps working.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{McpHttp, SseReader};
use crate::nodes::{SharedRedis, three_nodes};

/// `initialize` through `node`, retried while the cluster is still failing over (503).
async fn initialize_when_ready(node: &McpHttp) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let resp = node
            .post(
                None,
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "failover", "version": "1"}}}),
            )
            .await;
        if resp.status() == 200 {
            let sid = resp.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_string();
            let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            if node.post(Some(&sid), &initialized).await.status() == 202 {
                return sid;
            }
        }
        assert!(Instant::now() < deadline, "the cluster never served again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A message logged through `from` reaches the session's GET stream held by `to`.
async fn routed(to: &McpHttp, from: &McpHttp, sid: &str, text: &str) {
    let mut get = SseReader::new(to.get_stream(sid, None).await);
    from.call_tool(sid, "testkit_session_log", json!({"message": text}))
        .await;
    let ev = get
        .next_message(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("{text:?} did not cross from one node to the other"));
    assert_eq!(ev.json()["params"]["data"], text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pub_sub_follows_the_cluster_when_the_first_seed_primary_is_lost() {
    let mut redis = SharedRedis::cluster_with_replicas();
    let nodes = three_nodes(&redis, &[]).await;
    let sid = initialize_when_ready(&nodes[0]).await;
    routed(&nodes[0], &nodes[1], &sid, "before").await;

    let seed = &mut redis.servers_mut()[0];
    let role = seed.command(&["ROLE"]).unwrap_or_default();
    assert!(
        role.contains("master"),
        "the first seed is a primary: {role}"
    );
    seed.kill();
    redis.until_ok(Duration::from_secs(40));

    // Wherever each node's pub/sub connection was (before the fix: on the first seed, always),
    // messages cross between nodes again.
    let sid = initialize_when_ready(&nodes[0]).await;
    routed(&nodes[0], &nodes[1], &sid, "after, A from B").await;
    routed(&nodes[2], &nodes[0], &sid, "after, C from A").await;
}
