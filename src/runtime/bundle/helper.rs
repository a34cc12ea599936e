//! Running a helper program on a bundle being installed (`python -m venv`, pip, compileall):
//! the bundle author's code or input, so it gets a scrubbed environment (no daemon secrets, a
//! `HOME` of its own), its own process group, and a deadline past which the whole group is
//! killed. Whatever it left running goes with the group, also on success.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// Variables pip may need (proxies, certificates, its own configuration); nothing else of the
/// daemon's environment reaches a helper.
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

/// Why a helper did not succeed.
#[derive(Debug)]
pub(super) enum HelperError {
    /// The deadline passed (the group was killed).
    Timeout,
    /// It could not start or exited with a failure: what, with the tail of its output.
    Failed(String),
}

/// Runs `cmd` (called `what` in errors) in `dir` with `home` as its `HOME`, until `deadline`.
pub(super) async fn run(
    mut cmd: Command,
    dir: &Path,
    home: &Path,
    deadline: tokio::time::Instant,
    what: &str,
) -> Result<(), HelperError> {
    cmd.env_clear();
    for (key, value) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if PASSED_THROUGH.contains(&name) || name.starts_with("PIP_") {
            cmd.env(&key, value);
        }
    }
    cmd.env("HOME", home).env("PYTHONNOUSERSITE", "1");
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| HelperError::Failed(format!("cannot start {what}: {e}")))?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let outcome = tokio::time::timeout_at(deadline, child.wait_with_output()).await;
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let output = match outcome {
        Err(_) => return Err(HelperError::Timeout),
        Ok(Err(e)) => return Err(HelperError::Failed(format!("{what} failed: {e}"))),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(8)..].join("\n");
    Err(HelperError::Failed(format!(
        "{what} failed ({}): {tail}",
        output.status
    )))
}
