//! A bundle replaced in S3 while calls run, on three daemon processes behind one Redis: the
//! calls in progress finish on the old code (its files still there), every node's new calls
//! get the new code within the check interval, no node ever goes back to the old one, and the
//! old version's workers stop once their calls end.
//!
//! The calls are held open by an elicitation: each `hold` call asks the client a question and
//! waits for the answer, which the test sends only after the new version serves everywhere. So
//! the overlap is certain, not a matter of sleeping long enough.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_daemon::blob::BlobStore;
use serde_json::{Value, json};

use crate::bundle_kit::{moto_store, zip_of};
use crate::harness::*;
use crate::moto;
use crate::nodes::{Node, SharedRedis};

const BUCKET: &str = "rollout-bundles";

/// The module: `version()` answers the code's version; `hold()` reports its version and pid in
/// an elicitation, waits for the answer, then reads a file of its own bundle.
fn rollout_zip(version: &str) -> Bytes {
    let init = format!(
        r#"import os
from mcp_daemon import Context

VERSION = {version:?}


class Rollout:
    def __init__(self, logger, **setting):
        self.logger = logger

    def version(self):
        return VERSION

    def hold(self, ctx: Context):
        answer = ctx.elicit(f"holding {{VERSION}} in {{os.getpid()}}",
                            {{"type": "object", "properties": {{}}}})
        with open(os.path.join(os.path.dirname(__file__), "data.txt")) as f:
            data = f.read().strip()
        return f"{{VERSION}} {{data}} {{answer.get('action')}}"
"#
    );
    let data = format!("data of {version}\n");
    zip_of(&[
        ("rollout/", b"", 0o755),
        ("rollout/__init__.py", init.as_bytes(), 0o644),
        ("rollout/data.txt", data.as_bytes(), 0o644),
    ])
}

fn config() -> Value {
    let link = |name: &str| {
        json!({"type": "tool", "name": name, "module_name": "rollout", "class_name": "Rollout",
               "function_name": name, "return_type": "text"})
    };
    let schema = json!({"type": "object", "properties": {}});
    json!({
        "tools": [
            {"name": "version", "description": "The code's version", "inputSchema": schema},
            {"name": "hold", "description": "Waits for the client", "inputSchema": schema},
        ],
        "resources": [], "prompts": [],
        "module_links": [link("version"), link("hold")],
        "modules": [{"package_name": "rollout", "module_name": "rollout",
                     "class_name": "Rollout", "setting": {}, "source": "s3"}],
    })
}

async fn node(redis: &SharedRedis, server: &moto::MotoServer, dir: &Path, config: &Path) -> Node {
    let at = |p: &str| dir.join(p).display().to_string();
    let endpoint = server.endpoint();
    Node::start_with_config(
        redis,
        config,
        &[
            ("FUNCT_BUCKET_NAME", BUCKET),
            ("AWS_ENDPOINT_URL_S3", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("BUNDLE_CHECK_SECS", "1"),
            ("FUNCT_ZIP_PATH", &at("zips")),
            ("FUNCT_EXTRACT_PATH", &at("functs")),
            ("WORKER_SCRATCH_DIR", &at("work")),
            // Long enough that only retirement can explain an old worker's end.
            ("WORKER_IDLE_SECS", "600"),
            ("FUNCTION_TIMEOUT_SECS", "120"),
        ],
    )
    .await
}

fn call(id: i64, name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": {}}})
}

/// The text of a `version` call on `n`.
async fn version_on(n: &Node, sid: &str) -> String {
    let r = n.call_tool(sid, "version", json!({})).await;
    assert_ne!(r["isError"], true, "{r}");
    r["content"][0]["text"].as_str().unwrap().to_string()
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        !matches!(state, Some("Z") | Some("X") | None)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_replaced_in_s3_while_calls_run_rolls_out_on_every_node() {
    let server = moto::MotoServer::start();
    let store = moto_store(&server, BUCKET).await;
    store.put("rollout.zip", rollout_zip("v1")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("rollout.json");
    std::fs::write(&config_file, config().to_string()).unwrap();
    let redis = SharedRedis::single();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let own = dir.path().join(format!("node{i}"));
        nodes.push(node(&redis, &server, &own, &config_file).await);
    }
    let sid = nodes[0]
        .initialize("2025-11-25", json!({"elicitation": {}}))
        .await;
    for n in &nodes {
        assert_eq!(version_on(n, &sid).await, "v1");
    }

    // One call held open on each node, running v1.
    let mut held = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let id = 100 + i as i64;
        let resp = n.post(Some(&sid), &call(id, "hold")).await;
        assert_eq!(resp.status(), 200);
        let mut stream = SseReader::new(resp);
        let ask = tokio::time::timeout(PATIENCE, stream.until_method("elicitation/create"))
            .await
            .expect("the held call asks the client");
        let message = ask["params"]["message"].as_str().unwrap().to_string();
        let pid: i32 = message
            .strip_prefix("holding v1 in ")
            .unwrap_or_else(|| panic!("node {i} holds old code: {message}"))
            .parse()
            .unwrap();
        held.push((id, ask["id"].clone(), stream, pid));
    }

    store.put("rollout.zip", rollout_zip("v2")).await.unwrap();
    let replaced = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        loop {
            let v = version_on(n, &sid).await;
            if v == "v2" {
                break;
            }
            assert_eq!(v, "v1", "node {i}");
            assert!(
                replaced.elapsed() < Duration::from_secs(30),
                "node {i} still serves v1 30 s after the replacement"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Never back: every node serves v2 from now on.
    for n in &nodes {
        for _ in 0..3 {
            assert_eq!(version_on(n, &sid).await, "v2");
        }
    }

    // The held calls, answered now, finish on v1 with v1's own files.
    for ((id, ask_id, mut stream, pid), n) in held.into_iter().zip(&nodes) {
        assert!(pid_alive(pid), "the v1 worker {pid} runs its call");
        let answer = json!({"jsonrpc": "2.0", "id": ask_id,
                            "result": {"action": "accept", "content": {}}});
        assert_eq!(n.post(Some(&sid), &answer).await.status(), 202);
        let events = stream.until_response(&json!(id), PATIENCE).await;
        let done = events.last().unwrap().json();
        assert_eq!(
            done["result"]["content"][0]["text"], "v1 data of v1 accept",
            "{done}"
        );
        // Its pool was retired by v2's: the worker stops with its call, not 600 s later.
        wait_until("the v1 worker stops after its call", || async {
            !pid_alive(pid)
        })
        .await;
    }
    for n in &nodes {
        assert_eq!(version_on(n, &sid).await, "v2");
    }
}
