//! The typed records of the catalog store: one struct per table of the Python daemon
//! (`mcp-functions`, `mcp-modules`, `mcp-settings`, `mcp-function_calls`, reference section 3)
//! plus the two tables of our own (function versions, audit trail). Field names are the
//! tables' attribute names, so a record reads like the item it is stored as. JSON payloads
//! (`data`, `classes`, `setting`, `arguments`) are `serde_json::Value`: the store keeps their
//! shape and leaves their meaning to the catalog.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{StoreError, StoreErrorKind};
use super::time::Timestamp;
use crate::protocol::PartitionKey;

/// What a function record defines (`mcp_type`, required; a string in every table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpType {
    Tool,
    Resource,
    Prompt,
}

impl McpType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Resource => "resource",
            Self::Prompt => "prompt",
        }
    }
}

impl FromStr for McpType {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "tool" => Ok(Self::Tool),
            "resource" => Ok(Self::Resource),
            "prompt" => Ok(Self::Prompt),
            other => Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("mcp_type {other:?} is not one of tool, resource, prompt"),
            )),
        }
    }
}

impl fmt::Display for McpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a recorded call is (`status` of `mcp-function_calls`, a string; the original's
/// default is `initial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Initial,
    InProcess,
    Completed,
    Failed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::InProcess => "in_process",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for CallStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "initial" => Ok(Self::Initial),
            "in_process" => Ok(Self::InProcess),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("status {other:?} is not one of initial, in_process, completed, failed"),
            )),
        }
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The content of a function record: everything a writer chooses. The store adds the key's
/// partition, the version and the audit fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDraft {
    /// The RANGE key: the tool or prompt name, or the resource's name.
    pub name: String,
    pub mcp_type: McpType,
    pub description: Option<String>,
    /// The rest of the MCP definition (`inputSchema`, `uri`, `mimeType`, `arguments`, ...).
    /// Always a JSON object (`{}` when there is nothing), as the original's `data` M is.
    pub data: Value,
    /// A string, not a map (the original's `annotations` S).
    pub annotations: Option<String>,
    pub module_name: Option<String>,
    pub class_name: Option<String>,
    pub function_name: Option<String>,
    /// `text` | `image` | `embedded_resource` (checked by the catalog, not here).
    pub return_type: Option<String>,
    pub is_async: Option<bool>,
    /// O2's `status` N: 1 enabled, 0 disabled; an item without it is enabled.
    pub enabled: bool,
}

/// A stored function: `mcp-functions` (partition_key HASH, name RANGE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub partition_key: PartitionKey,
    #[serde(flatten)]
    pub draft: FunctionDraft,
    /// Ours: 1 on the first write, +1 on every change (items the Python daemon wrote have no
    /// `version` and read as 1). The optimistic-concurrency token of `Change::expected_version`.
    pub version: u64,
    pub updated_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A class of a module and the setting row it is built with (`classes` L of M).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleDraft {
    /// The RANGE key: the Python import name.
    pub module_name: String,
    /// The bundle's name (`<package_name>.zip` in the bucket); required.
    pub package_name: String,
    /// `[{"class_name": .., "setting_id": ..}]`, kept as given (a JSON array).
    pub classes: Value,
    /// `None`: an installed package; `"external"`: the HTTP proxy; anything else: the bundle.
    pub source: Option<String>,
}

/// A stored module: `mcp-modules` (partition_key HASH, module_name RANGE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub partition_key: PartitionKey,
    #[serde(flatten)]
    pub draft: ModuleDraft,
    pub updated_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a writer gives for a setting row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingDraft {
    /// `None` inserts a new row under a generated 20-digit id; `Some(id)` updates that row,
    /// which must exist (the original's "Cannot find the ..." rule).
    pub setting_id: Option<String>,
    /// The keyword arguments of the class constructor (a JSON object).
    pub setting: Value,
}

/// A stored setting: `mcp-settings` (partition_key HASH, setting_id RANGE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingRecord {
    pub partition_key: PartitionKey,
    pub setting_id: String,
    pub setting: Value,
    pub updated_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A recorded call: `mcp-function_calls` (partition_key HASH, mcp_function_call_uuid RANGE).
/// The recorder holds the whole record and writes it whole (`CatalogStore::put_calls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub partition_key: PartitionKey,
    /// A 20-digit decimal string (`ids::new_call_uuid`), as the original generates it.
    pub mcp_function_call_uuid: String,
    pub name: String,
    pub mcp_type: McpType,
    /// The call's arguments (resources: `{"uri": ..}`), a JSON object.
    pub arguments: Value,
    /// The content's text; `None` while running or when it lives in the blob store.
    pub content: Option<String>,
    /// True when the content is in the blob store at `mcp_content/{uuid}.json`.
    pub content_in_s3: bool,
    pub status: CallStatus,
    /// The error text (a traceback) of a failed call.
    pub notes: Option<String>,
    /// Milliseconds.
    pub time_spent: Option<i64>,
    pub updated_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A partial change of a call (the GraphQL `insertUpdateMcpFunctionCall`): `None` fields are
/// left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallPatch {
    /// `None` inserts a new call under a generated id (then `name`, `mcp_type` are required
    /// and `arguments` defaults to `{}`); `Some(id)` updates that call, which must exist.
    pub mcp_function_call_uuid: Option<String>,
    pub name: Option<String>,
    pub mcp_type: Option<McpType>,
    pub arguments: Option<Value>,
    pub content: Option<String>,
    pub content_in_s3: Option<bool>,
    pub status: Option<CallStatus>,
    pub notes: Option<String>,
    pub time_spent: Option<i64>,
}

/// One earlier (or the current) content of a function, from the versions table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionVersion {
    /// The record as it was at that version (its own `version`, `updated_by`, `updated_at`).
    pub record: FunctionRecord,
    /// True for the version that is the function's current record.
    pub current: bool,
}

/// What an admin change did (the audit trail's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Insert,
    Update,
    Delete,
    Rollback,
    /// A write made by `loadMcpConfiguration` (a whole configuration at once).
    Load,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Rollback => "rollback",
            Self::Load => "load",
        }
    }
}

impl FromStr for AuditAction {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "insert" => Ok(Self::Insert),
            "update" => Ok(Self::Update),
            "delete" => Ok(Self::Delete),
            "rollback" => Ok(Self::Rollback),
            "load" => Ok(Self::Load),
            other => Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("audit action {other:?} is unknown"),
            )),
        }
    }
}

/// Which kind of record an audit entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEntity {
    Function,
    Module,
    Setting,
}

impl AuditEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Function => "function",
            Self::Module => "module",
            Self::Setting => "setting",
        }
    }
}

impl FromStr for AuditEntity {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "function" => Ok(Self::Function),
            "module" => Ok(Self::Module),
            "setting" => Ok(Self::Setting),
            other => Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("audit entity {other:?} is unknown"),
            )),
        }
    }
}

/// One entry of the audit trail: written in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub partition_key: PartitionKey,
    /// Sorts by time within the partition (`<micros, 20 digits>#<random>`), unique.
    pub audit_id: String,
    pub at: Timestamp,
    /// `Change::updated_by` of the write.
    pub by: String,
    pub action: AuditAction,
    pub entity: AuditEntity,
    /// The record's RANGE key (function name, module name, setting id).
    pub key: String,
    /// The record before the change (`None` for an insert), as JSON. A record too large to
    /// sit twice in one item is replaced by `{"omitted": "too large", "version": n}`.
    pub before: Option<Value>,
    /// The record after the change (`None` for a delete), as JSON (same rule).
    pub after: Option<Value>,
}

/// Who makes a change, and what they expect to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `updated_by` of the record and `by` of its audit entry; required (non-empty).
    pub updated_by: String,
    /// Functions only (ignored elsewhere): `None` writes over whatever is there; `Some(0)`
    /// only if the function does not exist; `Some(v)` only if its current version is `v`.
    /// A mismatch is `Conflict` and nothing is written.
    pub expected_version: Option<u64>,
    /// Audit the write as `load` (a `loadMcpConfiguration`) instead of insert/update.
    pub load: bool,
}

impl Change {
    /// A plain change by `who`, with no expectation.
    pub fn by(who: impl Into<String>) -> Self {
        Self {
            updated_by: who.into(),
            expected_version: None,
            load: false,
        }
    }

    /// The same change, only if the function's current version is `version` (0: absent).
    pub fn expecting(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// The same change, audited as part of a configuration load.
    pub fn loading(mut self) -> Self {
        self.load = true;
        self
    }
}

/// Everything the catalog of one partition is built from, read in one go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartitionSnapshot {
    /// Enabled functions only, by name.
    pub functions: Vec<FunctionRecord>,
    /// Every module, by module name.
    pub modules: Vec<ModuleRecord>,
    /// Every setting, by id.
    pub settings: Vec<SettingRecord>,
}
