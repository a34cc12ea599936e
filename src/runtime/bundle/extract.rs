//! Writing a checked archive (`policy::Plan`) into a fresh folder, and the folder chores of the
//! cache: what modules a root holds, atomic renames into place, removal.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::policy::Plan;

/// Extracts every planned entry below `dest`, which must not exist yet (it is created here).
/// Files get mode 0644 (0755 when the archive marked them executable), folders 0755. An entry
/// whose content is longer or shorter than declared, or whose CRC does not match, fails the
/// whole extraction; the caller removes `dest`.
pub(super) fn extract(plan: &mut Plan, dest: &Path) -> Result<(), String> {
    let mkdir = |p: &Path| {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(p)
            .map_err(|e| format!("cannot create folder {}: {e}", p.display()))
    };
    fs::DirBuilder::new()
        .mode(0o755)
        .create(dest)
        .map_err(|e| format!("cannot create folder {}: {e}", dest.display()))?;
    for entry in &plan.entries {
        let target = dest.join(&entry.path);
        if entry.dir {
            mkdir(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            mkdir(parent)?;
        }
        let mode = if entry.executable { 0o755 } else { 0o644 };
        // `create_new` never follows or replaces anything already there.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&target)
            .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
        let name = entry.path.display();
        let file = plan
            .archive
            .by_index(entry.index)
            .map_err(|e| format!("entry '{name}' cannot be read: {e}"))?;
        // One byte past the declared size tells a lying header from an honest one; reading to
        // the end makes the zip reader check the CRC.
        let mut limited = file.take(entry.size.saturating_add(1));
        let written =
            copy(&mut limited, &mut out).map_err(|e| format!("entry '{name}' is corrupt: {e}"))?;
        if written != entry.size {
            return Err(format!(
                "entry '{name}' holds {written} bytes but declares {}",
                entry.size
            ));
        }
        // The umask may have narrowed the mode; the policy wants exactly these bits.
        fs::set_permissions(&target, Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", target.display()))?;
    }
    Ok(())
}

fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The importable top-level names of an extracted root: `<name>.py` files and folders with an
/// `__init__.py`.
pub(super) fn modules_in(root: &Path) -> BTreeSet<String> {
    let Ok(dir) = fs::read_dir(root) else {
        return BTreeSet::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kind = e.file_type().ok()?;
            if kind.is_file() {
                name.strip_suffix(".py").map(str::to_string)
            } else if kind.is_dir() && e.path().join("__init__.py").is_file() {
                Some(name)
            } else {
                None
            }
        })
        .collect()
}

/// Renames `from` to `to` (same file system: atomic). When `to` already exists, someone
/// (another process sharing the cache) finished the same content first: `from` is dropped
/// and theirs is kept.
pub(super) fn rename_into_place(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| format!("cannot create folder {}: {e}", parent.display()))?;
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) if to.exists() => {
            remove(from);
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        )),
    }
}

/// Removes a file or a folder tree; a missing one is fine, other failures are logged.
pub(super) fn remove(path: &Path) {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => return,
    };
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an old bundle file");
    }
}
