//! Recorded calls on SQLite: newest-first lists on the `updated_at` index, the original's
//! insert-or-update rule, and the recorder's whole-record writes.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params};

use super::super::error::{StoreError, StoreResult};
use super::super::plan;
use super::super::query::{CallFilter, Page, Paged};
use super::super::records::{CallPatch, CallRecord, CallStatus};
use super::super::shape::{check_call, check_key};
use super::super::time::Timestamp;
use super::rows::page_of;
use super::schema::Tables;
use super::{from_json, sql_err, to_json};
use crate::protocol::PartitionKey;

pub fn get(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    uuid: &str,
) -> StoreResult<Option<CallRecord>> {
    use rusqlite::OptionalExtension;
    let raw: Option<String> = c
        .query_row(
            &format!(
                "SELECT record FROM {} WHERE partition_key = ?1 AND mcp_function_call_uuid = ?2",
                t.calls
            ),
            params![pk.as_str(), uuid],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    raw.map(|r| from_json(&t.calls, &r)).transpose()
}

pub fn list(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    f: &CallFilter,
    page: Page,
) -> StoreResult<Paged<CallRecord>> {
    let mut filter = "partition_key = ?".to_string();
    let mut args = vec![Sql::Text(pk.as_str().into())];
    let mut add = |clause: &str, v: String| {
        filter.push_str(clause);
        args.push(Sql::Text(v));
    };
    if let Some(m) = f.mcp_type {
        add(" AND mcp_type = ?", m.as_str().into());
    }
    if let Some(n) = &f.name {
        add(" AND name = ?", n.clone());
    }
    if let Some(s) = f.status {
        add(" AND status = ?", s.as_str().into());
    }
    if let Some(a) = f.updated_after {
        add(" AND updated_at > ?", a.to_string());
    }
    if let Some(b) = f.updated_before {
        add(" AND updated_at < ?", b.to_string());
    }
    page_of(
        c,
        &t.calls,
        &filter,
        "updated_at DESC, mcp_function_call_uuid DESC",
        args,
        page,
    )
}

/// Inserts or replaces a whole record.
pub fn put(c: &Connection, t: &Tables, r: &CallRecord) -> StoreResult<()> {
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (partition_key, mcp_function_call_uuid, name, mcp_type, status, updated_at, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            t.calls
        ),
        params![
            r.partition_key.as_str(),
            r.mcp_function_call_uuid,
            r.name,
            r.mcp_type.as_str(),
            r.status.as_str(),
            r.updated_at.to_string(),
            to_json(r)?
        ],
    )
    .map_err(sql_err)?;
    Ok(())
}

/// Applies `patch` to `current` (or builds a new record), as the original's
/// `insertUpdateMcpFunctionCall` does. Shared with DynamoDB.
pub(in crate::store) fn apply_patch(
    pk: &PartitionKey,
    current: Option<CallRecord>,
    patch: &CallPatch,
    by: &str,
    new_id: &str,
    now: Timestamp,
) -> StoreResult<CallRecord> {
    let mut r = match current {
        Some(r) => r,
        None => {
            let missing =
                |f: &str| StoreError::invalid(format!("{f} is required for a new function call"));
            CallRecord {
                partition_key: pk.clone(),
                mcp_function_call_uuid: new_id.to_string(),
                name: patch.name.clone().ok_or_else(|| missing("name"))?,
                mcp_type: patch.mcp_type.ok_or_else(|| missing("mcp_type"))?,
                arguments: serde_json::json!({}),
                content: None,
                content_in_s3: false,
                status: CallStatus::Initial,
                notes: None,
                time_spent: None,
                updated_by: by.to_string(),
                created_at: now,
                updated_at: now,
            }
        }
    };
    if let Some(v) = &patch.name {
        r.name = v.clone();
    }
    if let Some(v) = patch.mcp_type {
        r.mcp_type = v;
    }
    if let Some(v) = &patch.arguments {
        r.arguments = v.clone();
    }
    if let Some(v) = &patch.content {
        r.content = Some(v.clone());
    }
    if let Some(v) = patch.content_in_s3 {
        r.content_in_s3 = v;
    }
    if let Some(v) = patch.status {
        r.status = v;
    }
    if let Some(v) = &patch.notes {
        r.notes = Some(v.clone());
    }
    if let Some(v) = patch.time_spent {
        r.time_spent = Some(v);
    }
    r.updated_by = by.to_string();
    r.updated_at = now;
    check_call(&r)?;
    Ok(r)
}

pub fn upsert(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    patch: &CallPatch,
    by: &str,
    new_id: &str,
    now: Timestamp,
) -> StoreResult<CallRecord> {
    let current = match &patch.mcp_function_call_uuid {
        None => None,
        Some(id) => {
            check_key("mcp_function_call_uuid", id)?;
            Some(get(c, t, pk, id)?.ok_or_else(|| {
                plan::cannot_find("mcp_function_call", "mcp_function_call_uuid", pk, id)
            })?)
        }
    };
    let record = apply_patch(pk, current, patch, by, new_id, now)?;
    put(c, t, &record)?;
    Ok(record)
}

pub fn delete(c: &Connection, t: &Tables, pk: &PartitionKey, uuid: &str) -> StoreResult<bool> {
    let n = c
        .execute(
            &format!(
                "DELETE FROM {} WHERE partition_key = ?1 AND mcp_function_call_uuid = ?2",
                t.calls
            ),
            params![pk.as_str(), uuid],
        )
        .map_err(sql_err)?;
    Ok(n > 0)
}
