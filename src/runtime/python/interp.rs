//! Finding out about an interpreter once: its real executable (the `python3` on PATH may be
//! a pyenv shim that costs ~60 ms a start) and the folders it reads at run time (prefixes,
//! the standard library, site-packages), which the sandbox must leave readable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;

/// One interpreter, as it describes itself.
#[derive(Debug, Clone)]
pub struct Interp {
    /// `sys.executable`, the binary workers run.
    pub executable: PathBuf,
    /// `X.Y.Z`.
    pub version: String,
    /// Folders it reads: prefixes, stdlib, site-packages, the folder of libpython.
    pub read_paths: Vec<PathBuf>,
}

const PROBE: &str = r#"
import json, sys, sysconfig
paths = set()
for k in ("prefix", "base_prefix", "exec_prefix", "base_exec_prefix"):
    paths.add(getattr(sys, k, "") or "")
for k in ("stdlib", "platstdlib", "purelib", "platlib"):
    paths.add(sysconfig.get_paths().get(k) or "")
paths.add(sysconfig.get_config_var("LIBDIR") or "")
paths.update(p for p in sys.path if p)
print(json.dumps({"executable": sys.executable, "version": sys.version.split()[0],
                  "paths": sorted(p for p in paths if p)}))
"#;

#[derive(Deserialize)]
struct Probed {
    executable: PathBuf,
    version: String,
    paths: Vec<PathBuf>,
}

/// Interpreters already asked, by the path they were named with.
#[derive(Default)]
pub struct Interps {
    known: Mutex<HashMap<PathBuf, Arc<Interp>>>,
}

impl Interps {
    /// `python` described (asked once, then cached). `python3` without a folder is looked
    /// up on PATH.
    pub async fn get(&self, python: &Path) -> Result<Arc<Interp>, String> {
        let mut known = self.known.lock().await;
        if let Some(i) = known.get(python) {
            return Ok(i.clone());
        }
        let interp = Arc::new(probe(python).await?);
        known.insert(python.to_path_buf(), interp.clone());
        Ok(interp)
    }
}

async fn probe(python: &Path) -> Result<Interp, String> {
    let mut cmd = tokio::process::Command::new(python);
    // -S: no site import, so no `.pth` file of the interpreter's site-packages runs here,
    // outside the sandbox. An interpreter named by path (a bundle's virtual environment)
    // also gets an empty environment; a bare name (`python3`, maybe a pyenv shim) needs the
    // daemon's to be found and to work.
    cmd.args(["-I", "-S", "-c", PROBE])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if python.is_absolute() {
        cmd.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin");
    }
    let run = cmd.output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| format!("{} did not answer within 30 s", python.display()))?
        .map_err(|e| format!("cannot run the interpreter {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the interpreter {} failed ({}): {}",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let p: Probed = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "the interpreter {} did not describe itself: {e}",
            python.display()
        )
    })?;
    if p.executable.as_os_str().is_empty() {
        return Err(format!(
            "the interpreter {} has no sys.executable",
            python.display()
        ));
    }
    let mut read_paths = p.paths;
    // A virtual environment's python is a link to the base interpreter's binary.
    if let Ok(real) = std::fs::canonicalize(&p.executable)
        && let Some(dir) = real.parent().and_then(Path::parent)
    {
        read_paths.push(dir.to_path_buf());
    }
    if let Some(dir) = p.executable.parent() {
        read_paths.push(dir.to_path_buf());
        // A virtual environment: the probe ran without `site`, which is what reads
        // `<venv>/pyvenv.cfg` and adds `<venv>/lib/pythonX.Y/site-packages`, so neither is in
        // the paths above; the worker (with `site`) reads both.
        if let Some(venv) = dir.parent()
            && venv.join("pyvenv.cfg").is_file()
        {
            read_paths.push(venv.to_path_buf());
        }
    }
    read_paths.sort();
    read_paths.dedup();
    Ok(Interp {
        executable: p.executable,
        version: p.version,
        read_paths,
    })
}

/// The folders `interp` imports installed packages from: what it reported, plus the
/// site-packages of its virtual environment (which the probe, run without `site`, misses).
pub fn import_dirs(interp: &Interp) -> Vec<PathBuf> {
    let short = interp
        .version
        .splitn(3, '.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let mut dirs = interp.read_paths.clone();
    for p in &interp.read_paths {
        if p.join("pyvenv.cfg").is_file() {
            dirs.push(
                p.join("lib")
                    .join(format!("python{short}"))
                    .join("site-packages"),
            );
        }
    }
    dirs
}
