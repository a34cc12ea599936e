//! A bundle's own virtual environment: `python -m venv`, then `pip install -r requirements.txt`
//! (offline from the bundle's `wheels/` folder when it has one), within a deadline. pip and
//! the build backends it runs are the bundle author's code: they get a scrubbed environment
//! (no daemon secrets) and their whole process group is killed at the deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::helper::{HelperError, run};

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
    let why = |e: HelperError| match e {
        HelperError::Timeout => format!(
            "installing requirements.txt did not finish within {}s",
            timeout.as_secs()
        ),
        HelperError::Failed(reason) => reason,
    };
    let mut create = Command::new(python);
    create.arg("-m").arg("venv").arg(venv);
    run(create, root, venv, deadline, "python -m venv")
        .await
        .map_err(why)?;
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
    run(pip, root, venv, deadline, "pip install -r requirements.txt")
        .await
        .map_err(why)
}
