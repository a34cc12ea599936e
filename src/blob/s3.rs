//! `S3BlobStore`: blobs as objects of one S3 bucket, through the official AWS SDK. The SDK is
//! built without its default features (no aws-lc): its HTTPS client is hyper 1 + rustls on
//! ring, passed in explicitly. Credentials come from the SDK's standard chain unless given.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls;
use bytes::{Bytes, BytesMut};

use super::{BlobError, BlobErrorKind, BlobMeta, BlobStore, validate_key};

/// How to reach S3. Every field left `None` falls back to the SDK's own chain (profile files,
/// `AWS_*` variables, instance metadata).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `REGION_NAME` / `AWS_REGION`.
    pub region: Option<String>,
    /// A custom endpoint (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`: moto, MinIO, ...), used
    /// with path-style addressing since `<bucket>.127.0.0.1` does not resolve.
    pub endpoint: Option<String>,
    /// Fixed credentials (tests against moto); `None` uses the standard chain.
    pub credentials: Option<StaticCredentials>,
}

/// An access key pair given explicitly. Its `Debug` hides the secret.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .finish()
    }
}

pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    /// A store on an existing client (one `SdkConfig` shared with other AWS clients).
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// Builds the SDK configuration and the client. Nothing is sent yet: a bucket that cannot
    /// be reached fails the first operation, not start-up.
    pub async fn connect(bucket: &str, settings: &S3Settings) -> Result<Self, BlobError> {
        if bucket.trim().is_empty() {
            return Err(BlobError::new(
                BlobErrorKind::Invalid,
                "the S3 bucket name is empty",
            ));
        }
        // Without `default-features` the SDK compiles in no HTTP client: this one is required.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts);
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(c) = &settings.credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
                None,
                "mcp-daemon-settings",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(BlobError::new(
                BlobErrorKind::Invalid,
                format!("no AWS region for bucket {bucket}: set REGION_NAME or AWS_REGION"),
            ));
        }
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk);
        if let Some(endpoint) = &settings.endpoint {
            conf = conf.endpoint_url(endpoint.clone());
        }
        if settings.endpoint.is_some() || sdk.endpoint_url().is_some() {
            conf = conf.force_path_style(true);
        }
        Ok(Self::new(
            aws_sdk_s3::Client::from_conf(conf.build()),
            bucket,
        ))
    }

    fn err<E>(&self, key: &str, op: &str, err: SdkError<E, HttpResponse>) -> BlobError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().unwrap_or_default().to_string();
        let kind = match &err {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => BlobErrorKind::Unavailable,
            SdkError::ServiceError(_) => match status {
                Some(404) => BlobErrorKind::NotFound,
                // Wrong or missing credentials, a bucket policy: fixable without a restart.
                Some(401 | 403) => BlobErrorKind::Unavailable,
                Some(400..=499) => BlobErrorKind::Invalid,
                _ => BlobErrorKind::Unavailable,
            },
            _ => BlobErrorKind::Internal,
        };
        let message = match (kind, code.as_str()) {
            (BlobErrorKind::NotFound, "NoSuchBucket") => {
                format!(
                    "S3 bucket {} does not exist ({op} {})",
                    self.bucket,
                    self.location(key)
                )
            }
            _ => format!(
                "S3 {op} {} failed: {}",
                self.location(key),
                DisplayErrorContext(&err)
            ),
        };
        BlobError::with_source(kind, message, err)
    }
}

fn etag_of(raw: Option<&str>) -> String {
    raw.unwrap_or_default().trim_matches('"').to_string()
}

fn size_of(raw: Option<i64>) -> u64 {
    raw.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, BlobError> {
        validate_key(key)?;
        let sent = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Some(BlobMeta {
                etag: etag_of(out.e_tag()),
                size: size_of(out.content_length()),
            })),
            // A HEAD answer has no body, so a missing bucket looks like a missing key here.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(self.err(key, "HEAD", e)),
        }
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<(Bytes, BlobMeta)>, BlobError> {
        validate_key(key)?;
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.err(key, "GET", e)),
        };
        let too_large = |size: u64| {
            BlobError::new(
                BlobErrorKind::TooLarge,
                format!(
                    "{} is {size} bytes, over the limit of {max_bytes} bytes",
                    self.location(key)
                ),
            )
        };
        // The headers arrive before the body: an oversized object is refused here, and
        // dropping `out` closes the connection without reading the content.
        let declared = size_of(out.content_length());
        if declared > max_bytes {
            return Err(too_large(declared));
        }
        let etag = etag_of(out.e_tag());
        let mut body = out.body;
        let mut buf = BytesMut::with_capacity(declared as usize);
        loop {
            let chunk = body.try_next().await.map_err(|e| {
                BlobError::with_source(
                    BlobErrorKind::Unavailable,
                    format!("S3 GET {} broke off: {e}", self.location(key)),
                    e,
                )
            })?;
            let Some(chunk) = chunk else { break };
            if (buf.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large((buf.len() + chunk.len()) as u64));
            }
            buf.extend_from_slice(&chunk);
        }
        let bytes = buf.freeze();
        let meta = BlobMeta {
            etag,
            size: bytes.len() as u64,
        };
        Ok(Some((bytes, meta)))
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        validate_key(key)?;
        let size = bytes.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.err(key, "PUT", e))?;
        Ok(BlobMeta {
            etag: etag_of(out.e_tag()),
            size,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        // S3 answers 204 for a missing key too: idempotent by nature.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.err(key, "DELETE", e))?;
        Ok(())
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::blob::testsuite::moto;

    fn settings(server: &moto::MotoServer) -> S3Settings {
        S3Settings {
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint()),
            credentials: Some(StaticCredentials {
                access_key_id: "test".into(),
                secret_access_key: "test".into(),
                session_token: None,
            }),
        }
    }

    #[tokio::test]
    async fn s3_store_meets_the_contract_on_moto() {
        let server = moto::MotoServer::start();
        server.create_bucket("contract");
        let store = S3BlobStore::connect("contract", &settings(&server))
            .await
            .unwrap();
        super::super::testsuite::blob_store_contract(&store).await;
    }

    #[tokio::test]
    async fn a_missing_bucket_and_a_dead_endpoint_are_told_apart() {
        let server = moto::MotoServer::start();
        let store = S3BlobStore::connect("no-such-bucket", &settings(&server))
            .await
            .unwrap();
        assert_eq!(store.head("x.zip").await.unwrap(), None, "HEAD cannot tell");
        let err = store.get("x.zip", 10).await.unwrap_err();
        assert_eq!(err.kind, BlobErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("no-such-bucket"), "{err}");

        let mut dead = settings(&server);
        dead.endpoint = Some(format!("http://127.0.0.1:{}", moto::free_port()));
        let store = S3BlobStore::connect("contract", &dead).await.unwrap();
        let err = store.head("x.zip").await.unwrap_err();
        assert_eq!(err.kind, BlobErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("s3://contract/x.zip"), "{err}");
    }

    #[tokio::test]
    async fn a_region_is_required() {
        let settings = S3Settings {
            region: None,
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials: None,
        };
        // The machine may define a region in its profile; only check the message when not.
        if let Err(err) = S3BlobStore::connect("b", &settings).await {
            assert_eq!(err.kind, BlobErrorKind::Invalid);
            assert!(err.to_string().contains("REGION_NAME"), "{err}");
        }
        let debug = format!(
            "{:?}",
            StaticCredentials {
                access_key_id: "AKIA".into(),
                secret_access_key: "hunter2".into(),
                session_token: None
            }
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
