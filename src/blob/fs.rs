//! `FsBlobStore`: blobs as files in one local folder (the embedded default, and what a
//! single-host deployment uses without S3). Keys map to relative paths under the folder; writes
//! go to a temporary file renamed into place, so readers never see half an object.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::{BlobError, BlobErrorKind, BlobMeta, BlobStore, validate_key};

/// Identity of one file version as the file system sees it: a rename (our `put`) changes the
/// inode, an in-place rewrite changes mtime/ctime.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

pub struct FsBlobStore {
    /// Canonical root folder; every key resolves below it.
    root: PathBuf,
    /// sha256 (the ETag) per path, valid while the file's stamp is unchanged: `head` is polled
    /// for changes and must not hash a 64 MiB bundle every time.
    etags: Arc<Mutex<HashMap<PathBuf, (Stamp, String)>>>,
}

impl FsBlobStore {
    /// Opens (creating when missing) the folder `root`.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root)
            .map_err(|e| io_error(&format!("cannot create blob folder {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| io_error(&format!("cannot open blob folder {}", root.display()), e))?;
        Ok(Self {
            root,
            etags: Arc::default(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
    ) -> Result<T, BlobError> {
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            BlobError::with_source(BlobErrorKind::Internal, "blob folder task failed", e)
        })?
    }
}

fn io_error(what: &str, e: io::Error) -> BlobError {
    let kind = match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::StorageFull => BlobErrorKind::Unavailable,
        _ => BlobErrorKind::Internal,
    };
    BlobError::with_source(kind, format!("{what}: {e}"), e)
}

fn stamp(m: &std::fs::Metadata) -> Stamp {
    (
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file's metadata, `None` when it does not exist (a folder at the key counts as missing).
fn metadata(path: &Path) -> Result<Option<std::fs::Metadata>, BlobError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(m)),
        Ok(_) => Ok(None),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory =>
        {
            Ok(None)
        }
        Err(e) => Err(io_error(&format!("cannot read {}", path.display()), e)),
    }
}

/// Reads at most `max_bytes` of the file; `None` when it vanished, `TooLarge` past the limit.
fn read_limited(path: &Path, max_bytes: u64) -> Result<Option<(Vec<u8>, Stamp)>, BlobError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&format!("cannot open {}", path.display()), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| io_error(&format!("cannot read {}", path.display()), e))?;
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.size() > max_bytes {
        return Err(too_large(path, meta.size(), max_bytes));
    }
    let mut buf = Vec::with_capacity(meta.size() as usize);
    // One byte past the limit tells a file that grew since `metadata` from one that fits.
    (&mut file)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| io_error(&format!("cannot read {}", path.display()), e))?;
    if buf.len() as u64 > max_bytes {
        return Err(too_large(path, buf.len() as u64, max_bytes));
    }
    Ok(Some((buf, stamp(&meta))))
}

fn too_large(path: &Path, size: u64, max: u64) -> BlobError {
    BlobError::new(
        BlobErrorKind::TooLarge,
        format!(
            "{} is {size} bytes, over the limit of {max} bytes",
            path.display()
        ),
    )
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        let path = self.path(key)?;
        let etags = self.etags.clone();
        self.blocking(move || {
            let Some(meta) = metadata(&path)? else {
                etags.lock().remove(&path);
                return Ok(None);
            };
            let now = stamp(&meta);
            if let Some((seen, etag)) = etags.lock().get(&path)
                && *seen == now
            {
                return Ok(Some(BlobMeta {
                    etag: etag.clone(),
                    size: meta.size(),
                }));
            }
            let Some((bytes, read_stamp)) = read_limited(&path, u64::MAX)? else {
                return Ok(None);
            };
            let etag = sha256_hex(&bytes);
            etags.lock().insert(path, (read_stamp, etag.clone()));
            Ok(Some(BlobMeta {
                etag,
                size: bytes.len() as u64,
            }))
        })
        .await
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<(Bytes, BlobMeta)>, BlobError> {
        let path = self.path(key)?;
        let etags = self.etags.clone();
        self.blocking(move || {
            let Some((bytes, read_stamp)) = read_limited(&path, max_bytes)? else {
                return Ok(None);
            };
            let etag = sha256_hex(&bytes);
            etags.lock().insert(path, (read_stamp, etag.clone()));
            let meta = BlobMeta {
                etag,
                size: bytes.len() as u64,
            };
            Ok(Some((Bytes::from(bytes), meta)))
        })
        .await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let path = self.path(key)?;
        self.blocking(move || {
            let dir = path.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(dir)
                .map_err(|e| io_error(&format!("cannot create {}", dir.display()), e))?;
            let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
            let written = std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(io_error(&format!("cannot write {}", path.display()), e));
            }
            Ok(BlobMeta {
                etag: sha256_hex(&bytes),
                size: bytes.len() as u64,
            })
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        let etags = self.etags.clone();
        self.blocking(move || {
            etags.lock().remove(&path);
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(&format!("cannot delete {}", path.display()), e)),
            }
        })
        .await
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn folder_store_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        super::super::testsuite::blob_store_contract(&store).await;
    }

    #[tokio::test]
    async fn a_file_changed_in_place_gets_a_new_etag() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let first = store
            .put("b.zip", Bytes::from_static(b"one"))
            .await
            .unwrap();
        // An operator copies a new bundle over the old file (same inode, new content).
        std::fs::write(dir.path().join("b.zip"), b"three").unwrap();
        let now = store.head("b.zip").await.unwrap().unwrap();
        assert_ne!(first.etag, now.etag);
        assert_eq!(now.etag, sha256_hex(b"three"));
        assert!(store.location("b.zip").ends_with("/b.zip"));
    }
}
