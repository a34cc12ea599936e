//! Which catalog store to open and its table names, from the environment the Python
//! daemon's users know (`INITIALIZE_TABLES`, `REGION_NAME`, the `AWS_*` chain) plus ours
//! (`CATALOG_STORE`, `CATALOG_SQLITE_PATH`, `MCP_*_TABLE`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{StoreError, StoreResult};
use crate::blob::StaticCredentials;

/// The backend (`CATALOG_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A SQLite file on this host (the default: works with nothing installed).
    Sqlite,
    /// DynamoDB (required as soon as two hosts serve one catalog).
    Dynamodb,
}

/// Table names. The defaults are the original's; every one can be renamed, so a deployment
/// with prefixed tables (or two daemons on one account) works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableNames {
    /// `MCP_FUNCTIONS_TABLE`, default `mcp-functions`.
    pub functions: String,
    /// `MCP_MODULES_TABLE`, default `mcp-modules`.
    pub modules: String,
    /// `MCP_SETTINGS_TABLE`, default `mcp-settings`.
    pub settings: String,
    /// `MCP_FUNCTION_CALLS_TABLE`, default `mcp-function_calls`. When that table does not
    /// exist but `LEGACY_CALLS_TABLE` does (and the name was not set explicitly), the older
    /// one is used.
    pub function_calls: String,
    /// `MCP_FUNCTION_VERSIONS_TABLE`, default `mcp-function_versions` (ours).
    pub function_versions: String,
    /// `MCP_AUDIT_LOG_TABLE`, default `mcp-audit_log` (ours).
    pub audit_log: String,
    /// Whether `function_calls` was given explicitly (then no fallback to the legacy name).
    pub function_calls_explicit: bool,
}

#[allow(dead_code)] // DynamoDB's (next commit)
/// The calls table's name before 2026-02-25 (no `updated_at-index`).
pub const LEGACY_CALLS_TABLE: &str = "mcp-function-calls";

impl Default for TableNames {
    fn default() -> Self {
        Self {
            functions: "mcp-functions".into(),
            modules: "mcp-modules".into(),
            settings: "mcp-settings".into(),
            function_calls: "mcp-function_calls".into(),
            function_versions: "mcp-function_versions".into(),
            audit_log: "mcp-audit_log".into(),
            function_calls_explicit: false,
        }
    }
}

impl TableNames {
    /// All six, for creation and error messages.
    pub fn all(&self) -> [&str; 6] {
        [
            &self.functions,
            &self.modules,
            &self.settings,
            &self.function_calls,
            &self.function_versions,
            &self.audit_log,
        ]
    }
}

/// Everything `open` needs.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSettings {
    pub backend: Backend,
    /// `CATALOG_SQLITE_PATH`, default `DATA_DIR/catalog.sqlite3`.
    pub sqlite_path: PathBuf,
    pub tables: TableNames,
    /// `REGION_NAME`, else `AWS_REGION` (else the SDK's profile chain).
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL` (moto, DynamoDB Local).
    pub endpoint: Option<String>,
    /// Fixed credentials (tests); `None`: the SDK's standard chain.
    #[serde(skip)]
    pub credentials: Option<StaticCredentials>,
    /// `INITIALIZE_TABLES`: create missing tables at open (SQLite always creates its schema).
    pub initialize_tables: bool,
}

impl StoreSettings {
    /// The embedded default in `data_dir`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self {
            backend: Backend::Sqlite,
            sqlite_path: path.into(),
            tables: TableNames::default(),
            region: None,
            endpoint: None,
            credentials: None,
            initialize_tables: false,
        }
    }

    /// Settings from environment-style variables, so the CLI passes `std::env::var` and
    /// tests a map. Unknown `CATALOG_STORE` values and empty table names are refused.
    pub fn from_lookup(
        data_dir: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> StoreResult<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let backend = match var("CATALOG_STORE").as_deref().map(str::trim) {
            None | Some("sqlite") => Backend::Sqlite,
            Some("dynamodb") => Backend::Dynamodb,
            Some(other) => {
                return Err(StoreError::invalid(format!(
                    "CATALOG_STORE={other:?}: expected sqlite or dynamodb"
                )));
            }
        };
        let mut tables = TableNames::default();
        for (env, slot) in [
            ("MCP_FUNCTIONS_TABLE", &mut tables.functions),
            ("MCP_MODULES_TABLE", &mut tables.modules),
            ("MCP_SETTINGS_TABLE", &mut tables.settings),
            ("MCP_FUNCTION_VERSIONS_TABLE", &mut tables.function_versions),
            ("MCP_AUDIT_LOG_TABLE", &mut tables.audit_log),
        ] {
            if let Some(name) = var(env) {
                *slot = name.trim().to_string();
            }
        }
        if let Some(name) = var("MCP_FUNCTION_CALLS_TABLE") {
            tables.function_calls = name.trim().to_string();
            tables.function_calls_explicit = true;
        }
        let truthy = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
        };
        Ok(Self {
            backend,
            sqlite_path: var("CATALOG_SQLITE_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("catalog.sqlite3")),
            tables,
            region: var("REGION_NAME").or_else(|| var("AWS_REGION")),
            endpoint: var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")),
            credentials: None,
            initialize_tables: truthy(var("INITIALIZE_TABLES")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_are_the_originals() {
        let s = StoreSettings::from_lookup(Path::new("/data"), vars(&[])).unwrap();
        assert_eq!(s.backend, Backend::Sqlite);
        assert_eq!(s.sqlite_path, PathBuf::from("/data/catalog.sqlite3"));
        assert_eq!(
            s.tables.all(),
            [
                "mcp-functions",
                "mcp-modules",
                "mcp-settings",
                "mcp-function_calls",
                "mcp-function_versions",
                "mcp-audit_log"
            ]
        );
        assert!(!s.initialize_tables && !s.tables.function_calls_explicit);
    }

    #[test]
    fn variables_override_and_bad_values_are_refused() {
        let s = StoreSettings::from_lookup(
            Path::new("/data"),
            vars(&[
                ("CATALOG_STORE", "dynamodb"),
                ("MCP_FUNCTIONS_TABLE", "prod-functions"),
                ("MCP_FUNCTION_CALLS_TABLE", "mcp-function-calls"),
                ("INITIALIZE_TABLES", "1"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.backend, Backend::Dynamodb);
        assert_eq!(s.tables.functions, "prod-functions");
        assert_eq!(s.tables.function_calls, "mcp-function-calls");
        assert!(s.tables.function_calls_explicit && s.initialize_tables);
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:2"));
        let err = StoreSettings::from_lookup(Path::new("/d"), vars(&[("CATALOG_STORE", "mongo")]))
            .unwrap_err();
        assert!(err.to_string().contains("CATALOG_STORE"), "{err}");
    }
}
