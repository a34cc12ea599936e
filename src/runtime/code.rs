//! Where a function's code lives. The Python and command runtimes ask a `CodeSource` for a
//! module's folder before a call: the bundle cache answers for zip bundles (from the blob
//! store or a local file), and an installed package needs nothing at all.

use std::path::PathBuf;

use async_trait::async_trait;

/// A module as the config names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeRef {
    /// `module_name`: the import name, and the folder at the root of its bundle.
    pub module: String,
    /// `package_name`: the bundle is `<package>.zip` (defaults to the module name).
    pub package: String,
    /// `source` (the Python daemon's field): `None` is a package the interpreter already has;
    /// `""` or `"s3"` is `<package>.zip` in the blob store; anything else is a local path, of
    /// a zip or of a folder that holds the module.
    pub source: Option<String>,
}

impl CodeRef {
    /// Whether the code comes from an installed package (no bundle).
    pub fn is_installed(&self) -> bool {
        self.source.is_none()
    }
}

/// One version of a module's code, ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLocation {
    /// Changes whenever the code does (the bundle's content hash; `installed` for installed
    /// packages). Runtimes keep one worker pool per version, so a new version never runs in
    /// a worker that imported the old one.
    pub version: String,
    /// Folders to put first on the import path, in order (the unpacked bundle).
    pub paths: Vec<PathBuf>,
    /// The bundle's own interpreter (its virtual environment with its requirements), or
    /// `None` for the configured one.
    pub python: Option<PathBuf>,
}

impl CodeLocation {
    pub fn installed() -> Self {
        Self {
            version: "installed".into(),
            paths: Vec::new(),
            python: None,
        }
    }
}

/// Why code could not be located. The message names the bundle and the reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CodeError {
    /// The bundle (or folder) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists but is refused (unsafe archive, no module folder, failed install, ...).
    #[error("{0}")]
    Invalid(String),
    /// The store could not be reached; a later call may succeed.
    #[error("{0}")]
    Unavailable(String),
}

/// Finds (fetching and unpacking on first use) the code of a module.
#[async_trait]
pub trait CodeSource: Send + Sync + 'static {
    /// The current version of `code`. Cheap when nothing changed: a cached answer, checked
    /// against the store at most every few seconds.
    async fn locate(&self, code: &CodeRef) -> Result<CodeLocation, CodeError>;
    /// Whether `code` can be found, without downloading or unpacking it (start-up and
    /// `check-config`): the bundle object exists, or the folder holds the module.
    async fn exists(&self, code: &CodeRef) -> Result<(), CodeError>;
}

/// Code that only ever comes from installed packages or local folders holding the module
/// (used where no bundle cache is configured, and by tests).
pub struct LocalCode;

#[async_trait]
impl CodeSource for LocalCode {
    async fn locate(&self, code: &CodeRef) -> Result<CodeLocation, CodeError> {
        self.exists(code).await?;
        Ok(match &code.source {
            None => CodeLocation::installed(),
            Some(dir) => {
                // Workers run in their own folders: a relative path means the daemon's.
                let dir = std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir));
                CodeLocation {
                    version: format!("dir:{}", dir.display()),
                    paths: vec![dir],
                    python: None,
                }
            }
        })
    }

    async fn exists(&self, code: &CodeRef) -> Result<(), CodeError> {
        let Some(dir) = &code.source else {
            return Ok(());
        };
        let dir = PathBuf::from(dir);
        let package = dir.join(&code.module).join("__init__.py");
        let single = dir.join(format!("{}.py", code.module));
        if package.is_file() || single.is_file() {
            Ok(())
        } else {
            Err(CodeError::NotFound(format!(
                "module '{}' not found in folder {} (no {}/__init__.py or {}.py)",
                code.module,
                dir.display(),
                code.module,
                code.module
            )))
        }
    }
}
