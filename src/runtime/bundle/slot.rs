//! One bundle's versions and how a new one takes over. A call between checks reads the current
//! version from memory; a check asks the store for the object's ETag and, when it changed,
//! downloads, verifies, unpacks and installs the new content in temporary folders, renames them
//! into place and only then makes the new version current. Checks of one bundle run one at a
//! time in their own task (a caller that gives up does not abort a half-done install), and a
//! caller that waited for a check that started after it arrived takes that check's answer, so
//! concurrent first calls download once.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde_json::json;

use super::extract::remove;
use super::install::{blocking, install, write_atomically};
use super::{Inner, from_blob};
use crate::blob::BlobStore;
use crate::runtime::{CodeError, CodeLocation};

pub(super) struct Slot {
    pub store: Arc<dyn BlobStore>,
    pub key: String,
    /// The folder name of this bundle's versions under the zip and extract roots (its package).
    pub name: String,
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

pub(super) struct Version {
    pub sha: String,
    pub etag: String,
    pub root: PathBuf,
    pub python: Option<PathBuf>,
    pub modules: BTreeSet<String>,
}

#[derive(Clone)]
pub(super) struct Failure {
    /// The object it is about; `None`: about no object (missing, unreachable), so any ETag
    /// seen later is tried.
    pub etag: Option<String>,
    /// Only this module was missing from the archive; other modules of it are tried again.
    pub module: Option<String>,
    /// Try again at the next check even if the object is unchanged (pip could not reach the
    /// index, the disk was full).
    pub retry: bool,
    pub error: CodeError,
}

impl Failure {
    pub fn of(etag: Option<&str>, error: CodeError) -> Self {
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
