//! A bundle's Python sources compiled to bytecode once per version, before the version is
//! swapped in. Its workers cannot write `__pycache__` (their view of the bundle is read-only),
//! so without this every new worker compiles every module it imports again: about 150 ms for
//! a vendored `requests` on this machine (docs/PERFORMANCE.md). `compileall` parses and
//! compiles; it runs none of the bundle's code. A file that does not compile (Python 2 code in
//! a vendored test folder, say) is left as it is: importing it fails as it would have anyway,
//! and the rest of the bundle is served, so this step never refuses a bundle.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::helper::{HelperError, run};

/// Compiles the sources under `root` with `python` (the interpreter its workers run, so the
/// bytecode's tag is theirs); logs and goes on when that fails or takes longer than `timeout`.
pub(super) async fn precompile(python: &Path, root: &Path, location: &str, timeout: Duration) {
    let mut cmd = Command::new(python);
    // -I -S: no environment variables, user site or `.pth` file of the interpreter's own
    // site-packages runs here, outside the sandbox.
    cmd.args(["-I", "-S", "-m", "compileall", "-q"]).arg(root);
    let deadline = tokio::time::Instant::now() + timeout;
    match run(cmd, root, root, deadline, "python -m compileall").await {
        Ok(()) => {}
        Err(HelperError::Timeout) => tracing::warn!(
            bundle = %location,
            "compiling the bundle's sources took over {}s; its workers compile what they import",
            timeout.as_secs()
        ),
        Err(HelperError::Failed(reason)) => tracing::warn!(
            bundle = %location,
            "some of the bundle's sources do not compile (importing them will fail): {reason}"
        ),
    }
}
