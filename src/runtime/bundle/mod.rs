//! Bundles: a module's code as a zip (`<package>.zip` in the blob store, or a zip file named by
//! `source`), fetched on first use, checked (`policy`), unpacked into a fresh content-addressed
//! folder and swapped in atomically (`slot`, `install`), with its `requirements.txt` installed
//! into its own virtual environment (`venv`) and its sources compiled to bytecode (`compile`).
//! `BundleCache` is the `CodeSource` the Python runtime asks.
//!
//! Layout on disk (`<zip>` = `FUNCT_ZIP_PATH`, `<extract>` = `FUNCT_EXTRACT_PATH`):
//! - `<zip>/<package>/<sha256>.zip`: the verified archive; `<zip>/<package>/current.json`:
//!   the store ETag it came from (a restart with an unchanged object downloads nothing);
//! - `<extract>/<package>/<sha256>/`: the unpacked bundle (on the import path);
//! - `<extract>/<package>/<sha256>.venv/`: its virtual environment, when it has requirements;
//! - `<extract>/.tmp-*`: work in progress, renamed into place when complete.
//!
//! A version stays on disk while it is one of the last `keep_versions` this process made
//! current for that bundle (default 2: the current one and the one before, which calls that
//! started before the swap may still be running on). Older ones are removed when a newer one
//! takes over.

mod compile;
mod extract;
mod helper;
mod install;
mod policy;
mod slot;
mod venv;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

pub use policy::ZipLimits;

use super::{CodeError, CodeLocation, CodeRef, CodeSource, LocalCode};
use crate::blob::{BlobError, BlobErrorKind, BlobStore, FsBlobStore};
use crate::clock::{Clock, SystemClock};
use slot::Slot;

/// How bundles are cached, checked and installed.
#[derive(Debug, Clone)]
pub struct BundleSettings {
    /// `FUNCT_ZIP_PATH`: where verified archives are kept.
    pub zip_path: PathBuf,
    /// `FUNCT_EXTRACT_PATH`: where bundles are unpacked (must be on the same file system as
    /// its own temporary folders, which live inside it).
    pub extract_path: PathBuf,
    /// How often the store is asked whether a bundle changed (its ETag); `0` asks on every
    /// call. Between checks a call costs no I/O at all.
    pub check_interval: Duration,
    /// Versions of one bundle kept on disk (at least 1): the current one and the ones before.
    pub keep_versions: usize,
    /// What an archive may contain.
    pub limits: ZipLimits,
    /// Install a bundle's `requirements.txt` (needs the package index, or a `wheels/` folder
    /// in the bundle). Off: such bundles are refused.
    pub install_requirements: bool,
    /// The interpreter venvs are created with (the Python runtime's).
    pub python: PathBuf,
    /// Deadline for one bundle's venv + pip install, and for compiling its sources.
    pub install_timeout: Duration,
}

impl Default for BundleSettings {
    fn default() -> Self {
        Self {
            zip_path: PathBuf::from("/tmp/funct_zips"),
            extract_path: PathBuf::from("/tmp/functs"),
            check_interval: Duration::from_secs(10),
            keep_versions: 2,
            limits: ZipLimits::default(),
            install_requirements: true,
            python: PathBuf::from("python3"),
            install_timeout: Duration::from_secs(300),
        }
    }
}

/// The `CodeSource` for bundles. Cheap to share (`Arc` inside); one per process.
#[derive(Clone)]
pub struct BundleCache {
    inner: Arc<Inner>,
}

struct Inner {
    blob: Arc<dyn BlobStore>,
    settings: BundleSettings,
    clock: Arc<dyn Clock>,
    /// One slot per bundle origin (`store:<package>`, `file:<path>`), created on first use.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Where one bundle comes from.
enum Origin {
    /// `source` None: an installed package.
    Installed,
    /// A folder holding the module (no archive).
    Folder,
    /// An archive in the blob store, or a local zip file (`local`).
    Archive { slot: Arc<Slot>, local: bool },
}

impl BundleCache {
    pub fn new(blob: Arc<dyn BlobStore>, settings: BundleSettings) -> Self {
        Self::with_clock(blob, settings, Arc::new(SystemClock))
    }

    /// With the clock that times `check_interval` (tests move a `ManualClock`).
    pub fn with_clock(
        blob: Arc<dyn BlobStore>,
        mut settings: BundleSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        settings.keep_versions = settings.keep_versions.max(1);
        Self {
            inner: Arc::new(Inner {
                blob,
                settings,
                clock,
                slots: Mutex::default(),
            }),
        }
    }

    fn origin(&self, code: &CodeRef) -> Result<Origin, CodeError> {
        let Some(source) = &code.source else {
            return Ok(Origin::Installed);
        };
        check_package(&code.package)?;
        if source.is_empty() || source == "s3" {
            let slot = self.slot(format!("store:{}", code.package), || {
                let key = format!("{}.zip", code.package);
                Ok(Slot::new(
                    self.inner.blob.clone(),
                    key,
                    code.package.clone(),
                ))
            })?;
            return Ok(Origin::Archive { slot, local: false });
        }
        let slot_key = format!("file:{source}");
        if let Some(slot) = self.inner.slots.lock().get(&slot_key) {
            return Ok(Origin::Archive {
                slot: slot.clone(),
                local: true,
            });
        }
        let path = Path::new(source);
        if path.is_dir() {
            return Ok(Origin::Folder);
        }
        let (Some(dir), Some(file)) = (path.parent(), path.file_name().and_then(|f| f.to_str()))
        else {
            return Err(CodeError::NotFound(format!(
                "bundle file {source} not found"
            )));
        };
        if !path.is_file() {
            return Err(CodeError::NotFound(format!(
                "bundle {source} not found (neither a zip file nor a folder)"
            )));
        }
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let slot = self.slot(slot_key, || {
            let store = FsBlobStore::open(dir).map_err(|e| from_blob(source, e))?;
            Ok(Slot::new(
                Arc::new(store),
                file.to_string(),
                code.package.clone(),
            ))
        })?;
        Ok(Origin::Archive { slot, local: true })
    }

    fn slot(
        &self,
        slot_key: String,
        make: impl FnOnce() -> Result<Slot, CodeError>,
    ) -> Result<Arc<Slot>, CodeError> {
        let mut slots = self.inner.slots.lock();
        if let Some(slot) = slots.get(&slot_key) {
            return Ok(slot.clone());
        }
        let slot = Arc::new(make()?);
        slots.insert(slot_key, slot.clone());
        Ok(slot)
    }
}

#[async_trait]
impl CodeSource for BundleCache {
    async fn locate(&self, code: &CodeRef) -> Result<CodeLocation, CodeError> {
        match self.origin(code)? {
            Origin::Installed | Origin::Folder => LocalCode.locate(code).await,
            Origin::Archive { slot, .. } => {
                slot::locate(self.inner.clone(), slot, code.module.clone()).await
            }
        }
    }

    async fn exists(&self, code: &CodeRef) -> Result<(), CodeError> {
        match self.origin(code)? {
            Origin::Installed | Origin::Folder => LocalCode.exists(code).await,
            // The file exists (`origin` checked), and hashing it here would read it whole.
            Origin::Archive { local: true, .. } => Ok(()),
            Origin::Archive { slot, local: false } => {
                let location = slot.location();
                match slot
                    .store
                    .head(&slot.key)
                    .await
                    .map_err(|e| from_blob(&location, e))?
                {
                    None => Err(not_found(&location, code)),
                    Some(meta) if meta.size > self.inner.settings.limits.max_zip_bytes => {
                        Err(CodeError::Invalid(format!(
                            "bundle {location} is {} bytes, over the limit of {}",
                            meta.size, self.inner.settings.limits.max_zip_bytes
                        )))
                    }
                    Some(_) => Ok(()),
                }
            }
        }
    }
}

/// Package names become folder names: plain names only.
fn check_package(package: &str) -> Result<(), CodeError> {
    let ok = !package.is_empty()
        && package.len() <= 200
        && !package.starts_with('.')
        && package
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(CodeError::Invalid(format!(
            "package name '{package}' is not a plain name (letters, digits, '_', '.', '-')"
        )))
    }
}

fn not_found(location: &str, code: &CodeRef) -> CodeError {
    CodeError::NotFound(format!(
        "bundle {location} not found (module '{}', package '{}')",
        code.module, code.package
    ))
}

fn from_blob(location: &str, e: BlobError) -> CodeError {
    match e.kind {
        BlobErrorKind::NotFound => CodeError::NotFound(format!("bundle {location}: {e}")),
        BlobErrorKind::TooLarge | BlobErrorKind::Invalid => {
            CodeError::Invalid(format!("bundle {location}: {e}"))
        }
        BlobErrorKind::Unavailable | BlobErrorKind::Internal => {
            CodeError::Unavailable(format!("bundle {location} cannot be fetched: {e}"))
        }
    }
}
