//! `mcp-daemon user add|list|remove` on a user file, and stdio with credentials from the
//! environment, through the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}"#;

fn daemon(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-daemon"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir)
        .env("LOG_LEVEL", "warn");
    c
}

fn run(mut c: Command, stdin: &str) -> (bool, String, String) {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut add = daemon(dir.path());
    add.args(["user", "add", "dora", "--role", "ops", "--password-stdin"]);
    let (ok, out, err) = run(add, "dora-password\n");
    assert!(ok, "{out}{err}");
    let raw = std::fs::read_to_string(dir.path().join("users.json")).unwrap();
    assert!(
        !raw.contains("dora-password") && raw.contains("$2b$"),
        "only a bcrypt hash is kept"
    );
    let mut again = daemon(dir.path());
    again.args(["user", "add", "dora", "--password-stdin"]);
    let (ok, _, err) = run(again, "another-password\n");
    assert!(!ok && err.contains("already exists"), "{err}");
    let mut generated = daemon(dir.path());
    generated.args(["user", "add", "eve"]);
    let (ok, out, _) = run(generated, "");
    assert!(ok && out.contains("with the password: "), "{out}");
    let mut list = daemon(dir.path());
    list.args(["user", "list"]);
    let (_, out, _) = run(list, "");
    assert_eq!(out, "dora\tops\neve\t\n");
    let mut remove = daemon(dir.path());
    remove.args(["user", "remove", "eve"]);
    assert!(run(remove, "").0);
    let mut list = daemon(dir.path());
    list.args(["user", "list"]);
    assert_eq!(run(list, "").1, "dora\tops\n");

    // stdio takes its credentials from the environment.
    let mut stdio = daemon(dir.path());
    stdio
        .args([
            "--transport",
            "stdio",
            "--auth-provider",
            "local",
            "--admin-password",
            "admin-password-1",
        ])
        .env("MCP_USERNAME", "dora")
        .env("MCP_PASSWORD", "dora-password");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let (ok, out, err) = run(stdio, &format!("{INIT}\n{list}\n"));
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert!(v["result"]["tools"].as_array().unwrap().len() >= 2, "{v}");
    let mut wrong = daemon(dir.path());
    wrong
        .args(["--transport", "stdio", "--auth-provider", "local"])
        .env("MCP_USERNAME", "dora")
        .env("MCP_PASSWORD", "wrong-password");
    let (ok, out, err) = run(
        wrong,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n",
    );
    assert!(
        !ok && out.is_empty() && err.contains("wrong user name or password"),
        "{err}"
    );
    let mut none = daemon(dir.path());
    none.args(["--transport", "stdio", "--auth-provider", "local"]);
    let (ok, _, err) = run(none, "");
    assert!(!ok && err.contains("MCP_USERNAME"), "{err}");
}

#[test]
fn a_reachable_daemon_without_auth_settings_requires_sign_in_and_a_cluster_needs_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = daemon(dir.path());
    c.args(["--host", "0.0.0.0", "check-config"]);
    let (_, out, _) = run(c, "");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config"]["auth_provider"], Value::Null);
    assert_eq!(v["auth"], "local", "unset beyond loopback means local");
    let mut c = daemon(dir.path());
    c.args(["check-config"]);
    let v: Value = serde_json::from_str(&run(c, "").1).unwrap();
    assert_eq!(v["auth"], "none", "loopback stays a one-command demo");
    let mut cluster = daemon(dir.path());
    cluster.args([
        "--host",
        "0.0.0.0",
        "--redis-url",
        "redis://127.0.0.1:1",
        "--request-state-key",
        "0123456789abcdef0123456789abcdef",
    ]);
    let (ok, _, err) = run(cluster, "");
    assert!(!ok && err.contains("JWT_SECRET_KEY"), "{err}");
}
