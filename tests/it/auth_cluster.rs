//! Authentication across nodes on one Redis (and a Redis Cluster): a grant made through one
//! node works on all, its revocation reaches all, concurrent refreshes through two nodes both
//! succeed, and registered clients and refresh families survive restarts of every node and of
//! Redis.

use serde_json::{Value, json};

use std::time::{Duration, Instant};

use mcp_daemon::auth::users::UserDb;

use crate::auth::{OAuth, REDIRECT, V, access, consent_form, param, pkce, query_of};
use crate::nodes::{Node, SharedRedis};

const JWT_KEY: &str = "cluster-test-jwt-signing-key-0123456789abcdef";
/// What clients use in front of the nodes; every node issues and accepts tokens for it.
const PUBLIC: &str = "http://mcp.test";

async fn auth_nodes(redis: &SharedRedis, data: &std::path::Path, n: usize) -> Vec<Node> {
    let dir = data.to_str().unwrap();
    let env = [
        ("AUTH_PROVIDER", "local"),
        ("JWT_SECRET_KEY", JWT_KEY),
        ("DATA_DIR", dir),
        ("ADMIN_PASSWORD", "admin-password-1"),
        ("OAUTH_TEST_USER", "admin"),
        ("PUBLIC_URL", PUBLIC),
    ];
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Node::start(redis, &env).await);
    }
    nodes
}

async fn status_with(node: &Node, token: &str) -> u16 {
    let r = node
        .with_token(token)
        .post(None, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": V, "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}))
        .await;
    r.status().as_u16()
}

async fn grant_works_everywhere_and_revocation_reaches_every_node(redis: SharedRedis) {
    let data = tempfile::tempdir().unwrap();
    let nodes = auth_nodes(&redis, data.path(), 3).await;
    let [a, b, c] = [0, 1, 2].map(|i| OAuth::with_issuer(&nodes[i].base, PUBLIC));
    let client = a.register(REDIRECT).await;
    let p = pkce();
    let code = b.code(&client, &p, &[]).await; // a client registered on A is known on B
    let r = c.exchange(&client, &code, &p.verifier).await;
    assert_eq!(r.status(), 200, "a code issued on B is redeemed on C");
    let t: Value = r.json().await.unwrap();
    for n in &nodes {
        assert_eq!(status_with(n, access(&t)).await, 200);
    }
    let again = a.exchange(&client, &code, &p.verifier).await;
    assert_eq!(again.status(), 400, "single use across nodes");
    // Concurrent refreshes of one token through two nodes both succeed.
    let rt = t["refresh_token"].as_str().unwrap();
    let (x, y) = tokio::join!(a.refresh(&client, rt), c.refresh(&client, rt));
    assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
    let (x, y): (Value, Value) = (x.json().await.unwrap(), y.json().await.unwrap());
    assert_eq!(x["refresh_token"], y["refresh_token"]);
    // A revocation through A is refused by every node.
    let rev = a.revoke(&client, access(&x)).await;
    assert_eq!(rev.status(), 200);
    for n in &nodes {
        assert_eq!(
            status_with(n, access(&x)).await,
            401,
            "revoked on every node"
        );
        assert_eq!(status_with(n, access(&y)).await, 200, "only that token");
    }
}

#[tokio::test]
async fn on_one_redis_a_grant_works_on_every_node_and_revocation_reaches_them_all() {
    grant_works_everywhere_and_revocation_reaches_every_node(SharedRedis::single()).await;
}

#[tokio::test]
async fn on_a_redis_cluster_a_grant_works_on_every_node_and_revocation_reaches_them_all() {
    grant_works_everywhere_and_revocation_reaches_every_node(SharedRedis::cluster()).await;
}

#[tokio::test]
async fn clients_and_refresh_families_survive_restarts_of_every_node_and_of_redis() {
    let mut redis = SharedRedis::durable();
    let data = tempfile::tempdir().unwrap();
    let mut nodes = auth_nodes(&redis, data.path(), 2).await;
    let o = OAuth::with_issuer(&nodes[0].base, PUBLIC);
    let (client, t) = o.sign_in(&[]).await;
    for n in &mut nodes {
        n.kill();
    }
    // A real restart: the old process is gone and a new one (new pid, new run_id) serves what
    // it read back from the AOF.
    let (old_pid, old_run) = (redis.single_server().pid(), redis.single_server().run_id());
    redis.single_server().restart();
    assert_ne!(redis.single_server().pid(), old_pid);
    assert_ne!(redis.single_server().run_id(), old_run);
    assert!(
        old_pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()),
        "the old redis-server still runs"
    );
    drop(nodes);
    let nodes = auth_nodes(&redis, data.path(), 2).await;
    let o2 = OAuth::with_issuer(&nodes[1].base, PUBLIC);
    let r = o2
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        r.status(),
        200,
        "the refresh family survived: {:?}",
        r.text().await
    );
    let fresh = OAuth::with_issuer(&nodes[0].base, PUBLIC);
    let p = pkce();
    let r = fresh.authorize(&client, &p, &[]).await;
    assert_eq!(r.status(), 302, "the registered client survived");
    // Presented again within the grace window, the pre-restart token counts as a concurrent
    // refresh (the rotation state came back with Redis).
    let reuse = o2
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(reuse.status(), 200, "within the grace window");
}

#[tokio::test]
async fn across_nodes_sign_in_tokens_are_revoked_removed_users_refused_and_consent_is_single_use() {
    let redis = SharedRedis::single();
    let data = tempfile::tempdir().unwrap();
    UserDb::open(&data.path().join("users.json"), 4)
        .unwrap()
        .add("dora", "dora-password", &[])
        .unwrap();
    let dir = data.path().to_str().unwrap();
    let env = [
        ("AUTH_PROVIDER", "local"),
        ("JWT_SECRET_KEY", JWT_KEY),
        ("DATA_DIR", dir),
        ("ADMIN_PASSWORD", "admin-password-1"),
        ("PUBLIC_URL", PUBLIC),
    ];
    let nodes = crate::nodes::three_nodes(&redis, &env).await;
    let [a, b, c] = [0, 1, 2].map(|i| OAuth::with_issuer(&nodes[i].base, PUBLIC));

    // An /auth/login token revoked through one node is refused by all.
    let t = a.login("dora", "dora-password").await;
    for n in &nodes {
        assert_eq!(status_with(n, &t).await, 200);
    }
    assert_eq!(b.revoke("auth-login", &t).await.status(), 200);
    for n in &nodes {
        assert_eq!(status_with(n, &t).await, 401, "revoked on every node");
    }

    // `mcp-daemon user remove` ends the user's tokens on every node within seconds.
    let t = c.login("dora", "dora-password").await;
    for n in &nodes {
        assert_eq!(status_with(n, &t).await, 200);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-daemon"))
        .env_clear()
        .env("DATA_DIR", dir)
        .env("LOG_LEVEL", "warn")
        .args(["user", "remove", "dora"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &nodes {
        while status_with(n, &t).await != 401 {
            assert!(Instant::now() < deadline, "a node still accepts the token");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A consent form shown by A and approved through B cannot be approved again anywhere.
    let client = a.register(REDIRECT).await;
    let p = pkce();
    let form = consent_form(&a, &client, &p, "admin", "admin-password-1").await;
    let ok = form.post(&b, "approve").await;
    assert_eq!(ok.status(), 303);
    let code = param(
        &query_of(ok.headers()["location"].to_str().unwrap()),
        "code",
    )
    .unwrap()
    .to_string();
    let (x, y) = tokio::join!(form.post(&c, "approve"), form.post(&a, "approve"));
    assert_eq!((x.status().as_u16(), y.status().as_u16()), (400, 400));
    assert_eq!(c.exchange(&client, &code, &p.verifier).await.status(), 200);
}
