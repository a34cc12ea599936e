//! `StoreError`: a kind (for decisions: the admin API maps `Unavailable` to 503, `Conflict`
//! to a retry-or-refresh answer) plus a message for the caller and a source for the log.

use std::fmt;
use std::sync::Arc;

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Only where a contract says so (a missing record is `Ok(None)` on reads): an update of a
    /// setting or call that does not exist ("Cannot find the ..."), a rollback to a version
    /// that does not exist, a table that is missing.
    NotFound,
    /// An optimistic-concurrency check failed: someone else changed the record first.
    /// Nothing was written.
    Conflict,
    /// The record or request has the wrong shape (a required field missing, an unknown
    /// `mcp_type`/`status`, a JSON payload that is not an object). Nothing was written.
    Invalid,
    /// The item would exceed DynamoDB's 400 KB item limit. Nothing was written.
    TooLarge,
    /// The backend cannot be reached, is throttling or is locked: a later attempt may succeed.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// A bug or data the store cannot read.
    Internal,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::Invalid => "invalid",
            Self::TooLarge => "too large",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        })
    }
}

/// A catalog store failure. Cloneable so that a batch can report one failure per item.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: StoreErrorKind,
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

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Invalid, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Internal, message)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
