//! Hostile bundles: each is refused with its reason, naming the bundle, and leaves both cache
//! folders exactly as they were (a good bundle is installed first, so there is something to
//! disturb).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mcp_daemon::blob::BlobStore;
use mcp_daemon::clock::ManualClock;
use mcp_daemon::runtime::{CodeError, CodeSource};
use zip::write::SimpleFileOptions;

use crate::bundle_kit::*;

fn init() -> Raw {
    Raw::file("evil/__init__.py", b"X = 1\n")
}

/// A zip whose one entry is `size` zero bytes, deflated (ratio ~1000:1).
fn bomb(size: usize) -> Bytes {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("evil/__init__.py", options).unwrap();
    w.write_all(b"X = 1\n").unwrap();
    w.start_file("evil/data.bin", options).unwrap();
    w.write_all(&vec![0u8; size]).unwrap();
    Bytes::from(w.finish().unwrap().into_inner())
}

fn cases() -> Vec<(&'static str, Bytes, &'static str)> {
    let symlink = Raw {
        mode: 0o120777,
        ..Raw::file("evil/passwd", b"/etc/passwd")
    };
    let device = Raw {
        mode: 0o020644,
        ..Raw::file("evil/tty", b"")
    };
    let fifo = Raw {
        mode: 0o010644,
        ..Raw::file("evil/pipe", b"")
    };
    let mut many = vec![init()];
    many.extend((0..10_000).map(|i| Raw::file(&format!("evil/f{i}.py"), b"")));
    let huge = Raw {
        method: 8,
        size: Some(100 << 20),
        ..Raw::file("evil/big.bin", &[0u8; 64])
    };
    let bad_crc = Raw {
        crc: Some(0xDEAD_BEEF),
        ..Raw::file("evil/data.py", b"some content\n")
    };
    let mut truncated = module_zip("evil", "1").to_vec();
    truncated.truncate(truncated.len() / 2);
    vec![
        (
            "zip-slip",
            raw_zip(&[init(), Raw::file("../escaped.py", b"x")]),
            "escapes the bundle folder",
        ),
        (
            "zip-slip inside",
            raw_zip(&[init(), Raw::file("evil/../../escaped.py", b"x")]),
            "escapes",
        ),
        (
            "absolute path",
            raw_zip(&[init(), Raw::file("/etc/cron.d/evil", b"x")]),
            "absolute path",
        ),
        ("symlink", raw_zip(&[init(), symlink]), "symbolic link"),
        ("device file", raw_zip(&[init(), device]), "device file"),
        ("named pipe", raw_zip(&[init(), fifo]), "named pipe"),
        (
            "10k entries",
            raw_zip(&many),
            "10001 entries, over the limit of 10000",
        ),
        ("zip bomb", bomb(10 << 20), "compression ratio"),
        (
            "entry over 64 MiB",
            raw_zip(&[init(), huge]),
            "over the limit of 67108864 per entry",
        ),
        (
            "corrupt archive",
            Bytes::from_static(b"PK\x03\x04 this is not a zip at all"),
            "corrupt archive",
        ),
        (
            "truncated archive",
            Bytes::from(truncated),
            "corrupt archive",
        ),
        ("bad checksum", raw_zip(&[init(), bad_crc]), "is corrupt"),
        (
            "missing module",
            zip_of(&[("other/__init__.py", b"", 0o644)]),
            "no evil/__init__.py or evil.py at the root",
        ),
        (
            "module nested one level down",
            zip_of(&[("pkg/evil/__init__.py", b"", 0o644)]),
            "no evil/__init__.py",
        ),
        (
            "duplicate names",
            raw_zip(&[
                init(),
                Raw::file("evil/a.py", b"1"),
                Raw::file("evil/a.py", b"2"),
            ]),
            "same name",
        ),
        (
            "case collision",
            raw_zip(&[
                init(),
                Raw::file("evil/a.py", b"1"),
                Raw::file("evil/A.py", b"2"),
            ]),
            "differ only in case",
        ),
        (
            "drive letter",
            raw_zip(&[init(), Raw::file("C:/x.py", b"x")]),
            "names a drive",
        ),
        (
            "backslash",
            raw_zip(&[init(), Raw::file("evil\\..\\..\\x.py", b"x")]),
            "backslash",
        ),
    ]
}

#[tokio::test]
async fn hostile_bundles_are_refused_and_the_cache_is_untouched() {
    let f = Folders::new();
    let store = f.store();
    let cache = f.cache(
        store.clone(),
        Duration::from_secs(10),
        Arc::new(ManualClock::new(0)),
    );
    store
        .put("good.zip", module_zip("good", "1"))
        .await
        .unwrap();
    let good = cache.locate(&code("good", "good", Some(""))).await.unwrap();
    assert!(good.paths[0].join("good/__init__.py").is_file());

    for (i, (case, bytes, reason)) in cases().into_iter().enumerate() {
        let package = format!("evil{i}");
        store.put(&format!("{package}.zip"), bytes).await.unwrap();
        let before = f.cache_listing();
        let err = cache
            .locate(&code("evil", &package, Some("")))
            .await
            .unwrap_err();
        let CodeError::Invalid(message) = &err else {
            panic!("{case}: expected Invalid, got {err:?}");
        };
        assert!(message.contains(reason), "{case}: {message}");
        assert!(
            message.contains(&format!("{package}.zip")),
            "{case}: the message names the bundle: {message}"
        );
        assert_eq!(
            f.cache_listing(),
            before,
            "{case}: the cache folders changed"
        );
        // Asking again answers the same without unpacking anything.
        let again = cache
            .locate(&code("evil", &package, Some("")))
            .await
            .unwrap_err();
        assert_eq!(again.to_string(), err.to_string(), "{case}");
    }
    assert!(!f.dir.path().join("escaped.py").exists() && !f.extract.join("../escaped.py").exists());
    // The good bundle was never disturbed.
    let again = cache.locate(&code("good", "good", Some(""))).await.unwrap();
    assert_eq!(again, good);
}

#[tokio::test]
async fn an_oversized_object_is_refused_before_it_is_downloaded() {
    let f = Folders::new();
    let store = Counting::new(f.store());
    let mut settings = f.settings(Duration::from_secs(10));
    settings.limits.max_zip_bytes = 1000;
    let cache = mcp_daemon::runtime::BundleCache::new(store.clone(), settings);
    store.put("big.zip", bomb(1 << 20)).await.unwrap();
    let err = cache
        .locate(&code("evil", "big", Some("")))
        .await
        .unwrap_err();
    assert!(matches!(err, CodeError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("over the limit of 1000"), "{err}");
    assert_eq!(store.gets(), 0, "refused on its size alone");
    let err = cache
        .exists(&code("evil", "big", Some("")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[tokio::test]
async fn a_bundle_with_requirements_is_refused_when_installs_are_off() {
    let f = Folders::new();
    let store = f.store();
    let mut settings = f.settings(Duration::from_secs(10));
    settings.install_requirements = false;
    let cache = mcp_daemon::runtime::BundleCache::new(store.clone(), settings);
    let bundle = zip_of(&[
        ("needs/__init__.py", b"import six\n", 0o644),
        ("requirements.txt", b"six\n", 0o644),
    ]);
    store.put("needs.zip", bundle).await.unwrap();
    let before = f.cache_listing();
    let err = cache
        .locate(&code("needs", "needs", Some("")))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("installing requirements is turned off"),
        "{err}"
    );
    assert_eq!(f.cache_listing(), before);
}

#[tokio::test]
async fn package_names_cannot_leave_the_cache_folders() {
    let f = Folders::new();
    let cache = f.cache(
        f.store(),
        Duration::from_secs(10),
        Arc::new(ManualClock::new(0)),
    );
    for package in ["../up", "a/b", ".hidden", ""] {
        let err = cache
            .locate(&code("m", package, Some("")))
            .await
            .unwrap_err();
        assert!(matches!(err, CodeError::Invalid(_)), "{package}: {err:?}");
    }
}
