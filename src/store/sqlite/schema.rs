//! The SQLite schema: one table per DynamoDB table, named as configured, each with its key
//! as the primary key, the columns the lists filter and sort on (the LSIs' attributes), and
//! the whole record as JSON in `record`. Created or migrated at open, versioned with
//! `PRAGMA user_version`.

use rusqlite::Connection;

use super::super::error::{StoreError, StoreErrorKind, StoreResult};
use super::super::settings::TableNames;
use super::sql_err;

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// A table name as an SQL identifier (the defaults contain `-`).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The configured table names, quoted once.
#[derive(Debug, Clone)]
pub struct Tables {
    pub functions: String,
    pub modules: String,
    pub settings: String,
    pub calls: String,
    pub versions: String,
    pub audit: String,
}

impl Tables {
    pub fn new(names: &TableNames) -> Self {
        Self {
            functions: ident(&names.functions),
            modules: ident(&names.modules),
            settings: ident(&names.settings),
            calls: ident(&names.function_calls),
            versions: ident(&names.function_versions),
            audit: ident(&names.audit_log),
        }
    }
}

fn index(table: &str, suffix: &str) -> String {
    ident(&format!("{}_{suffix}", table.trim_matches('"')))
}

/// Creates what is missing and refuses a file written by a newer schema.
pub fn migrate(conn: &mut Connection, t: &Tables) -> StoreResult<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::Internal,
            format!(
                "the catalog database has schema version {version}, newer than this build's {SCHEMA_VERSION}: upgrade mcp-daemon"
            ),
        ));
    }
    let ddl = format!(
        "BEGIN IMMEDIATE;
        CREATE TABLE IF NOT EXISTS {f} (
            partition_key TEXT NOT NULL, name TEXT NOT NULL, mcp_type TEXT NOT NULL,
            description TEXT, module_name TEXT, class_name TEXT, function_name TEXT,
            status INTEGER NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (partition_key, name)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS {f_type} ON {f} (partition_key, mcp_type, name);
        CREATE TABLE IF NOT EXISTS {m} (
            partition_key TEXT NOT NULL, module_name TEXT NOT NULL, package_name TEXT NOT NULL,
            record TEXT NOT NULL, PRIMARY KEY (partition_key, module_name)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS {m_pkg} ON {m} (partition_key, package_name);
        CREATE TABLE IF NOT EXISTS {s} (
            partition_key TEXT NOT NULL, setting_id TEXT NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (partition_key, setting_id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS {c} (
            partition_key TEXT NOT NULL, mcp_function_call_uuid TEXT NOT NULL,
            name TEXT NOT NULL, mcp_type TEXT NOT NULL, status TEXT NOT NULL,
            updated_at TEXT NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (partition_key, mcp_function_call_uuid)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS {c_upd} ON {c} (partition_key, updated_at, mcp_function_call_uuid);
        CREATE INDEX IF NOT EXISTS {c_name} ON {c} (partition_key, name, updated_at);
        CREATE INDEX IF NOT EXISTS {c_type} ON {c} (partition_key, mcp_type, updated_at);
        CREATE TABLE IF NOT EXISTS {v} (
            partition_key TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
            record TEXT NOT NULL, PRIMARY KEY (partition_key, name, version)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS {a} (
            partition_key TEXT NOT NULL, audit_id TEXT NOT NULL, entity TEXT NOT NULL,
            key TEXT NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (partition_key, audit_id)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS {a_key} ON {a} (partition_key, entity, key, audit_id);
        PRAGMA user_version = {SCHEMA_VERSION};
        COMMIT;",
        f = t.functions,
        f_type = index(&t.functions, "mcp_type"),
        m = t.modules,
        m_pkg = index(&t.modules, "package_name"),
        s = t.settings,
        c = t.calls,
        c_upd = index(&t.calls, "updated_at"),
        c_name = index(&t.calls, "name"),
        c_type = index(&t.calls, "mcp_type"),
        v = t.versions,
        a = t.audit,
        a_key = index(&t.audit, "key"),
    );
    conn.execute_batch(&ddl).map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        sql_err(e)
    })
}
