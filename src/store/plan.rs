//! What a write must store, decided the same way on every backend: the next record of a
//! function (version, kept `created_at`), the expectation check, and the audit entry. The
//! backends only read what is there and write the plan atomically.

use serde::Serialize;
use serde_json::Value;

use super::error::{StoreError, StoreErrorKind, StoreResult};
use super::records::{AuditAction, AuditEntity, AuditEntry, Change, FunctionDraft, FunctionRecord};
use super::shape::{MAX_ITEM_BYTES, item_size};
use super::time::Timestamp;
use crate::protocol::PartitionKey;

/// Checks `change.expected_version` against the current record (`None`: absent).
pub fn check_expected(
    pk: &PartitionKey,
    name: &str,
    current: Option<&FunctionRecord>,
    change: &Change,
) -> StoreResult<()> {
    let Some(expected) = change.expected_version else {
        return Ok(());
    };
    let actual = current.map_or(0, |c| c.version);
    if actual != expected {
        let now = match actual {
            0 => "it does not exist".to_string(),
            v => format!("it is at version {v}"),
        };
        return Err(StoreError::new(
            StoreErrorKind::Conflict,
            format!(
                "function {name} in partition {pk} changed: expected version {expected}, but {now}"
            ),
        ));
    }
    Ok(())
}

#[allow(dead_code)] // DynamoDB's (next commit)
/// The conflict a backend reports when another writer won the race it could not see coming.
pub fn lost_race(pk: &PartitionKey, name: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!("function {name} in partition {pk} was changed by another writer at the same time"),
    )
}

/// The next record of function `draft.name`: one version past both the current record and
/// any earlier one kept in the versions table (`latest_kept`), so numbers never repeat after
/// a delete.
pub fn next_function(
    pk: &PartitionKey,
    draft: FunctionDraft,
    current: Option<&FunctionRecord>,
    latest_kept: u64,
    change: &Change,
    now: Timestamp,
) -> FunctionRecord {
    let version = current.map_or(0, |c| c.version).max(latest_kept) + 1;
    FunctionRecord {
        partition_key: pk.clone(),
        draft,
        version,
        updated_by: change.updated_by.clone(),
        created_at: current.map_or(now, |c| c.created_at),
        updated_at: now,
    }
}

/// The action an audit entry names for a write over `existed`.
pub fn write_action(existed: bool, change: &Change) -> AuditAction {
    match (change.load, existed) {
        (true, _) => AuditAction::Load,
        (false, true) => AuditAction::Update,
        (false, false) => AuditAction::Insert,
    }
}

/// An audit entry. When before and after together would not fit one item, each is replaced
/// by a marker naming its version (the versions table keeps functions whole anyway).
#[allow(clippy::too_many_arguments)]
pub fn audit<T: Serialize>(
    pk: &PartitionKey,
    now: Timestamp,
    by: &str,
    action: AuditAction,
    entity: AuditEntity,
    key: &str,
    before: Option<&T>,
    after: Option<&T>,
) -> AuditEntry {
    let to_json = |r: Option<&T>| r.and_then(|r| serde_json::to_value(r).ok());
    let (mut before, mut after) = (to_json(before), to_json(after));
    let size = |v: &Option<Value>| v.as_ref().map_or(0, item_size);
    // Room for the entry's own attributes (ids, names, timestamps).
    if size(&before) + size(&after) > MAX_ITEM_BYTES - 4096 {
        let marker = |v: &Option<Value>| {
            v.as_ref().map(|v| {
                serde_json::json!({"omitted": "too large", "version": v.get("version").cloned().unwrap_or(Value::Null)})
            })
        };
        before = marker(&before);
        after = marker(&after);
    }
    AuditEntry {
        partition_key: pk.clone(),
        audit_id: format!("{:020}#{:08x}", now.micros().max(0), rand::random::<u32>()),
        at: now,
        by: by.to_string(),
        action,
        entity,
        key: key.to_string(),
        before,
        after,
    }
}

/// The original's error for an update of a setting or call that does not exist.
pub fn cannot_find(kind: &str, range_key: &str, pk: &PartitionKey, id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("Cannot find the {kind} with the partition_key/{range_key} ({pk}/{id})"),
    )
}

/// A rollback to a version that never existed.
pub fn no_such_version(pk: &PartitionKey, name: &str, version: u64) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("function {name} in partition {pk} has no version {version}"),
    )
}
