//! Turning an object into an installed version: the archive is downloaded (or found in the
//! zip cache, or its folder found on disk), checked, unpacked and its requirements installed in
//! temporary folders under the extract root, then renamed into place. Nothing under the cache
//! folders changes for an archive that is refused.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::extract::{self, modules_in, remove, rename_into_place};
use super::slot::{Failure, Slot, Version};
use super::{Inner, compile, from_blob, policy, venv};
use crate::blob::{BlobErrorKind, BlobMeta};
use crate::runtime::CodeError;

/// The version for the object `meta` describes: already on disk (a restart, or content seen
/// before), or downloaded and installed now.
pub(super) async fn install(
    inner: &Inner,
    slot: &Slot,
    module: &str,
    meta: &BlobMeta,
    location: &str,
) -> Result<Arc<Version>, Failure> {
    let limits = &inner.settings.limits;
    if meta.size > limits.max_zip_bytes {
        let error = CodeError::Invalid(format!(
            "bundle {location} is {} bytes, over the limit of {}",
            meta.size, limits.max_zip_bytes
        ));
        return Err(Failure::of(Some(&meta.etag), error));
    }
    let zips = inner.settings.zip_path.join(&slot.name);
    let index = zips.join("current.json");
    if let Some(sha) = read_index(&index, &meta.etag) {
        if let Some(version) = on_disk(inner, slot, &sha, &meta.etag) {
            return Ok(version);
        }
        // The unpacked folder is gone (say, a cleaned /tmp) but the verified archive is not.
        let zip_file = zips.join(format!("{sha}.zip"));
        let kept = blocking(move || {
            let bytes = std::fs::read(zip_file).ok()?;
            (crate::blob::sha256_hex(&bytes) == sha).then(|| Bytes::from(bytes))
        })
        .await;
        if let Ok(Some(bytes)) = kept {
            return prepare(inner, slot, module, bytes, &meta.etag, location).await;
        }
    }
    let (bytes, got) = match slot.store.get(&slot.key, limits.max_zip_bytes).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let error =
                CodeError::NotFound(format!("bundle {location} not found (module '{module}')"));
            return Err(Failure::of(None, error));
        }
        Err(e) => {
            let about = (e.kind == BlobErrorKind::TooLarge).then_some(meta.etag.as_str());
            return Err(Failure {
                retry: about.is_none(),
                ..Failure::of(about, from_blob(location, e))
            });
        }
    };
    prepare(inner, slot, module, bytes, &got.etag, location).await
}

/// Verifies, unpacks and installs `bytes` (an archive with ETag `etag`).
async fn prepare(
    inner: &Inner,
    slot: &Slot,
    module: &str,
    bytes: Bytes,
    etag: &str,
    location: &str,
) -> Result<Arc<Version>, Failure> {
    let settings = &inner.settings;
    let refused =
        |reason: String| CodeError::Invalid(format!("bundle {location} refused: {reason}"));
    let limits = settings.limits.clone();
    let wanted = module.to_string();
    let for_check = bytes.clone();
    let checked = blocking(move || {
        let sha = crate::blob::sha256_hex(&for_check);
        (sha, policy::check(for_check, &wanted, &limits))
    })
    .await
    .map_err(|e| Failure::of(None, CodeError::Unavailable(e)))?;
    let (sha, plan) = checked;
    if let Some(version) = on_disk(inner, slot, &sha, etag) {
        return Ok(version);
    }
    let mut plan = plan.map_err(|reason| {
        let missing = reason.starts_with("no ") && reason.contains("at the root");
        let failure = Failure::of(Some(etag), refused(reason));
        Failure {
            module: missing.then(|| module.to_string()),
            ..failure
        }
    })?;
    if plan.requirements && !settings.install_requirements {
        return Err(Failure::of(
            Some(etag),
            refused("it has a requirements.txt, but installing requirements is turned off".into()),
        ));
    }

    let tag = format!(".tmp-{}-{:016x}", slot.name, rand::random::<u64>());
    let tmp = settings.extract_path.join(&tag);
    let tmp_venv = settings.extract_path.join(format!("{tag}.venv"));
    let extract_root = settings.extract_path.clone();
    let dest = tmp.clone();
    let wheels = plan.wheels;
    let requirements = plan.requirements;
    let unpacked = blocking(move || {
        std::fs::create_dir_all(&extract_root)
            .map_err(|e| format!("cannot create {}: {e}", extract_root.display()))?;
        let result = extract::extract(&mut plan, &dest);
        if result.is_err() {
            remove(&dest);
        }
        result
    })
    .await
    .and_then(|r| r);
    if let Err(reason) = unpacked {
        return Err(Failure::of(Some(etag), refused(reason)));
    }
    if requirements {
        let built = venv::build(
            &settings.python,
            &tmp,
            &tmp_venv,
            wheels,
            settings.install_timeout,
        )
        .await;
        if let Err(reason) = built {
            let (a, b) = (tmp.clone(), tmp_venv.clone());
            let _ = blocking(move || {
                remove(&a);
                remove(&b);
            })
            .await;
            let error = CodeError::Invalid(format!(
                "bundle {location}: installing its requirements failed: {reason}"
            ));
            return Err(Failure {
                retry: true,
                ..Failure::of(Some(etag), error)
            });
        }
    }

    let python = match requirements {
        true => venv::interpreter(&tmp_venv),
        false => settings.python.clone(),
    };
    compile::precompile(&python, &tmp, location, settings.install_timeout).await;

    let root = settings.extract_path.join(&slot.name).join(&sha);
    let venv_dir = settings
        .extract_path
        .join(&slot.name)
        .join(format!("{sha}.venv"));
    let zip_file = settings
        .zip_path
        .join(&slot.name)
        .join(format!("{sha}.zip"));
    let (root2, venv2) = (root.clone(), venv_dir.clone());
    let committed = blocking(move || {
        let result = write_atomically(&zip_file, &bytes)
            .and_then(|()| {
                if requirements {
                    rename_into_place(&tmp_venv, &venv2)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| rename_into_place(&tmp, &root2));
        if result.is_err() {
            remove(&tmp);
            remove(&tmp_venv);
        }
        result
    })
    .await
    .and_then(|r| r);
    if let Err(reason) = committed {
        let error = CodeError::Unavailable(format!("bundle {location} cannot be cached: {reason}"));
        return Err(Failure {
            retry: true,
            ..Failure::of(Some(etag), error)
        });
    }
    tracing::info!(bundle = %location, version = %sha, requirements, "bundle version installed");
    Ok(Arc::new(Version {
        modules: modules_in(&root),
        python: requirements.then(|| venv::interpreter(&venv_dir)),
        sha,
        etag: etag.to_string(),
        root,
    }))
}

/// A complete version `sha` already unpacked (and installed) on disk, under ETag `etag`.
fn on_disk(inner: &Inner, slot: &Slot, sha: &str, etag: &str) -> Option<Arc<Version>> {
    let base = inner.settings.extract_path.join(&slot.name);
    let root = base.join(sha);
    if !root.is_dir() {
        return None;
    }
    let python = if root.join("requirements.txt").is_file() {
        let python = venv::interpreter(&base.join(format!("{sha}.venv")));
        if !inner.settings.install_requirements || !python.exists() {
            return None;
        }
        Some(python)
    } else {
        None
    };
    Some(Arc::new(Version {
        sha: sha.to_string(),
        etag: etag.to_string(),
        modules: modules_in(&root),
        root,
        python,
    }))
}

/// The content hash `index` records for `etag`, if it does.
fn read_index(index: &Path, etag: &str) -> Option<String> {
    let text = std::fs::read_to_string(index).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    (value.get("etag")?.as_str()? == etag)
        .then(|| value.get("sha256")?.as_str().map(str::to_string))?
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("bundle task failed: {e}"))
}
