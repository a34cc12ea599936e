//! The command runtime with real executables behind the real sandbox launcher: JSON in and
//! out, and the deadline killing the whole process group.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_daemon::runtime::{
    CodeRef, CommandRuntime, CommandSettings, FunctionSpec, Kind, Output, ReturnType, Runtime,
};
use serde_json::{Value, json};

use crate::python_support::{LAUNCHER, call, failure, processes_with_home_under, text};

fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.to_string_lossy().into_owned()
}

fn spec(command: Vec<String>, timeout: Option<Duration>) -> FunctionSpec {
    FunctionSpec {
        kind: Kind::Tool,
        entry: "shell_tool".into(),
        code: CodeRef {
            module: "shell".into(),
            package: "shell".into(),
            source: None,
        },
        class: None,
        function: "run".into(),
        setting: json!({}),
        return_type: ReturnType::Text,
        is_async: false,
        runtime: None,
        command: Some(command),
        timeout,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_script_tool_reads_json_and_answers_json() {
    let bin = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let runtime = CommandRuntime::new(CommandSettings {
        launcher: Some(LAUNCHER.into()),
        scratch_root: scratch.path().to_path_buf(),
        ..Default::default()
    });
    // Echoes its request back: an object without content keys comes back as JSON text.
    let echo = script(bin.path(), "echo.sh", "#!/bin/sh\ncat\n");
    let f = runtime.bind(&spec(vec![echo], None)).await.unwrap();
    let out = text(call(&f, "shell_tool", json!({"sku": "A1"})).await);
    let request: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(request["kind"], "tool");
    assert_eq!(request["entry"], "shell_tool");
    assert_eq!(request["arguments"], json!({"sku": "A1"}));

    let structured = script(
        bin.path(),
        "structured.sh",
        "#!/bin/sh\necho 'working' >&2\nprintf '{\"structuredContent\": {\"n\": %s}}' \"$1\"\n",
    );
    let f = runtime
        .bind(&spec(vec![structured, "7".into()], None))
        .await
        .unwrap();
    let Ok(Output::Result(r)) = call(&f, "shell_tool", json!({})).await else {
        panic!("a result");
    };
    assert_eq!(r["structuredContent"], json!({"n": 7}));

    let failing = script(
        bin.path(),
        "fail.sh",
        "#!/bin/sh\necho 'no such sku' >&2\nexit 4\n",
    );
    let f = runtime.bind(&spec(vec![failing], None)).await.unwrap();
    let msg = failure(call(&f, "shell_tool", json!({})).await);
    assert!(msg.contains("exited with code 4: no such sku"), "{msg}");

    // The sandbox holds for commands too.
    let shadow = script(bin.path(), "shadow.sh", "#!/bin/sh\ncat /etc/shadow\n");
    let f = runtime.bind(&spec(vec![shadow], None)).await.unwrap();
    let msg = failure(call(&f, "shell_tool", json!({})).await);
    assert!(msg.contains("Permission denied"), "{msg}");

    let missing = runtime
        .bind(&spec(vec!["/no/such/program".into()], None))
        .await;
    assert!(missing.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_kills_the_command_and_what_it_started() {
    let bin = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let runtime = Arc::new(CommandRuntime::new(CommandSettings {
        launcher: Some(LAUNCHER.into()),
        scratch_root: scratch.path().to_path_buf(),
        ..Default::default()
    }));
    let slow = script(
        bin.path(),
        "slow.sh",
        "#!/bin/sh\nsleep 600 &\n(setsid sleep 600 &)\nsleep 600\n",
    );
    let f = runtime
        .bind(&spec(vec![slow], Some(Duration::from_secs(1))))
        .await
        .unwrap();
    let started = Instant::now();
    let msg = failure(call(&f, "shell_tool", json!({})).await);
    assert!(msg.contains("did not finish within 1s"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut left = processes_with_home_under(scratch.path());
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = processes_with_home_under(scratch.path());
    }
    assert!(left.is_empty(), "processes left: {left:?}");
}
