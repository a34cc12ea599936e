//! Redis Cluster primary loss. Each node's pub/sub connection (cross-node routing of
//! notifications, answers and cancellations) goes to one cluster node; when that node dies the
//! connection must move to one the cluster reports alive, not retry the dead one forever.

use serde_json::{Value, json};

use crate::harness::*;
use crate::nodes::{Node, RedisServer, SharedRedis};

/// The servers holding a pub/sub connection (a client with flag `P`).
fn pubsub_hosts(redis: &SharedRedis) -> Vec<usize> {
    redis
        .servers()
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.command(&["CLIENT", "LIST"]).is_some_and(|list| {
                list.lines().any(|l| {
                    l.split_whitespace()
                        .any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('P')))
                })
            })
        })
        .map(|(i, _)| i)
        .collect()
}

fn node_id(server: &RedisServer) -> String {
    let reply = server.command(&["CLUSTER", "MYID"]).expect("CLUSTER MYID");
    reply.lines().nth(1).expect("an id").trim().to_string()
}

/// The index of the server that replicates `primary`, once the cluster says so (right after
/// a manual failover the old primary is still becoming the replica).
fn replica_of(redis: &SharedRedis, primary: usize) -> Option<usize> {
    let servers = redis.servers();
    let id = node_id(servers[primary]);
    let nodes = servers[primary]
        .command(&["CLUSTER", "NODES"])
        .expect("CLUSTER NODES");
    let port: u16 = nodes.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3 && f[2].contains("slave") && f[3] == id).then(|| {
            let addr = f[1].split('@').next()?;
            addr.rsplit_once(':')?.1.parse().ok()
        })?
    })?;
    let heir = servers.iter().position(|s| s.port == port)?;
    // The replica must agree: it has a link to this primary.
    (servers[heir]
        .info_field("replication", "master_link_status")
        .as_deref()
        == Some("up"))
    .then_some(heir)
}

fn role(server: &RedisServer) -> Option<String> {
    server.info_field("replication", "role")
}

/// A session on `listener` with its GET stream open, once the cluster serves requests again.
async fn listening_session(listener: &Node) -> (String, SseReader) {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "it", "version": "1"}}});
    wait_until("the node serves initialize again", || async {
        listener.post(None, &init).await.status() == 200
    })
    .await;
    let sid = listener.initialize("2025-11-25", json!({})).await;
    let get = SseReader::new(listener.get_stream(&sid, None).await);
    (sid, get)
}

/// `speaker` logs `text` to the session; the stream on the other node must carry it.
async fn hears(get: &mut SseReader, speaker: &Node, sid: &str, text: &str) {
    speaker
        .call_tool(sid, "testkit_session_log", json!({"message": text}))
        .await;
    loop {
        let m: Value = get
            .next_message(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("{text:?} never reached the other node"))
            .json();
        if m["params"]["data"] == text {
            return;
        }
    }
}

#[tokio::test]
async fn cross_node_routing_survives_the_loss_of_the_primary_holding_pubsub() {
    let mut redis = SharedRedis::cluster_with_replicas();
    let a = Node::start(&redis, &[]).await;
    let b = Node::start(&redis, &[]).await;

    let (sid_a, mut get_a) = listening_session(&a).await;
    let (sid_b, mut get_b) = listening_session(&b).await;
    hears(&mut get_a, &b, &sid_a, "before, B to A").await;
    hears(&mut get_b, &a, &sid_b, "before, A to B").await;

    // The victim: a server holding a pub/sub connection, made a primary if it is a replica.
    let victim = *pubsub_hosts(&redis)
        .first()
        .expect("a node's pub/sub connection");
    if role(redis.servers()[victim]).as_deref() != Some("master") {
        let ok = redis.servers()[victim].command(&["CLUSTER", "FAILOVER"]);
        assert!(ok.is_some_and(|r| r.starts_with("+OK")), "manual failover");
        wait_until("the manual failover", || async {
            role(redis.servers()[victim]).as_deref() == Some("master")
        })
        .await;
        redis.until_ok(PATIENCE);
    }
    wait_until("the victim has a synced replica", || async {
        replica_of(&redis, victim).is_some()
    })
    .await;
    let heir = replica_of(&redis, victim).expect("a replica");
    // Everything written so far has reached the replica, so the sessions survive the loss.
    wait_until("the replica catches up", || async {
        let servers = redis.servers();
        let at = |s: &RedisServer| s.info_field("replication", "master_repl_offset");
        at(servers[victim]).is_some() && at(servers[victim]) == at(servers[heir])
    })
    .await;

    redis.servers_mut()[victim].kill();
    let started = std::time::Instant::now();
    wait_until("the replica is promoted", || async {
        role(redis.servers()[heir]).as_deref() == Some("master")
    })
    .await;
    redis.until_ok(PATIENCE);
    eprintln!("replica promoted {:?} after the kill", started.elapsed());

    for (node, sid) in [(&a, &sid_a), (&b, &sid_b), (&a, &sid_b), (&b, &sid_a)] {
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        wait_until("the session is served again", || async {
            node.post(Some(sid), &ping).await.status() == 200
        })
        .await;
    }
    // The streams opened before the loss carry messages again, both ways ...
    hears(&mut get_a, &b, &sid_a, "after, B to A").await;
    hears(&mut get_b, &a, &sid_b, "after, A to B").await;
    // ... and so do new sessions.
    let (sid, mut get) = listening_session(&a).await;
    hears(&mut get, &b, &sid, "new session, B to A").await;
    let (sid, mut get) = listening_session(&b).await;
    hears(&mut get, &a, &sid, "new session, A to B").await;
    assert!(
        pubsub_hosts(&redis).iter().all(|&i| i != victim),
        "no pub/sub connection on the dead node"
    );
}
