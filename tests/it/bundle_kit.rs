//! Building bundles in tests: honest ones with the `zip` crate, hostile ones byte by byte (a
//! hand-written stored-entry zip writer, so names, modes, sizes and CRCs can lie), a wheel for
//! pip, a `BundleCache` over temporary folders, and listings of those folders.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mcp_daemon::blob::{
    BlobError, BlobMeta, BlobStore, FsBlobStore, S3BlobStore, S3Settings, StaticCredentials,
};
use mcp_daemon::clock::ManualClock;
use mcp_daemon::runtime::{BundleCache, BundleSettings, CodeRef};
use zip::write::SimpleFileOptions;

use crate::moto::MotoServer;

/// A zip of `(name, content, unix permissions)` entries, deflated, as a user's `zip -r` makes.
pub fn zip_of(files: &[(&str, &[u8], u32)]) -> Bytes {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content, mode) in files {
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        if name.ends_with('/') {
            w.add_directory(*name, options).unwrap();
        } else {
            w.start_file(*name, options).unwrap();
            w.write_all(content).unwrap();
        }
    }
    Bytes::from(w.finish().unwrap().into_inner())
}

/// A module `name` whose `VERSION` is `version`.
pub fn module_zip(name: &str, version: &str) -> Bytes {
    let init = format!("VERSION = {version:?}\n");
    zip_of(&[
        (&format!("{name}/"), b"", 0o755),
        (&format!("{name}/__init__.py"), init.as_bytes(), 0o666),
        (&format!("{name}/tool.sh"), b"#!/bin/sh\necho hi\n", 0o777),
        ("README.md", b"a bundle\n", 0o644),
    ])
}

/// One entry of a hand-made zip. Everything may lie.
#[derive(Clone)]
pub struct Raw {
    pub name: String,
    pub data: Vec<u8>,
    /// Full `st_mode` (file type and permissions), stored as Unix external attributes.
    pub mode: u32,
    /// 0 stored, 8 deflated (the data is then never valid deflate: only the header counts).
    pub method: u16,
    /// Declared uncompressed size (`None`: the data's length).
    pub size: Option<u32>,
    /// Declared CRC (`None`: the right one).
    pub crc: Option<u32>,
}

impl Raw {
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.into(),
            data: data.to_vec(),
            mode: 0o100644,
            method: 0,
            size: None,
            crc: None,
        }
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive with exactly these entries (local headers, central directory, end record).
pub fn raw_zip(entries: &[Raw]) -> Bytes {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for e in entries {
        let offset = out.len() as u32;
        let crc = e.crc.unwrap_or_else(|| crc32(&e.data));
        let size = e.size.unwrap_or(e.data.len() as u32);
        // Local file header.
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, 0x0800);
        u16le(&mut out, e.method);
        u16le(&mut out, 0);
        u16le(&mut out, 0x21);
        u32le(&mut out, crc);
        u32le(&mut out, e.data.len() as u32);
        u32le(&mut out, size);
        u16le(&mut out, e.name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.data);
        // Its central directory record (made by Unix, so the mode counts).
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, (3 << 8) | 20);
        u16le(&mut central, 20);
        u16le(&mut central, 0x0800);
        u16le(&mut central, e.method);
        u16le(&mut central, 0);
        u16le(&mut central, 0x21);
        u32le(&mut central, crc);
        u32le(&mut central, e.data.len() as u32);
        u32le(&mut central, size);
        u16le(&mut central, e.name.len() as u16);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u32le(&mut central, e.mode << 16);
        u32le(&mut central, offset);
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Bytes::from(out)
}

/// A pure-Python wheel of package `name` whose `VALUE` is `value` (what `pip wheel` would
/// make, written by hand: no network, no setuptools needed).
pub fn wheel(name: &str, version: &str, value: &str) -> Bytes {
    let info = format!("{name}-{version}.dist-info");
    let init = format!("VALUE = {value:?}\n");
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let wheel = "Wheel-Version: 1.0\nGenerator: mcp-daemon-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let record =
        format!("{name}/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n");
    zip_of(&[
        (&format!("{name}/__init__.py"), init.as_bytes(), 0o644),
        (&format!("{info}/METADATA"), metadata.as_bytes(), 0o644),
        (&format!("{info}/WHEEL"), wheel.as_bytes(), 0o644),
        (&format!("{info}/RECORD"), record.as_bytes(), 0o644),
    ])
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn code(module: &str, package: &str, source: Option<&str>) -> CodeRef {
    CodeRef {
        module: module.into(),
        package: package.into(),
        source: source.map(str::to_string),
    }
}

/// Every path below `root` with its size (folders as `path/`), sorted: equal listings mean
/// nothing was written, renamed or removed.
pub fn listing(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &path, out);
            } else {
                out.push(format!("{rel} {}", meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Counts the calls that reach a real store (moto has no counter of its own).
pub struct Counting {
    pub inner: Arc<dyn BlobStore>,
    pub heads: AtomicUsize,
    pub gets: AtomicUsize,
}

impl Counting {
    pub fn new(inner: Arc<dyn BlobStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            heads: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
        })
    }
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl BlobStore for Counting {
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        self.heads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(key).await
    }
    async fn get(&self, key: &str, max: u64) -> Result<Option<(Bytes, BlobMeta)>, BlobError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key, max).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        self.inner.put(key, bytes).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}

/// Temporary `blobs/`, `zips/` and `extract/` folders and the settings that use them.
pub struct Folders {
    pub dir: tempfile::TempDir,
    pub blobs: PathBuf,
    pub zips: PathBuf,
    pub extract: PathBuf,
}

impl Folders {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, zips, extract) = (
            dir.path().join("blobs"),
            dir.path().join("zips"),
            dir.path().join("extract"),
        );
        for d in [&blobs, &zips, &extract] {
            std::fs::create_dir_all(d).unwrap();
        }
        Self {
            dir,
            blobs,
            zips,
            extract,
        }
    }

    pub fn settings(&self, check_interval: Duration) -> BundleSettings {
        BundleSettings {
            zip_path: self.zips.clone(),
            extract_path: self.extract.clone(),
            check_interval,
            python: python(),
            ..BundleSettings::default()
        }
    }

    pub fn store(&self) -> Arc<dyn BlobStore> {
        Arc::new(FsBlobStore::open(&self.blobs).unwrap())
    }

    /// Both cache folders' listings together.
    pub fn cache_listing(&self) -> (Vec<String>, Vec<String>) {
        (listing(&self.zips), listing(&self.extract))
    }

    pub fn cache(
        &self,
        store: Arc<dyn BlobStore>,
        interval: Duration,
        clock: Arc<ManualClock>,
    ) -> BundleCache {
        BundleCache::with_clock(store, self.settings(interval), clock)
    }
}

/// The real interpreter behind `python3` (not pyenv's shim).
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 on PATH");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}

/// A bucket `bucket` made on `server`, and the daemon's S3 store on it.
pub async fn moto_store(server: &MotoServer, bucket: &str) -> S3BlobStore {
    server.create_bucket(bucket);
    let settings = S3Settings {
        region: Some("us-east-1".into()),
        endpoint: Some(server.endpoint()),
        credentials: Some(StaticCredentials {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            session_token: None,
        }),
    };
    S3BlobStore::connect(bucket, &settings).await.unwrap()
}
