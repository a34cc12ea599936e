//! A bundle's own virtual environment: `python -m venv`, then `pip install -r requirements.txt`
//! (offline from the bundle's `wheels/` folder when it has one), within a deadline. pip and
//! the build backends it runs are the bundle author's code: they get a scrubbed environment
//! (no daemon secrets) and their whole process group is killed at the deadline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Variables pip may need (proxies, certificates, its own configuration); nothing else of the
/// daemon's environment reaches the install.
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The interpreter inside a venv folder.
pub(super) fn interpreter(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// Creates a venv at `venv` with `python` and installs `<root>/requirements.txt` into it.
/// `wheels`: install only from `<root>/wheels` (no package index). The error is the reason
/// with the tail of pip's output.
pub(super) async fn build(
    python: &Path,
    root: &Path,
    venv: &Path,
    wheels: bool,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut create = Command::new(python);
    create.arg("-m").arg("venv").arg(venv);
    run(create, root, venv, deadline, timeout, "python -m venv").await?;
    let mut pip = Command::new(interpreter(venv));
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-cache-dir",
    ]);
    pip.arg("-r").arg(root.join("requirements.txt"));
    if wheels {
        pip.arg("--no-index")
            .arg("--find-links")
            .arg(root.join("wheels"));
    }
    run(
        pip,
        root,
        venv,
        deadline,
        timeout,
        "pip install -r requirements.txt",
    )
    .await
}

async fn run(
    mut cmd: Command,
    root: &Path,
    venv: &Path,
    deadline: tokio::time::Instant,
    timeout: Duration,
    what: &str,
) -> Result<(), String> {
    cmd.env_clear();
    for (key, value) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if PASSED_THROUGH.contains(&name) || name.starts_with("PIP_") {
            cmd.env(&key, value);
        }
    }
    // pip writes nothing outside the venv being built.
    cmd.env("HOME", venv).env("PYTHONNOUSERSITE", "1");
    cmd.current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let outcome = tokio::time::timeout_at(deadline, child.wait_with_output()).await;
    // Whatever pip or a build backend left running goes with the group, also on success.
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let output = match outcome {
        Err(_) => {
            return Err(format!(
                "installing requirements.txt did not finish within {}s",
                timeout.as_secs()
            ));
        }
        Ok(Err(e)) => return Err(format!("{what} failed: {e}")),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(8)..].join("\n");
    Err(format!("{what} failed ({}): {tail}", output.status))
}
