//! Several real `mcp-daemon` processes sharing one Redis (or one Redis Cluster), as operators
//! run them behind a load balancer. Each node is the release binary with its own port.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{INTEGRATION, McpHttp};

#[path = "../support/redis_server.rs"]
mod redis_server;
pub use redis_server::{RedisServer, free_port};

/// The same for every node, so `requestState` sealed by one opens on another.
pub const STATE_KEY: &str = "cluster-test-request-state-key-0123456789";

/// Redis as the nodes see it: one server, or a cluster of three masters.
pub enum SharedRedis {
    Single(RedisServer),
    Cluster(Vec<RedisServer>),
}

impl SharedRedis {
    pub fn single() -> Self {
        Self::Single(RedisServer::start())
    }

    /// A single throwaway Redis started with extra `redis-server` arguments.
    pub fn single_with(extra: &[&str]) -> Self {
        let mut args = vec!["--save", "", "--appendonly", "no"];
        args.extend_from_slice(extra);
        Self::Single(RedisServer::start_with(&args))
    }

    /// A single Redis with AOF fsynced on every write, for restart tests.
    pub fn durable() -> Self {
        Self::Single(RedisServer::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]))
    }

    /// Three masters on loopback ports, joined with `redis-cli --cluster create`.
    pub fn cluster() -> Self {
        Self::cluster_of(3, 0)
    }

    /// Three primaries, each with a replica that has finished its first sync, so the loss of
    /// a primary is followed by its replica's promotion (about two node timeouts).
    pub fn cluster_with_replicas() -> Self {
        let cluster = Self::cluster_of(6, 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.servers().iter().all(|s| {
            s.info_field("replication", "role").as_deref() == Some("master")
                || s.info_field("replication", "master_link_status").as_deref() == Some("up")
        }) {
            assert!(Instant::now() < deadline, "replicas did not sync");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn cluster_of(count: usize, replicas: usize) -> Self {
        let servers: Vec<RedisServer> = (0..count)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    // A replica syncs at once (no 5 s wait for more replicas) and may take
                    // over however long it has been cut off: the tests kill primaries.
                    "--repl-diskless-sync-delay",
                    "0",
                    "--cluster-replica-validity-factor",
                    "0",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
            })
            .collect();
        let addrs: Vec<String> = servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli on PATH");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self::Cluster(servers);
        cluster.until_ok(Duration::from_secs(30));
        cluster
    }

    /// Waits until every running server of the cluster reports `cluster_state:ok`.
    pub fn until_ok(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.servers().iter().filter(|s| s.running()).all(|s| {
            s.command(&["CLUSTER", "INFO"])
                .is_some_and(|i| i.contains("cluster_state:ok"))
        }) {
            assert!(Instant::now() < deadline, "cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        match self {
            Self::Single(s) => s.url(),
            Self::Cluster(servers) => servers
                .iter()
                .map(RedisServer::url)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub fn servers(&self) -> Vec<&RedisServer> {
        match self {
            Self::Single(s) => vec![s],
            Self::Cluster(servers) => servers.iter().collect(),
        }
    }

    /// Keys across every server.
    pub fn key_count(&self) -> u64 {
        self.servers().iter().map(|s| s.dbsize()).sum()
    }

    pub fn servers_mut(&mut self) -> Vec<&mut RedisServer> {
        match self {
            Self::Single(s) => vec![s],
            Self::Cluster(servers) => servers.iter_mut().collect(),
        }
    }

    pub fn single_server(&mut self) -> &mut RedisServer {
        match self {
            Self::Single(s) => s,
            Self::Cluster(_) => panic!("not a single Redis"),
        }
    }
}

/// One daemon process.
pub struct Node {
    pub client: McpHttp,
    child: Option<Child>,
    pub log: std::path::PathBuf,
}

impl std::ops::Deref for Node {
    type Target = McpHttp;
    fn deref(&self) -> &McpHttp {
        &self.client
    }
}

impl Node {
    pub async fn start(redis: &SharedRedis, env: &[(&str, &str)]) -> Self {
        Self::start_with_config(redis, std::path::Path::new(INTEGRATION), env).await
    }

    /// A node serving the MCP config file at `config`.
    pub async fn start_with_config(
        redis: &SharedRedis,
        config: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        let mut node = Self::spawn(redis, config, env);
        assert!(
            node.until_listening().await,
            "node did not start: {}",
            std::fs::read_to_string(&node.log).unwrap_or_default()
        );
        node
    }

    /// A node that may refuse to start: returns once it listens or has exited.
    pub async fn try_start(redis: &SharedRedis, env: &[(&str, &str)]) -> Self {
        let mut node = Self::spawn(redis, std::path::Path::new(INTEGRATION), env);
        node.until_listening().await;
        node
    }

    fn spawn(redis: &SharedRedis, config: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("mcp-node-{}-{port}.log", std::process::id()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-daemon"));
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--config")
            .arg(config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REDIS_URL", redis.url())
            .env("REQUEST_STATE_KEY", STATE_KEY)
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if redis.is_cluster() {
            cmd.env("REDIS_CLUSTER", "true");
        }
        // scripts/test.sh finds what its run left running by this marker.
        if let Ok(run) = std::env::var("MCP_TEST_RUN") {
            cmd.env("MCP_TEST_RUN", run);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Self {
            client: McpHttp::new(format!("http://127.0.0.1:{port}")),
            child: Some(child),
            log,
        }
    }

    /// Waits (up to 20 s) until the node answers `/health`: `false` if it exited or never did.
    async fn until_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && self.alive() {
            if let Ok(r) = self.http.get(self.url("/health")).send().await
                && r.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// `kill -9`: no goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (e.g. `HUP`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running node").id();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {pid} failed");
    }

    /// Waits up to `limit` for the process to exit; its exit status, or `None` if it still runs.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Three nodes on one shared Redis.
pub async fn three_nodes(redis: &SharedRedis, env: &[(&str, &str)]) -> [Node; 3] {
    [
        Node::start(redis, env).await,
        Node::start(redis, env).await,
        Node::start(redis, env).await,
    ]
}
