//! Functions on SQLite: the record, its earlier versions and the audit entry of each change,
//! written in the caller's `BEGIN IMMEDIATE` transaction (so writers queue and nothing is
//! half-written).

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::super::error::StoreResult;
use super::super::plan;
use super::super::query::{FunctionFilter, Page, Paged};
use super::super::records::{
    AuditAction, AuditEntity, Change, FunctionDraft, FunctionRecord, FunctionVersion,
};
use super::super::shape::check_size;
use super::super::time::Timestamp;
use super::rows::insert_audit;
use super::schema::Tables;
use super::{from_json, sql_err, to_json};
use crate::protocol::PartitionKey;

pub fn get(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
) -> StoreResult<Option<FunctionRecord>> {
    let raw: Option<String> = c
        .query_row(
            &format!(
                "SELECT record FROM {} WHERE partition_key = ?1 AND name = ?2",
                t.functions
            ),
            params![pk.as_str(), name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    raw.map(|r| from_json(&t.functions, &r)).transpose()
}

pub fn list(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    f: &FunctionFilter,
    page: Page,
) -> StoreResult<Paged<FunctionRecord>> {
    let mut clauses = vec!["partition_key = ?".to_string()];
    let mut args = vec![Sql::Text(pk.as_str().into())];
    let mut eq = |col: &str, v: &Option<String>| {
        if let Some(v) = v {
            clauses.push(format!("{col} = ?"));
            args.push(Sql::Text(v.clone()));
        }
    };
    eq("mcp_type", &f.mcp_type.map(|m| m.as_str().to_string()));
    eq("module_name", &f.module_name);
    eq("class_name", &f.class_name);
    eq("function_name", &f.function_name);
    if let Some(d) = &f.description_contains {
        clauses.push("instr(description, ?) > 0".into());
        args.push(Sql::Text(d.clone()));
    }
    if let Some(enabled) = f.enabled {
        clauses.push("status = ?".into());
        args.push(Sql::Integer(i64::from(enabled)));
    }
    let filter = clauses.join(" AND ");
    let total: i64 = c
        .query_row(
            &format!("SELECT COUNT(*) FROM {} WHERE {filter}", t.functions),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    args.push(Sql::Integer(i64::from(page.size())));
    args.push(Sql::Integer(page.offset() as i64));
    let mut stmt = c
        .prepare(&format!(
            "SELECT record FROM {} WHERE {filter} ORDER BY name LIMIT ? OFFSET ?",
            t.functions
        ))
        .map_err(sql_err)?;
    let raws = stmt
        .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    let items = raws
        .iter()
        .map(|r| from_json(&t.functions, r))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(page.paged(items, total as u64))
}

/// The highest version kept in the versions table (0: none).
fn latest_kept(c: &Connection, t: &Tables, pk: &PartitionKey, name: &str) -> StoreResult<u64> {
    let v: Option<i64> = c
        .query_row(
            &format!(
                "SELECT MAX(version) FROM {} WHERE partition_key = ?1 AND name = ?2",
                t.versions
            ),
            params![pk.as_str(), name],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    Ok(v.unwrap_or(0) as u64)
}

fn keep_version(c: &Connection, t: &Tables, r: &FunctionRecord) -> StoreResult<()> {
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (partition_key, name, version, record) VALUES (?1, ?2, ?3, ?4)",
            t.versions
        ),
        params![r.partition_key.as_str(), r.draft.name, r.version as i64, to_json(r)?],
    )
    .map_err(sql_err)?;
    Ok(())
}

/// Writes `draft` as the function's next version (`action`: `None` for insert/update/load).
pub fn put(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    draft: FunctionDraft,
    change: &Change,
    now: Timestamp,
    action: Option<AuditAction>,
) -> StoreResult<FunctionRecord> {
    let current = get(c, t, pk, &draft.name)?;
    plan::check_expected(pk, &draft.name, current.as_ref(), change)?;
    let kept = latest_kept(c, t, pk, &draft.name)?;
    let next = plan::next_function(pk, draft, current.as_ref(), kept, change, now);
    check_size(&format!("function {}", next.draft.name), &next)?;
    if let Some(prev) = &current {
        keep_version(c, t, prev)?;
    }
    let d = &next.draft;
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (partition_key, name, mcp_type, description, module_name,
             class_name, function_name, status, version, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            t.functions
        ),
        params![
            pk.as_str(),
            d.name,
            d.mcp_type.as_str(),
            d.description,
            d.module_name,
            d.class_name,
            d.function_name,
            i64::from(d.enabled),
            next.version as i64,
            to_json(&next)?
        ],
    )
    .map_err(sql_err)?;
    let action = action.unwrap_or_else(|| plan::write_action(current.is_some(), change));
    let entry = plan::audit(
        pk,
        now,
        &change.updated_by,
        action,
        AuditEntity::Function,
        &next.draft.name,
        current.as_ref(),
        Some(&next),
    );
    insert_audit(c, t, &entry)?;
    Ok(next)
}

pub fn delete(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
    change: &Change,
    now: Timestamp,
) -> StoreResult<bool> {
    let current = get(c, t, pk, name)?;
    plan::check_expected(pk, name, current.as_ref(), change)?;
    let Some(current) = current else {
        return Ok(false);
    };
    keep_version(c, t, &current)?;
    c.execute(
        &format!(
            "DELETE FROM {} WHERE partition_key = ?1 AND name = ?2",
            t.functions
        ),
        params![pk.as_str(), name],
    )
    .map_err(sql_err)?;
    let entry = plan::audit(
        pk,
        now,
        &change.updated_by,
        AuditAction::Delete,
        AuditEntity::Function,
        name,
        Some(&current),
        None,
    );
    insert_audit(c, t, &entry)?;
    Ok(true)
}

/// Every version, newest first: the current record (if any) and the kept ones.
fn all_versions(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
) -> StoreResult<Vec<FunctionVersion>> {
    let mut out: Vec<FunctionVersion> = get(c, t, pk, name)?
        .map(|record| FunctionVersion {
            record,
            current: true,
        })
        .into_iter()
        .collect();
    let mut stmt = c
        .prepare(&format!(
            "SELECT record FROM {} WHERE partition_key = ?1 AND name = ?2 ORDER BY version DESC",
            t.versions
        ))
        .map_err(sql_err)?;
    let raws = stmt
        .query_map(params![pk.as_str(), name], |r| r.get::<_, String>(0))
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    for raw in raws {
        let record: FunctionRecord = from_json(&t.versions, &raw)?;
        // A record rewritten over itself (same version) is shown once.
        if out.iter().all(|v| v.record.version != record.version) {
            out.push(FunctionVersion {
                record,
                current: false,
            });
        }
    }
    Ok(out)
}

pub fn versions(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
    page: Page,
) -> StoreResult<Paged<FunctionVersion>> {
    Ok(page.slice(all_versions(c, t, pk, name)?))
}

pub fn rollback(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
    version: u64,
    change: &Change,
    now: Timestamp,
) -> StoreResult<FunctionRecord> {
    let target = all_versions(c, t, pk, name)?
        .into_iter()
        .find(|v| v.record.version == version)
        .ok_or_else(|| plan::no_such_version(pk, name, version))?;
    put(
        c,
        t,
        pk,
        target.record.draft,
        change,
        now,
        Some(AuditAction::Rollback),
    )
}
