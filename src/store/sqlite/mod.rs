//! `SqliteStore`: the embedded catalog store, one SQLite file (default
//! `DATA_DIR/catalog.sqlite3`). Safe for several processes on one host: WAL (readers never
//! block the writer), `synchronous=NORMAL`, a busy timeout, and `BEGIN IMMEDIATE` for every
//! write, so two writers queue instead of failing on a lock upgrade. Blocking calls run on
//! the runtime's blocking pool, each on a connection of a small pool. Single host only: on
//! NFS or across hosts use DynamoDB.

mod calls;
mod functions;
mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{StoreError, StoreErrorKind, StoreResult};
use super::query::{
    AuditFilter, CallFilter, FunctionFilter, ModuleFilter, Page, Paged, SettingFilter,
};
use super::records::{
    AuditEntry, CallPatch, CallRecord, Change, FunctionDraft, FunctionRecord, FunctionVersion,
    ModuleDraft, ModuleRecord, PartitionSnapshot, SettingDraft, SettingRecord,
};
use super::settings::TableNames;
use super::time::{Ticker, Timestamp};
use super::{BatchReport, CatalogStore};
use crate::clock::Clock;
use crate::protocol::PartitionKey;
use schema::Tables;

/// How long one statement waits for another process's write lock before `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections kept open between operations.
const POOL_SIZE: usize = 4;

pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// What the blocking closures share.
struct Inner {
    path: PathBuf,
    tables: Tables,
    /// Idle connections; an operation takes one (or opens one) and gives it back.
    pool: Mutex<Vec<Connection>>,
    /// The only source of `created_at`/`updated_at` and generated keys.
    ticker: Ticker,
}

/// Maps a SQLite error: a lock held too long by another process is `Unavailable`.
pub(super) fn sql_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreErrorKind::Unavailable,
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::DiskFull) => {
            StoreErrorKind::Unavailable
        }
        _ => StoreErrorKind::Internal,
    };
    StoreError::with_source(kind, format!("catalog database: {e}"), e)
}

/// A record as the JSON of its `record` column.
pub(super) fn to_json(record: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::internal(format!("cannot serialize a record: {e}")))
}

/// A record back from its `record` column.
pub(super) fn from_json<T: DeserializeOwned>(table: &str, raw: &str) -> StoreResult<T> {
    serde_json::from_str(raw)
        .map_err(|e| StoreError::internal(format!("unreadable row in {table}: {e}")))
}

fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        StoreError::with_source(
            StoreErrorKind::Unavailable,
            format!("cannot open the catalog database {}: {e}", path.display()),
            e,
        )
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    // WAL persists in the file; setting it again is cheap and makes every opener agree.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql_err)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(sql_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating it and its folder when missing) and migrates the database at `path`.
    pub async fn open(
        path: &Path,
        tables: &TableNames,
        clock: Arc<dyn Clock>,
    ) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::with_source(
                    StoreErrorKind::Unavailable,
                    format!("cannot create {}: {e}", dir.display()),
                    e,
                )
            })?;
        }
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            tables: Tables::new(tables),
            pool: Mutex::new(Vec::new()),
            ticker: Ticker::new(clock),
        });
        let store = Self { inner };
        store
            .blocking(|inner, conn| schema::migrate(conn, &inner.tables))
            .await?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let taken = inner.pool.lock().pop();
            let mut conn = match taken {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let out = f(&inner, &mut conn);
            let mut pool = inner.pool.lock();
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::internal(format!("catalog database task failed: {e}")))?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed when `f` succeeds, rolled back
    /// (nothing written) when it fails. The transaction is retried when another process held
    /// the lock for longer than the busy timeout.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Inner, &Transaction<'_>, Timestamp) -> StoreResult<T> + Send + 'static,
    {
        self.blocking(move |inner, conn| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let now = inner.ticker.now();
                let result = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql_err)
                    .and_then(|tx| {
                        let out = f(inner, &tx, now)?;
                        tx.commit().map_err(sql_err)?;
                        Ok(out)
                    });
                match result {
                    Err(e) if e.kind == StoreErrorKind::Unavailable && attempt < 3 => continue,
                    other => return other,
                }
            }
        })
        .await
    }

    /// Runs `f` on a connection for reading (a WAL snapshot per statement).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Connection) -> StoreResult<T> + Send + 'static,
    {
        self.blocking(move |inner, conn| f(inner, conn)).await
    }
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn get_function(
        &self,
        pk: &PartitionKey,
        name: &str,
    ) -> StoreResult<Option<FunctionRecord>> {
        let (pk, name) = (pk.clone(), name.to_string());
        self.read(move |i, c| functions::get(c, &i.tables, &pk, &name))
            .await
    }

    async fn list_functions(
        &self,
        pk: &PartitionKey,
        filter: &FunctionFilter,
        page: Page,
    ) -> StoreResult<Paged<FunctionRecord>> {
        let (pk, filter) = (pk.clone(), filter.clone());
        self.read(move |i, c| functions::list(c, &i.tables, &pk, &filter, page))
            .await
    }

    async fn put_function(
        &self,
        pk: &PartitionKey,
        draft: FunctionDraft,
        change: &Change,
    ) -> StoreResult<FunctionRecord> {
        super::shape::check_function(&draft)?;
        super::shape::check_actor(&change.updated_by)?;
        let (pk, change) = (pk.clone(), change.clone());
        self.write(move |i, tx, now| {
            functions::put(tx, &i.tables, &pk, draft.clone(), &change, now, None)
        })
        .await
    }

    async fn delete_function(
        &self,
        pk: &PartitionKey,
        name: &str,
        change: &Change,
    ) -> StoreResult<bool> {
        super::shape::check_actor(&change.updated_by)?;
        let (pk, name, change) = (pk.clone(), name.to_string(), change.clone());
        self.write(move |i, tx, now| functions::delete(tx, &i.tables, &pk, &name, &change, now))
            .await
    }

    async fn function_versions(
        &self,
        pk: &PartitionKey,
        name: &str,
        page: Page,
    ) -> StoreResult<Paged<FunctionVersion>> {
        let (pk, name) = (pk.clone(), name.to_string());
        self.read(move |i, c| functions::versions(c, &i.tables, &pk, &name, page))
            .await
    }

    async fn rollback_function(
        &self,
        pk: &PartitionKey,
        name: &str,
        version: u64,
        change: &Change,
    ) -> StoreResult<FunctionRecord> {
        super::shape::check_actor(&change.updated_by)?;
        let (pk, name, change) = (pk.clone(), name.to_string(), change.clone());
        self.write(move |i, tx, now| {
            functions::rollback(tx, &i.tables, &pk, &name, version, &change, now)
        })
        .await
    }

    async fn get_module(
        &self,
        pk: &PartitionKey,
        module_name: &str,
    ) -> StoreResult<Option<ModuleRecord>> {
        let (pk, name) = (pk.clone(), module_name.to_string());
        self.read(move |i, c| rows::get_module(c, &i.tables, &pk, &name))
            .await
    }

    async fn list_modules(
        &self,
        pk: &PartitionKey,
        filter: &ModuleFilter,
        page: Page,
    ) -> StoreResult<Paged<ModuleRecord>> {
        let (pk, filter) = (pk.clone(), filter.clone());
        self.read(move |i, c| rows::list_modules(c, &i.tables, &pk, &filter, page))
            .await
    }

    async fn put_module(
        &self,
        pk: &PartitionKey,
        draft: ModuleDraft,
        change: &Change,
    ) -> StoreResult<ModuleRecord> {
        super::shape::check_module(&draft)?;
        super::shape::check_actor(&change.updated_by)?;
        let (pk, change) = (pk.clone(), change.clone());
        self.write(move |i, tx, now| {
            rows::put_module(tx, &i.tables, &pk, draft.clone(), &change, now)
        })
        .await
    }

    async fn delete_module(
        &self,
        pk: &PartitionKey,
        module_name: &str,
        change: &Change,
    ) -> StoreResult<bool> {
        super::shape::check_actor(&change.updated_by)?;
        let (pk, name, change) = (pk.clone(), module_name.to_string(), change.clone());
        self.write(move |i, tx, now| rows::delete_module(tx, &i.tables, &pk, &name, &change, now))
            .await
    }

    async fn get_setting(
        &self,
        pk: &PartitionKey,
        setting_id: &str,
    ) -> StoreResult<Option<SettingRecord>> {
        let (pk, id) = (pk.clone(), setting_id.to_string());
        self.read(move |i, c| rows::get_setting(c, &i.tables, &pk, &id))
            .await
    }

    async fn list_settings(
        &self,
        pk: &PartitionKey,
        filter: &SettingFilter,
        page: Page,
    ) -> StoreResult<Paged<SettingRecord>> {
        let (pk, filter) = (pk.clone(), filter.clone());
        self.read(move |i, c| rows::list_settings(c, &i.tables, &pk, &filter, page))
            .await
    }

    async fn put_setting(
        &self,
        pk: &PartitionKey,
        draft: SettingDraft,
        change: &Change,
    ) -> StoreResult<SettingRecord> {
        super::shape::check_setting(&draft.setting)?;
        if let Some(id) = &draft.setting_id {
            super::shape::check_key("setting_id", id)?;
        }
        super::shape::check_actor(&change.updated_by)?;
        let (pk, change) = (pk.clone(), change.clone());
        let id = draft
            .setting_id
            .clone()
            .unwrap_or_else(|| super::time::new_key(self.inner.ticker.now()));
        let insert = draft.setting_id.is_none();
        self.write(move |i, tx, now| {
            rows::put_setting(
                tx,
                &i.tables,
                &pk,
                &id,
                insert,
                draft.setting.clone(),
                &change,
                now,
            )
        })
        .await
    }

    async fn delete_setting(
        &self,
        pk: &PartitionKey,
        setting_id: &str,
        change: &Change,
    ) -> StoreResult<bool> {
        super::shape::check_actor(&change.updated_by)?;
        let (pk, id, change) = (pk.clone(), setting_id.to_string(), change.clone());
        self.write(move |i, tx, now| rows::delete_setting(tx, &i.tables, &pk, &id, &change, now))
            .await
    }

    async fn get_call(&self, pk: &PartitionKey, uuid: &str) -> StoreResult<Option<CallRecord>> {
        let (pk, uuid) = (pk.clone(), uuid.to_string());
        self.read(move |i, c| calls::get(c, &i.tables, &pk, &uuid))
            .await
    }

    async fn list_calls(
        &self,
        pk: &PartitionKey,
        filter: &CallFilter,
        page: Page,
    ) -> StoreResult<Paged<CallRecord>> {
        let (pk, filter) = (pk.clone(), filter.clone());
        self.read(move |i, c| calls::list(c, &i.tables, &pk, &filter, page))
            .await
    }

    async fn upsert_call(
        &self,
        pk: &PartitionKey,
        patch: CallPatch,
        updated_by: &str,
    ) -> StoreResult<CallRecord> {
        super::shape::check_actor(updated_by)?;
        let (pk, by) = (pk.clone(), updated_by.to_string());
        let new_id = super::time::new_key(self.inner.ticker.now());
        self.write(move |i, tx, now| calls::upsert(tx, &i.tables, &pk, &patch, &by, &new_id, now))
            .await
    }

    async fn delete_call(&self, pk: &PartitionKey, uuid: &str) -> StoreResult<bool> {
        let (pk, uuid) = (pk.clone(), uuid.to_string());
        self.write(move |i, tx, _| calls::delete(tx, &i.tables, &pk, &uuid))
            .await
    }

    async fn put_calls(&self, records: &[CallRecord]) -> StoreResult<BatchReport> {
        let mut report = BatchReport::default();
        let mut good = Vec::with_capacity(records.len());
        for r in records {
            match super::shape::check_call(r) {
                Ok(()) => good.push(r.clone()),
                Err(e) => report.refused.push((r.mcp_function_call_uuid.clone(), e)),
            }
        }
        if good.is_empty() {
            return Ok(report);
        }
        report.written = self
            .write(move |i, tx, _| {
                for r in &good {
                    calls::put(tx, &i.tables, r)?;
                }
                Ok(good.len())
            })
            .await?;
        Ok(report)
    }

    async fn list_audit(
        &self,
        pk: &PartitionKey,
        filter: &AuditFilter,
        page: Page,
    ) -> StoreResult<Paged<AuditEntry>> {
        let (pk, filter) = (pk.clone(), filter.clone());
        self.read(move |i, c| rows::list_audit(c, &i.tables, &pk, &filter, page))
            .await
    }

    async fn load_partition(&self, pk: &PartitionKey) -> StoreResult<PartitionSnapshot> {
        let pk = pk.clone();
        self.blocking(move |i, conn| {
            // One read transaction: the three lists come from the same snapshot.
            let tx = conn.transaction().map_err(sql_err)?;
            let snapshot = rows::load(&tx, &i.tables, &pk)?;
            tx.commit().map_err(sql_err)?;
            Ok(snapshot)
        })
        .await
    }

    async fn partitions(&self) -> StoreResult<Vec<PartitionKey>> {
        self.read(|i, c| rows::partitions(c, &i.tables)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|_, c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_err))
            .await
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.inner.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::store::testsuite::{catalog_store_contract, pk, tool};

    async fn open_at(path: &Path) -> SqliteStore {
        SqliteStore::open(path, &TableNames::default(), Arc::new(SystemClock))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_at(&dir.path().join("nested/catalog.sqlite3")).await;
        assert!(store.describe().ends_with("nested/catalog.sqlite3"));
        catalog_store_contract(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_on_one_file_write_at_once_without_losing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let (a, b) = (
            Arc::new(open_at(&path).await),
            Arc::new(open_at(&path).await),
        );
        let p = pk("shared");
        let mut tasks = Vec::new();
        for (w, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    store
                        .put_function(&p, tool(&format!("w{w}_{i}")), &Change::by("w"))
                        .await?;
                    // And all of them on one record, too: each write one version.
                    store
                        .put_function(&p, tool("common"), &Change::by("w"))
                        .await?;
                }
                Ok::<_, StoreError>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let all = b
            .list_functions(&p, &FunctionFilter::default(), Page::new(1, 1000))
            .await
            .unwrap();
        assert_eq!(all.total, 201);
        let common = a.get_function(&p, "common").await.unwrap().unwrap();
        assert_eq!(common.version, 200);
        let vs = a
            .function_versions(&p, "common", Page::new(1, 1000))
            .await
            .unwrap();
        assert_eq!(vs.total, 200);
    }

    #[tokio::test]
    async fn records_survive_a_reopen_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let p = pk("keep");
        open_at(&path)
            .await
            .put_function(&p, tool("kept"), &Change::by("a"))
            .await
            .unwrap();
        let again = open_at(&path).await;
        assert!(again.get_function(&p, "kept").await.unwrap().is_some());
        drop(again);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path, &TableNames::default(), Arc::new(SystemClock))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be.
        let path = dir.path().join("catalog.sqlite3");
        std::fs::create_dir(&path).unwrap();
        let err = SqliteStore::open(&path, &TableNames::default(), Arc::new(SystemClock))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind, StoreErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("catalog.sqlite3"), "{err}");
    }
}
