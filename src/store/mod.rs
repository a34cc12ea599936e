//! The durable catalog store: function definitions, modules, settings and call history per
//! partition, in the Python daemon's tables (`mcp-functions`, `mcp-modules`, `mcp-settings`,
//! `mcp-function_calls`, reference section 3) plus two of our own (function versions, audit
//! trail). One `CatalogStore` trait with an embedded implementation (`SqliteStore`, the
//! default: a file in the data folder) and a DynamoDB one (`DynamoStore`), chosen once at
//! start-up by `open`; both pass the same contract suite (`testsuite.rs`).
//!
//! The store enforces shape (required fields, enum values, the 400 KB item limit), keys,
//! versions, atomicity and partition isolation. What a record *means* (schemas, module
//! references) is the catalog's to check before it calls the store.

mod error;
mod plan;
mod query;
mod records;
mod settings;
mod shape;
mod sqlite;
#[cfg(test)]
mod testsuite;
mod time;

use async_trait::async_trait;

pub use error::{StoreError, StoreErrorKind, StoreResult};
pub use query::{
    AuditFilter, CallFilter, FunctionFilter, MAX_PAGE_LIMIT, ModuleFilter, Page, Paged,
    SettingFilter,
};
pub use records::{
    AuditAction, AuditEntity, AuditEntry, CallPatch, CallRecord, CallStatus, Change, FunctionDraft,
    FunctionRecord, FunctionVersion, McpType, ModuleDraft, ModuleRecord, PartitionSnapshot,
    SettingDraft, SettingRecord,
};
pub use settings::{Backend, StoreSettings, TableNames};
pub use shape::{MAX_ITEM_BYTES, item_size};
pub use sqlite::SqliteStore;
pub use time::{Timestamp, new_key};

use crate::protocol::PartitionKey;

/// What a batch of call writes did: the rest of the batch is written even when some records
/// are refused (a record too large, a bad shape), so one bad call never costs the others.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// Records written.
    pub written: usize,
    /// `(mcp_function_call_uuid, why)` of each record not written.
    pub refused: Vec<(String, StoreError)>,
}

/// Where the catalog's records live. Every method works inside the one partition it is
/// given, and nothing written in one partition is ever visible in another; the exceptions
/// say so (`partitions`, `put_calls`, whose records carry their own partition).
///
/// Reads of a missing record are `Ok(None)`, deletes of one `Ok(false)`, never errors. Lists
/// return one `Page` of every matching row in a stable order, with `total` counting them all.
/// Writes check shape first (`Invalid`, `TooLarge`) and then write all or nothing.
#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    // --- functions (`mcp-functions`), versioned and audited -------------------------------

    /// One function (enabled or not).
    async fn get_function(
        &self,
        pk: &PartitionKey,
        name: &str,
    ) -> StoreResult<Option<FunctionRecord>>;

    /// The functions that match, ordered by name.
    async fn list_functions(
        &self,
        pk: &PartitionKey,
        filter: &FunctionFilter,
        page: Page,
    ) -> StoreResult<Paged<FunctionRecord>>;

    /// Inserts or replaces the function `draft.name` (upsert by key, as the original). In one
    /// atomic write: the record at `version + 1` (1 for a new one; `created_at` kept), the
    /// record it replaces in the versions table, and an audit entry (`insert`/`update`, or
    /// `load`). `change.expected_version` makes it conditional; a mismatch, or another writer
    /// winning the race, is `Conflict` with nothing written. Without an expectation a lost
    /// race is retried, so every write lands as exactly one version.
    async fn put_function(
        &self,
        pk: &PartitionKey,
        draft: FunctionDraft,
        change: &Change,
    ) -> StoreResult<FunctionRecord>;

    /// Deletes a function, keeping its last record in the versions table (a later insert or
    /// rollback continues its version numbers) and auditing `delete`. `Ok(false)` when it did
    /// not exist; `change.expected_version` is honoured as by `put_function`.
    async fn delete_function(
        &self,
        pk: &PartitionKey,
        name: &str,
        change: &Change,
    ) -> StoreResult<bool>;

    /// Every version of a function, newest first, the current one (if it exists) included and
    /// flagged. A function that never existed has none (total 0).
    async fn function_versions(
        &self,
        pk: &PartitionKey,
        name: &str,
        page: Page,
    ) -> StoreResult<Paged<FunctionVersion>>;

    /// A new change whose content is version `version`'s (audited `rollback`): the result has
    /// a new version number, and the current record goes to the versions table like any
    /// change. Works on a deleted function too (it comes back). `NotFound` for a version that
    /// never existed; `change.expected_version` as by `put_function`.
    async fn rollback_function(
        &self,
        pk: &PartitionKey,
        name: &str,
        version: u64,
        change: &Change,
    ) -> StoreResult<FunctionRecord>;

    // --- modules (`mcp-modules`), audited --------------------------------------------------

    async fn get_module(
        &self,
        pk: &PartitionKey,
        module_name: &str,
    ) -> StoreResult<Option<ModuleRecord>>;

    /// The modules that match, ordered by module name.
    async fn list_modules(
        &self,
        pk: &PartitionKey,
        filter: &ModuleFilter,
        page: Page,
    ) -> StoreResult<Paged<ModuleRecord>>;

    /// Inserts or replaces a module (upsert by key), with its audit entry, atomically.
    async fn put_module(
        &self,
        pk: &PartitionKey,
        draft: ModuleDraft,
        change: &Change,
    ) -> StoreResult<ModuleRecord>;

    async fn delete_module(
        &self,
        pk: &PartitionKey,
        module_name: &str,
        change: &Change,
    ) -> StoreResult<bool>;

    // --- settings (`mcp-settings`), audited ------------------------------------------------

    async fn get_setting(
        &self,
        pk: &PartitionKey,
        setting_id: &str,
    ) -> StoreResult<Option<SettingRecord>>;

    /// The settings that match, ordered by setting id.
    async fn list_settings(
        &self,
        pk: &PartitionKey,
        filter: &SettingFilter,
        page: Page,
    ) -> StoreResult<Paged<SettingRecord>>;

    /// Without `setting_id`: a new row under a generated 20-digit id. With one: replaces that
    /// row's `setting`, which must exist, else `NotFound` ("Cannot find the setting with the
    /// partition_key/setting_id ..."). Audited, atomically.
    async fn put_setting(
        &self,
        pk: &PartitionKey,
        draft: SettingDraft,
        change: &Change,
    ) -> StoreResult<SettingRecord>;

    async fn delete_setting(
        &self,
        pk: &PartitionKey,
        setting_id: &str,
        change: &Change,
    ) -> StoreResult<bool>;

    // --- calls (`mcp-function_calls`), not audited -----------------------------------------

    async fn get_call(&self, pk: &PartitionKey, uuid: &str) -> StoreResult<Option<CallRecord>>;

    /// The calls that match, newest `updated_at` first (ties by uuid, descending).
    async fn list_calls(
        &self,
        pk: &PartitionKey,
        filter: &CallFilter,
        page: Page,
    ) -> StoreResult<Paged<CallRecord>>;

    /// The original's `insertUpdateMcpFunctionCall`: without a uuid, inserts a new call
    /// (`status` defaults to `initial`); with one, sets the given fields of that call, which
    /// must exist ("Cannot find the function call ..."), plus `updated_by` and `updated_at`.
    async fn upsert_call(
        &self,
        pk: &PartitionKey,
        patch: CallPatch,
        updated_by: &str,
    ) -> StoreResult<CallRecord>;

    async fn delete_call(&self, pk: &PartitionKey, uuid: &str) -> StoreResult<bool>;

    /// The recorder's batch: each record is written whole (inserted or replaced), each in its
    /// own partition. Cheap: SQLite one transaction, DynamoDB `BatchWriteItem` of 25 with its
    /// unprocessed items retried. Refused records are reported, the rest written; an error is
    /// returned only when the backend failed (then some records may have been written, which
    /// a retry of the same batch repairs: the writes are idempotent).
    async fn put_calls(&self, calls: &[CallRecord]) -> StoreResult<BatchReport>;

    // --- audit trail -------------------------------------------------------------------------

    /// Audit entries of the partition, newest first.
    async fn list_audit(
        &self,
        pk: &PartitionKey,
        filter: &AuditFilter,
        page: Page,
    ) -> StoreResult<Paged<AuditEntry>>;

    // --- loading ------------------------------------------------------------------------------

    /// Every enabled function, every module and every setting of one partition, read in one
    /// go (the catalog is built from it); no paging limit.
    async fn load_partition(&self, pk: &PartitionKey) -> StoreResult<PartitionSnapshot>;

    /// Every partition that holds a function, module or setting (across partitions on
    /// purpose: cache warm-up and `DELETE /admin/cache`). Keys stored by others that are not
    /// valid partition keys are skipped.
    async fn partitions(&self) -> StoreResult<Vec<PartitionKey>>;

    /// Fails when the backend cannot be reached (health checks).
    async fn ping(&self) -> StoreResult<()>;

    /// How logs name this store (`sqlite:/data/catalog.sqlite3`, `dynamodb:us-east-1`).
    fn describe(&self) -> String;
}
