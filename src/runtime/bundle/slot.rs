//! One bundle's versions and how a new one takes over. A call between checks reads the current
//! version from memory; a check asks the store for the object's ETag and, when it changed,
//! downloads, verifies, unpacks and installs the new content in temporary folders, renames them
//! into place and only then makes the new version current. Checks of one bundle run one at a
//! time in their own task (a caller that gives up does not abort a half-done install), and a
//! caller that waited for a check that started after it arrived takes that check's answer, so
//! concurrent first calls download once.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::json;

use super::extract::{self, modules_in, remove, rename_into_place};
use super::{Inner, from_blob, policy, venv};
use crate::blob::{BlobErrorKind, BlobMeta, BlobStore};
use crate::runtime::{CodeError, CodeLocation};

pub(super) struct Slot {
    pub store: Arc<dyn BlobStore>,
    pub key: String,
    /// The folder name of this bundle's versions under the zip and extract roots (its package).
    name: String,
    state: RwLock<State>,
    /// Completed checks; a caller compares it with the value it saw on arrival.
    seq: AtomicU64,
    /// Held for the duration of a check: one download and install at a time per bundle.
    refresh: tokio::sync::Mutex<()>,
    /// Content hashes this process made current, oldest first: the ones still on disk.
    kept: Mutex<VecDeque<String>>,
}

#[derive(Default)]
struct State {
    /// The newest version that installed.
    ready: Option<Arc<Version>>,
    /// Why the store's latest object cannot be used (it wins over `ready` while it applies).
    failed: Option<Failure>,
    /// When the store was last asked (clock ms).
    checked_at: Option<u64>,
}

struct Version {
    sha: String,
    etag: String,
    root: PathBuf,
    python: Option<PathBuf>,
    modules: BTreeSet<String>,
}

#[derive(Clone)]
struct Failure {
    /// The object it is about; `None`: about no object (missing, unreachable), so any ETag
    /// seen later is tried.
    etag: Option<String>,
    /// Only this module was missing from the archive; other modules of it are tried again.
    module: Option<String>,
    /// Try again at the next check even if the object is unchanged (pip could not reach the
    /// index, the disk was full).
    retry: bool,
    error: CodeError,
}

impl Failure {
    fn of(etag: Option<&str>, error: CodeError) -> Self {
        Self {
            etag: etag.map(str::to_string),
            module: None,
            retry: false,
            error,
        }
    }

    fn applies_to(&self, module: &str) -> bool {
        self.module.as_deref().is_none_or(|m| m == module)
    }
}

impl Version {
    fn location(&self, module: &str, bundle: &str) -> Result<CodeLocation, CodeError> {
        if !self.modules.contains(module) {
            return Err(CodeError::Invalid(format!(
                "bundle {bundle} has no {module}/__init__.py or {module}.py at its root"
            )));
        }
        Ok(CodeLocation {
            version: self.sha.clone(),
            paths: vec![self.root.clone()],
            python: self.python.clone(),
        })
    }
}

impl Slot {
    pub fn new(store: Arc<dyn BlobStore>, key: String, name: String) -> Self {
        Self {
            store,
            key,
            name,
            state: RwLock::default(),
            seq: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(()),
            kept: Mutex::default(),
        }
    }

    pub fn location(&self) -> String {
        self.store.location(&self.key)
    }

    /// The answer the last check left, if it covers `module`.
    fn answer(&self, module: &str) -> Option<Result<CodeLocation, CodeError>> {
        let state = self.state.read();
        match (&state.failed, &state.ready) {
            (Some(f), _) if f.applies_to(module) => Some(Err(f.error.clone())),
            (Some(_), _) => None,
            (None, Some(ready)) => Some(ready.location(module, &self.location())),
            (None, None) => None,
        }
    }

    fn touch(&self, now: u64) {
        self.state.write().checked_at = Some(now);
    }

    fn fail(&self, now: u64, failure: Failure) -> Result<CodeLocation, CodeError> {
        let error = failure.error.clone();
        let mut state = self.state.write();
        state.failed = Some(failure);
        state.checked_at = Some(now);
        Err(error)
    }
}

/// The current version of the bundle in `slot` for `module`, checking the store when the last
/// check is older than the interval.
pub(super) async fn locate(
    inner: Arc<Inner>,
    slot: Arc<Slot>,
    module: String,
) -> Result<CodeLocation, CodeError> {
    let now = inner.clock.now_ms();
    let interval = inner.settings.check_interval.as_millis() as u64;
    let arrived = slot.seq.load(Ordering::Acquire);
    if interval > 0 {
        let fresh = slot
            .state
            .read()
            .checked_at
            .is_some_and(|at| now.saturating_sub(at) < interval);
        if fresh && let Some(answer) = slot.answer(&module) {
            return answer;
        }
    }
    let location = slot.location();
    let task = tokio::spawn(async move {
        let _one_at_a_time = slot.refresh.lock().await;
        if slot.seq.load(Ordering::Acquire) != arrived
            && let Some(answer) = slot.answer(&module)
        {
            return answer;
        }
        let answer = check(&inner, &slot, &module).await;
        slot.seq.fetch_add(1, Ordering::AcqRel);
        answer
    });
    task.await
        .map_err(|e| CodeError::Unavailable(format!("checking bundle {location} failed: {e}")))?
}

async fn check(inner: &Inner, slot: &Slot, module: &str) -> Result<CodeLocation, CodeError> {
    let now = inner.clock.now_ms();
    let location = slot.location();
    let meta = match slot.store.head(&slot.key).await {
        Ok(Some(meta)) => meta,
        Ok(None) => {
            let error =
                CodeError::NotFound(format!("bundle {location} not found (module '{module}')"));
            return slot.fail(now, Failure::of(None, error));
        }
        Err(e) => {
            let error = from_blob(&location, e);
            let ready = {
                let state = slot.state.read();
                state.ready.clone().filter(|_| state.failed.is_none())
            };
            // The version in use keeps serving while the store is down.
            if let Some(ready) = ready {
                tracing::warn!(bundle = %location, error = %error, "bundle store unreachable; keeping the current version");
                slot.touch(now);
                return ready.location(module, &location);
            }
            return slot.fail(
                now,
                Failure {
                    retry: true,
                    ..Failure::of(None, error)
                },
            );
        }
    };
    {
        let mut state = slot.state.write();
        if let Some(ready) = state.ready.clone()
            && ready.etag == meta.etag
        {
            state.failed = None;
            state.checked_at = Some(now);
            drop(state);
            return ready.location(module, &location);
        }
        let known_bad = state
            .failed
            .as_ref()
            .filter(|f| {
                !f.retry && f.etag.as_deref() == Some(meta.etag.as_str()) && f.applies_to(module)
            })
            .map(|f| f.error.clone());
        if let Some(error) = known_bad {
            state.checked_at = Some(now);
            return Err(error);
        }
    }
    match install(inner, slot, module, &meta, &location).await {
        Ok(version) => {
            let answer = version.location(module, &location);
            adopt(inner, slot, version, now).await;
            answer
        }
        Err(failure) => slot.fail(now, failure),
    }
}

/// The version for the object `meta` describes: already on disk (a restart, or content seen
/// before), or downloaded and installed now.
async fn install(
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

/// Makes `version` current, remembers its ETag for restarts and removes versions that fell
/// out of the kept window (unless another bundle of the same name still keeps them).
async fn adopt(inner: &Inner, slot: &Slot, version: Arc<Version>, now: u64) {
    let sha = version.sha.clone();
    let index = inner
        .settings
        .zip_path
        .join(&slot.name)
        .join("current.json");
    let record = json!({ "etag": version.etag, "sha256": sha }).to_string();
    {
        let mut state = slot.state.write();
        state.ready = Some(version);
        state.failed = None;
        state.checked_at = Some(now);
    }
    let retired: Vec<String> = {
        let mut kept = slot.kept.lock();
        if kept.back() != Some(&sha) {
            kept.retain(|s| s != &sha);
            kept.push_back(sha);
        }
        let excess = kept.len().saturating_sub(inner.settings.keep_versions);
        kept.drain(..excess).collect()
    };
    let retired: Vec<String> = retired
        .into_iter()
        .filter(|old| {
            let slots = inner.slots.lock();
            !slots
                .values()
                .any(|s| s.name == slot.name && s.kept.lock().contains(old))
        })
        .collect();
    let extract_base = inner.settings.extract_path.join(&slot.name);
    let zip_base = inner.settings.zip_path.join(&slot.name);
    let _ = blocking(move || {
        if let Err(e) = write_atomically(&index, record.as_bytes()) {
            tracing::warn!(error = %e, "could not record the bundle's etag");
        }
        for old in retired {
            remove(&extract_base.join(&old));
            remove(&extract_base.join(format!("{old}.venv")));
            remove(&zip_base.join(format!("{old}.zip")));
        }
    })
    .await;
}

/// The content hash `index` records for `etag`, if it does.
fn read_index(index: &Path, etag: &str) -> Option<String> {
    let text = std::fs::read_to_string(index).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    (value.get("etag")?.as_str()? == etag)
        .then(|| value.get("sha256")?.as_str().map(str::to_string))?
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("bundle task failed: {e}"))
}
