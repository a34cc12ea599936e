//! Blobs: whole objects by key (function bundles, offloaded call content). One `BlobStore`
//! trait with a local-folder implementation (`FsBlobStore`, the embedded default) and an S3 one
//! (`S3BlobStore`, the official AWS SDK), chosen once at start-up from `BlobSettings` by
//! `open`. Both pass the same contract suite (`testsuite.rs`).

mod fs;
mod s3;
#[cfg(test)]
pub(crate) mod testsuite;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use fs::FsBlobStore;
pub(crate) use fs::sha256_hex;
pub use s3::{S3BlobStore, S3Settings, StaticCredentials};

/// What a store knows about one object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Changes whenever the content does (S3: the object's ETag without its quotes; folder:
    /// the content's sha256). Equal ETags mean equal content within one store.
    pub etag: String,
    /// The object's size in bytes.
    pub size: u64,
}

/// Where objects live. Keys are relative paths (`pkg.zip`, `mcp_content/<uuid>.json`): no
/// leading `/`, no `.` or `..` segments, no empty segments, no NUL or backslash; every
/// implementation refuses other keys with `Invalid` before touching its backend.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The object's metadata, or `Ok(None)` when it does not exist. Reads no content (an S3
    /// HEAD), so it is cheap enough to poll for changes.
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError>;
    /// The whole object and its metadata (both from the same read, so the ETag describes these
    /// bytes), or `Ok(None)` when it does not exist. An object larger than `max_bytes` is
    /// refused with `TooLarge` as soon as its size is known, before its content is
    /// downloaded; one that turns out larger while streaming is refused too.
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<(Bytes, BlobMeta)>, BlobError>;
    /// Stores the object whole, replacing any previous one (readers see the old or the new
    /// content, never a mix), and returns its new metadata.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<BlobMeta, BlobError>;
    /// Removes the object. Idempotent: deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// How errors and logs name the object: `s3://<bucket>/<key>` or the file's path.
    fn location(&self, key: &str) -> String;
}

/// Why a blob operation failed: a kind (for decisions) and a source (for humans and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobErrorKind {
    /// Only where the contract says so (never for a missing key on head/get/delete, which is
    /// `Ok(None)` / `Ok(())`); e.g. a bucket that does not exist.
    NotFound,
    /// The object is larger than the caller accepts.
    TooLarge,
    /// The backend cannot be reached, timed out, refused the credentials or answered 5xx: a
    /// later attempt may succeed.
    Unavailable,
    /// The request itself is wrong (a bad key, a bad setting).
    Invalid,
    /// A bug or an unexpected answer.
    Internal,
}

impl fmt::Display for BlobErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::TooLarge => "too large",
            Self::Unavailable => "unavailable",
            Self::Invalid => "invalid",
            Self::Internal => "internal",
        })
    }
}

/// A blob store failure. The message names the object and what happened; the source (an I/O
/// or SDK error) is kept for the log. Cloneable so that several waiters can share one failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BlobError {
    pub kind: BlobErrorKind,
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl BlobError {
    pub fn new(kind: BlobErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: BlobErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Checks a key against the contract of `BlobStore` (relative, no `.`/`..`/empty segments).
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = |why: &str| {
        Err(BlobError::new(
            BlobErrorKind::Invalid,
            format!("blob key '{key}' {why}"),
        ))
    };
    if key.is_empty() {
        return bad("is empty");
    }
    if key.len() > 1024 {
        return bad("is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("is absolute");
    }
    if key.contains('\0') || key.contains('\\') {
        return bad("contains a NUL byte or a backslash");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// Which store to open. Built by the CLI from the environment the Python daemon's users know
/// (see `from_lookup` for the variable of each field).
#[derive(Debug, Clone, Default)]
pub struct BlobSettings {
    /// `FUNCT_BUCKET_NAME`: when set, blobs live in this S3 bucket; otherwise in `folder`.
    pub bucket: Option<String>,
    /// The local folder used without a bucket (created when missing). The CLI's default is a
    /// `blobs/` folder in the daemon's data folder.
    pub folder: PathBuf,
    /// S3 settings (region, endpoint, credentials); ignored without a bucket.
    pub s3: S3Settings,
}

impl BlobSettings {
    /// Settings from environment-style variables (`lookup("FUNCT_BUCKET_NAME")`, ...), so the
    /// CLI can pass `std::env::var` and tests a map:
    /// - `FUNCT_BUCKET_NAME` -> `bucket`
    /// - `REGION_NAME`, else `AWS_REGION` -> `s3.region` (else the SDK's chain: profile files)
    /// - `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` -> `s3.endpoint` (path-style addressing)
    /// - credentials are never read here: the SDK's standard chain finds them
    ///   (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, profile files, web
    ///   identity, ECS, IMDS).
    pub fn from_lookup(folder: PathBuf, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Self {
            bucket: var("FUNCT_BUCKET_NAME"),
            folder,
            s3: S3Settings {
                region: var("REGION_NAME").or_else(|| var("AWS_REGION")),
                endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
                credentials: None,
            },
        }
    }
}

/// Opens the store `settings` name: S3 when a bucket is set, else the local folder.
pub async fn open(settings: &BlobSettings) -> Result<Arc<dyn BlobStore>, BlobError> {
    match &settings.bucket {
        Some(bucket) => Ok(Arc::new(S3BlobStore::connect(bucket, &settings.s3).await?)),
        None => Ok(Arc::new(FsBlobStore::open(&settings.folder)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for good in ["a.zip", "mcp_content/1.json", "a/b/c..d", ".hidden"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a/",
            "a\\b",
            "a\0b",
        ] {
            let err = validate_key(bad).unwrap_err();
            assert_eq!(err.kind, BlobErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn settings_follow_the_documented_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = BlobSettings::from_lookup(
            "/data".into(),
            vars(&[
                ("FUNCT_BUCKET_NAME", "bundles"),
                ("REGION_NAME", "eu-west-1"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2"),
            ]),
        );
        assert_eq!(s.bucket.as_deref(), Some("bundles"));
        assert_eq!(s.s3.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.s3.endpoint.as_deref(), Some("http://127.0.0.1:2"));
        let s = BlobSettings::from_lookup(
            "/data".into(),
            vars(&[
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("FUNCT_BUCKET_NAME", " "),
            ]),
        );
        assert_eq!(s.bucket, None, "a blank bucket is no bucket");
        assert_eq!(s.s3.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.s3.endpoint.as_deref(), Some("http://127.0.0.1:1"));
    }
}
