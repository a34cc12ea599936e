//! Bundles through `BundleCache`: from moto's S3 (located, replaced after the check interval,
//! old versions kept then removed, served while the store is down), downloaded once under
//! concurrency, reused across restarts, from local zips and folders, and with requirements
//! installed from a vendored wheel into the bundle's own venv.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use mcp_daemon::blob::BlobStore;
use mcp_daemon::clock::ManualClock;
use mcp_daemon::runtime::{BundleCache, CodeError, CodeSource};

use crate::bundle_kit::*;
use crate::moto;

async fn s3(server: &moto::MotoServer, bucket: &str) -> Arc<dyn BlobStore> {
    Arc::new(moto_store(server, bucket).await)
}

fn version_of(root: &std::path::Path, module: &str) -> String {
    std::fs::read_to_string(root.join(module).join("__init__.py")).unwrap()
}

#[tokio::test]
async fn a_bundle_from_s3_is_located_then_replaced_after_the_check_interval() {
    let server = moto::MotoServer::start();
    let store = s3(&server, "bundles").await;
    let f = Folders::new();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let cache = f.cache(store.clone(), Duration::from_secs(10), clock.clone());
    let calc = code("calc", "calc_pkg", Some(""));

    let missing = cache.exists(&calc).await.unwrap_err();
    assert!(matches!(missing, CodeError::NotFound(_)), "{missing:?}");
    assert!(
        missing.to_string().contains("s3://bundles/calc_pkg.zip"),
        "{missing}"
    );
    let err = cache.locate(&calc).await.unwrap_err();
    assert!(
        matches!(err, CodeError::NotFound(_))
            && err.to_string().contains("s3://bundles/calc_pkg.zip"),
        "{err}"
    );

    let v1 = module_zip("calc", "1");
    store.put("calc_pkg.zip", v1.clone()).await.unwrap();
    cache.exists(&calc).await.unwrap();
    // A missing bundle was checked a moment ago: the answer stands until the interval passes.
    assert!(cache.locate(&calc).await.is_err());
    clock.advance_ms(10_000);
    let first = cache.locate(&calc).await.unwrap();
    assert_eq!(first.version, sha256(&v1), "version = content hash");
    assert_eq!(
        first.paths,
        vec![f.extract.join("calc_pkg").join(sha256(&v1))]
    );
    assert_eq!(first.python, None, "no requirements, no venv");
    let root = &first.paths[0];
    assert_eq!(version_of(root, "calc"), "VERSION = \"1\"\n");
    let mode = |p: &str| {
        std::fs::metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("calc/__init__.py"), 0o644, "0666 masked");
    assert_eq!(mode("calc/tool.sh"), 0o755, "0777 masked");
    assert_eq!(mode("calc"), 0o755);
    assert!(
        f.zips
            .join("calc_pkg")
            .join(format!("{}.zip", sha256(&v1)))
            .is_file(),
        "the verified zip is kept"
    );

    // Replaced in S3: the old version serves until the interval has passed.
    let v2 = module_zip("calc", "2");
    store.put("calc_pkg.zip", v2.clone()).await.unwrap();
    clock.advance_ms(9_999);
    assert_eq!(cache.locate(&calc).await.unwrap(), first);
    clock.advance_ms(1);
    let second = cache.locate(&calc).await.unwrap();
    assert_eq!(second.version, sha256(&v2));
    assert_ne!(second.paths, first.paths, "a fresh folder");
    assert_eq!(version_of(&second.paths[0], "calc"), "VERSION = \"2\"\n");
    assert_eq!(
        version_of(root, "calc"),
        "VERSION = \"1\"\n",
        "calls still running on v1 keep their folder"
    );

    // A third version retires the first (two are kept), never the current or the previous.
    let v3 = module_zip("calc", "3");
    store.put("calc_pkg.zip", v3.clone()).await.unwrap();
    clock.advance_ms(10_000);
    let third = cache.locate(&calc).await.unwrap();
    assert_eq!(third.version, sha256(&v3));
    assert!(!root.exists(), "v1 removed");
    assert!(second.paths[0].exists(), "v2 kept");
    let zips = listing(&f.zips.join("calc_pkg"));
    assert!(!zips.iter().any(|z| z.contains(&sha256(&v1))), "{zips:?}");
    assert!(zips.iter().any(|z| z.contains(&sha256(&v2))), "{zips:?}");

    // Back to old content: a new ETag for known bytes reuses nothing stale and works.
    store.put("calc_pkg.zip", v2.clone()).await.unwrap();
    clock.advance_ms(10_000);
    assert_eq!(cache.locate(&calc).await.unwrap().version, sha256(&v2));

    // The store goes down: the current version keeps serving.
    drop(server);
    clock.advance_ms(10_000);
    assert_eq!(cache.locate(&calc).await.unwrap().version, sha256(&v2));
    assert!(matches!(
        cache.exists(&calc).await,
        Err(CodeError::Unavailable(_))
    ));
    // A bundle never seen while the store is down is unavailable, not missing.
    let err = cache
        .locate(&code("other", "other", Some("s3")))
        .await
        .unwrap_err();
    assert!(matches!(err, CodeError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("s3://bundles/other.zip"), "{err}");
}

#[tokio::test]
async fn concurrent_first_locates_download_once() {
    let f = Folders::new();
    let store = Counting::new(f.store());
    store
        .put("calc.zip", module_zip("calc", "1"))
        .await
        .unwrap();
    // Interval 0: every locate asks the store, and still downloads only when the ETag changes.
    let cache = f.cache(store.clone(), Duration::ZERO, Arc::new(ManualClock::new(0)));
    let calc = code("calc", "calc", Some(""));
    let all = futures::future::join_all((0..16).map(|_| cache.locate(&calc))).await;
    let first = all[0].as_ref().unwrap().clone();
    assert!(all.iter().all(|r| r.as_ref().unwrap() == &first));
    assert_eq!(
        store.gets(),
        1,
        "one download for 16 concurrent first calls"
    );
    let heads = store.heads();
    assert_eq!(
        heads, 1,
        "the calls that waited took the answer of the check made meanwhile"
    );
    for _ in 0..3 {
        assert_eq!(cache.locate(&calc).await.unwrap(), first);
    }
    assert_eq!(store.heads(), heads + 3, "interval 0 checks on every call");
    assert_eq!(store.gets(), 1);
    let extracted = listing(&f.extract);
    assert!(
        !extracted.iter().any(|p| p.contains(".tmp-")),
        "{extracted:?}"
    );
}

#[tokio::test]
async fn a_restart_reuses_the_cache_and_a_bad_replacement_fails_only_its_bundle() {
    let f = Folders::new();
    let store = Counting::new(f.store());
    let v1 = module_zip("calc", "1");
    store.put("calc.zip", v1.clone()).await.unwrap();
    store
        .put("other.zip", module_zip("other", "1"))
        .await
        .unwrap();
    let calc = code("calc", "calc", Some(""));
    let other = code("other", "other", Some(""));
    let clock = Arc::new(ManualClock::new(0));
    let first = f
        .cache(store.clone(), Duration::from_secs(5), clock.clone())
        .locate(&calc)
        .await
        .unwrap();
    assert_eq!(store.gets(), 1);

    // A new process over the same folders: the ETag matches what it recorded, no download.
    let cache = f.cache(store.clone(), Duration::from_secs(5), clock.clone());
    assert_eq!(cache.locate(&calc).await.unwrap(), first);
    assert_eq!(store.gets(), 1, "unchanged object, nothing downloaded");
    // Unpacked folders wiped (a cleaned /tmp), archive kept: unpacked again, still no download.
    std::fs::remove_dir_all(f.extract.join("calc")).unwrap();
    let cache = f.cache(store.clone(), Duration::from_secs(5), clock.clone());
    assert_eq!(cache.locate(&calc).await.unwrap(), first);
    assert_eq!(store.gets(), 1);
    assert!(first.paths[0].join("calc/__init__.py").is_file());

    // The object turns bad: its calls fail (without a download per call), others do not.
    cache.locate(&other).await.unwrap();
    store
        .put("calc.zip", bytes::Bytes::from_static(b"not a zip"))
        .await
        .unwrap();
    clock.advance_ms(5_000);
    let gets = store.gets();
    for _ in 0..3 {
        let err = cache.locate(&calc).await.unwrap_err();
        assert!(err.to_string().contains("corrupt archive"), "{err}");
        clock.advance_ms(5_000);
    }
    assert_eq!(
        store.gets(),
        gets + 1,
        "a known-bad object is not downloaded again"
    );
    cache.locate(&other).await.unwrap();
    assert!(
        first.paths[0].exists(),
        "the last good version stays on disk"
    );
    // Fixed: back in service.
    let v2 = module_zip("calc", "2");
    store.put("calc.zip", v2.clone()).await.unwrap();
    clock.advance_ms(5_000);
    assert_eq!(cache.locate(&calc).await.unwrap().version, sha256(&v2));
}

#[tokio::test]
async fn local_zip_files_and_folders_are_sources() {
    let f = Folders::new();
    let clock = Arc::new(ManualClock::new(0));
    let cache = f.cache(f.store(), Duration::from_secs(5), clock.clone());
    let zip_path = f.dir.path().join("mine.zip");
    let v1 = module_zip("mine", "1");
    std::fs::write(&zip_path, &v1).unwrap();
    let mine = code("mine", "mine", Some(zip_path.to_str().unwrap()));
    cache.exists(&mine).await.unwrap();
    let first = cache.locate(&mine).await.unwrap();
    assert_eq!(first.version, sha256(&v1));
    assert_eq!(version_of(&first.paths[0], "mine"), "VERSION = \"1\"\n");
    let v2 = module_zip("mine", "22");
    std::fs::write(&zip_path, &v2).unwrap();
    clock.advance_ms(5_000);
    assert_eq!(cache.locate(&mine).await.unwrap().version, sha256(&v2));

    // A folder holding the module: used in place, no copy.
    let folder = f.dir.path().join("src");
    std::fs::create_dir_all(folder.join("inplace")).unwrap();
    std::fs::write(folder.join("inplace/__init__.py"), "").unwrap();
    let inplace = code("inplace", "inplace", Some(folder.to_str().unwrap()));
    cache.exists(&inplace).await.unwrap();
    assert_eq!(
        cache.locate(&inplace).await.unwrap().paths,
        vec![folder.clone()]
    );
    let absent = code("nothere", "nothere", Some(folder.to_str().unwrap()));
    assert!(matches!(
        cache.exists(&absent).await,
        Err(CodeError::NotFound(_))
    ));

    let gone = f.dir.path().join("gone.zip");
    let err = cache
        .locate(&code("g", "g", Some(gone.to_str().unwrap())))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CodeError::NotFound(_)) && err.to_string().contains("gone.zip"),
        "{err}"
    );
    // An installed package needs nothing.
    let installed = cache.locate(&code("json", "json", None)).await.unwrap();
    assert_eq!(installed.version, "installed");
}

/// The `.pyc` files under `dir` (relative paths).
fn bytecode_in(dir: &std::path::Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter_map(|p| p.split_once(' ').map(|(path, _)| path.to_string()))
        .filter(|p| p.ends_with(".pyc"))
        .collect()
}

#[tokio::test]
async fn sources_are_compiled_at_install_and_a_file_that_does_not_compile_is_left_alone() {
    let f = Folders::new();
    let store = f.store();
    let cache = f.cache(
        store.clone(),
        Duration::from_secs(5),
        Arc::new(ManualClock::new(0)),
    );
    store
        .put(
            "compiled.zip",
            zip_of(&[
                ("compiled/__init__.py", b"from .tools import VALUE\n", 0o644),
                ("compiled/tools.py", b"VALUE = 41 + 1\n", 0o644),
                // Python 2, as vendored test folders still carry: it cannot compile.
                ("compiled/legacy.py", b"print \"old\"\n", 0o644),
                (
                    "vendored/helper.py",
                    b"def helper():\n    return 1\n",
                    0o644,
                ),
            ]),
        )
        .await
        .unwrap();
    let located = cache
        .locate(&code("compiled", "compiled", Some("")))
        .await
        .expect("a file that does not compile refuses nothing");
    let root = &located.paths[0];
    let tag = {
        let out = std::process::Command::new(python())
            .args(["-c", "import sys; print(sys.implementation.cache_tag)"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(
        bytecode_in(root),
        vec![
            format!("compiled/__pycache__/__init__.{tag}.pyc"),
            format!("compiled/__pycache__/tools.{tag}.pyc"),
            format!("vendored/__pycache__/helper.{tag}.pyc"),
        ],
        "everything that compiles, once, before the swap; nothing for legacy.py"
    );
    // A worker's import loads that bytecode (its view is read-only: it could not write any).
    let check = std::process::Command::new(python())
        .args([
            "-I",
            "-S",
            "-v",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import compiled; print(compiled.VALUE)",
        ])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "42");
    let trace = String::from_utf8_lossy(&check.stderr);
    let loaded = format!(
        "code object from '{}/compiled/__pycache__/tools.{tag}.pyc'",
        root.display()
    );
    assert!(trace.contains(&loaded), "{loaded} not in the import trace");
}

#[tokio::test]
async fn requirements_are_installed_from_vendored_wheels_into_the_bundles_venv() {
    let f = Folders::new();
    let store = f.store();
    let cache = f.cache(
        store.clone(),
        Duration::from_secs(10),
        Arc::new(ManualClock::new(0)),
    );
    let wheel = wheel("tinydep", "1.0", "from the vendored wheel");
    let bundle = zip_of(&[
        (
            "uses/__init__.py",
            b"import tinydep\nVALUE = tinydep.VALUE\n",
            0o644,
        ),
        ("requirements.txt", b"tinydep==1.0\n", 0o644),
        ("wheels/tinydep-1.0-py3-none-any.whl", &wheel, 0o644),
    ]);
    store.put("uses.zip", bundle.clone()).await.unwrap();
    let found = cache.locate(&code("uses", "uses", Some(""))).await.unwrap();
    let python = found.python.clone().expect("a venv interpreter");
    assert_eq!(
        python,
        f.extract
            .join("uses")
            .join(format!("{}.venv", sha256(&bundle)))
            .join("bin/python")
    );
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg("import sys; sys.path.insert(0, sys.argv[1]); import uses; print(uses.VALUE); print(sys.prefix != sys.base_prefix)")
        .arg(&found.paths[0])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "from the vendored wheel\nTrue\n");
    // The base interpreter does not have it: the venv is the bundle's own.
    let base = std::process::Command::new(crate::bundle_kit::python())
        .args(["-c", "import tinydep"])
        .output()
        .unwrap();
    assert!(!base.status.success());
    assert!(!listing(&f.extract).iter().any(|p| p.contains(".tmp-")));

    // A requirement that cannot be satisfied: a clear error with pip's reason, nothing kept.
    let broken = zip_of(&[
        ("broken/__init__.py", b"", 0o644),
        ("requirements.txt", b"tinydep==9.9\n", 0o644),
        ("wheels/tinydep-1.0-py3-none-any.whl", &wheel, 0o644),
    ]);
    store.put("broken.zip", broken).await.unwrap();
    let before = f.cache_listing();
    let err = cache
        .locate(&code("broken", "broken", Some("")))
        .await
        .unwrap_err();
    assert!(matches!(err, CodeError::Invalid(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("installing its requirements failed") && msg.contains("tinydep==9.9"),
        "{msg}"
    );
    assert_eq!(f.cache_listing(), before);
}

#[tokio::test]
async fn two_caches_share_folders_without_clobbering_each_other() {
    // Two nodes on one host (same FUNCT_* folders) installing the same new bundle at once.
    let f = Folders::new();
    let store = f.store();
    store
        .put("calc.zip", module_zip("calc", "1"))
        .await
        .unwrap();
    let a = f.cache(store.clone(), Duration::ZERO, Arc::new(ManualClock::new(0)));
    let b = BundleCache::new(store.clone(), f.settings(Duration::ZERO));
    let calc = code("calc", "calc", Some(""));
    let (x, y) = tokio::join!(a.locate(&calc), b.locate(&calc));
    assert_eq!(x.unwrap(), y.unwrap());
    let extracted = listing(&f.extract);
    assert!(
        !extracted.iter().any(|p| p.contains(".tmp-")),
        "{extracted:?}"
    );
}
