//! The contract every `BlobStore` must meet (see the trait's docs). The folder store runs it in
//! every test run; the S3 store runs the very same suite against moto's S3 server.

use bytes::Bytes;

use super::{BlobErrorKind, BlobStore};

#[path = "../../tests/support/moto.rs"]
pub(crate) mod moto;

pub async fn blob_store_contract(store: &dyn BlobStore) {
    // Missing is Ok(None) / Ok(()), never an error.
    assert_eq!(store.head("missing.zip").await.unwrap(), None);
    assert!(store.get("missing.zip", 1024).await.unwrap().is_none());
    store.delete("missing.zip").await.unwrap();

    // put -> head -> get agree on size and ETag, and get returns the bytes.
    let body = Bytes::from_static(b"first version of the bundle");
    let put = store.put("pkg.zip", body.clone()).await.unwrap();
    assert_eq!(put.size, body.len() as u64);
    assert!(
        !put.etag.is_empty() && !put.etag.contains('"'),
        "etag without quotes: {}",
        put.etag
    );
    let head = store.head("pkg.zip").await.unwrap().expect("stored");
    assert_eq!(head, put, "head describes what put stored");
    let (got, meta) = store
        .get("pkg.zip", 1 << 20)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(got, body);
    assert_eq!(meta, put);

    // Keys with folders work and are independent objects.
    let nested = store
        .put("mcp_content/1234.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        store.head("mcp_content/1234.json").await.unwrap(),
        Some(nested)
    );

    // Replacing changes the ETag; the same content again gives the same ETag.
    let second = store
        .put("pkg.zip", Bytes::from_static(b"second version"))
        .await
        .unwrap();
    assert_ne!(second.etag, put.etag, "new content, new etag");
    assert_eq!(store.head("pkg.zip").await.unwrap(), Some(second.clone()));
    let again = store.put("pkg.zip", body.clone()).await.unwrap();
    assert_eq!(again.etag, put.etag, "equal content, equal etag");

    // Too large: refused with TooLarge (and the object is still there).
    let err = store.get("pkg.zip", 4).await.unwrap_err();
    assert_eq!(err.kind, BlobErrorKind::TooLarge, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    let (exact, _) = store
        .get("pkg.zip", body.len() as u64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exact, body, "an object exactly at the limit is accepted");

    // Empty objects are objects.
    let empty = store.put("empty", Bytes::new()).await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(store.get("empty", 0).await.unwrap().unwrap().0.len(), 0);

    // A larger body survives the round trip byte for byte.
    let big: Bytes = (0..3_000_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let meta = store.put("big.bin", big.clone()).await.unwrap();
    assert_eq!(meta.size, big.len() as u64);
    let (back, _) = store
        .get("big.bin", big.len() as u64)
        .await
        .unwrap()
        .unwrap();
    assert!(back == big, "3 MB body round trip");

    // Delete removes, and is idempotent.
    store.delete("pkg.zip").await.unwrap();
    assert_eq!(store.head("pkg.zip").await.unwrap(), None);
    assert!(store.get("pkg.zip", 1024).await.unwrap().is_none());
    store.delete("pkg.zip").await.unwrap();
    for key in ["mcp_content/1234.json", "empty", "big.bin"] {
        store.delete(key).await.unwrap();
    }

    // Bad keys are refused before the backend is asked.
    for bad in ["../escape", "/abs.zip", "a//b", ""] {
        let err = store.head(bad).await.unwrap_err();
        assert_eq!(err.kind, BlobErrorKind::Invalid, "{bad}: {err}");
        let err = store.put(bad, Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind, BlobErrorKind::Invalid, "{bad}: {err}");
    }

    // The location names the object.
    assert!(store.location("pkg.zip").ends_with("pkg.zip"));
}
