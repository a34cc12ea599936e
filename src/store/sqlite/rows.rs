//! Modules, settings, the audit trail, partition loads and the partition list on SQLite.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::super::error::StoreResult;
use super::super::plan;
use super::super::query::{AuditFilter, ModuleFilter, Page, Paged, SettingFilter};
use super::super::records::{
    AuditAction, AuditEntity, AuditEntry, Change, ModuleDraft, ModuleRecord, PartitionSnapshot,
    SettingRecord,
};
use super::super::shape::check_size;
use super::super::time::Timestamp;
use super::schema::Tables;
use super::{from_json, sql_err, to_json};
use crate::protocol::PartitionKey;

/// `SELECT record FROM table WHERE <filter> ORDER BY <order>`, one page of it, and the count.
pub(super) fn page_of<T: DeserializeOwned>(
    c: &Connection,
    table: &str,
    filter: &str,
    order: &str,
    mut args: Vec<Sql>,
    page: Page,
) -> StoreResult<Paged<T>> {
    let total: i64 = c
        .query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE {filter}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    args.push(Sql::Integer(i64::from(page.size())));
    args.push(Sql::Integer(page.offset() as i64));
    let items = all_of(
        c,
        table,
        &format!("{filter} ORDER BY {order} LIMIT ? OFFSET ?"),
        args,
    )?;
    Ok(page.paged(items, total as u64))
}

/// Every `record` of `table` that matches `rest` (a WHERE clause and its tail).
pub(super) fn all_of<T: DeserializeOwned>(
    c: &Connection,
    table: &str,
    rest: &str,
    args: Vec<Sql>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c
        .prepare(&format!("SELECT record FROM {table} WHERE {rest}"))
        .map_err(sql_err)?;
    let raws = stmt
        .query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    raws.iter().map(|r| from_json(table, r)).collect()
}

fn one<T: DeserializeOwned>(
    c: &Connection,
    table: &str,
    key_col: &str,
    pk: &PartitionKey,
    key: &str,
) -> StoreResult<Option<T>> {
    let raw: Option<String> = c
        .query_row(
            &format!("SELECT record FROM {table} WHERE partition_key = ?1 AND {key_col} = ?2"),
            params![pk.as_str(), key],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    raw.map(|r| from_json(table, &r)).transpose()
}

fn remove(
    c: &Connection,
    table: &str,
    key_col: &str,
    pk: &PartitionKey,
    key: &str,
) -> StoreResult<()> {
    c.execute(
        &format!("DELETE FROM {table} WHERE partition_key = ?1 AND {key_col} = ?2"),
        params![pk.as_str(), key],
    )
    .map_err(sql_err)?;
    Ok(())
}

pub(super) fn insert_audit(c: &Connection, t: &Tables, e: &AuditEntry) -> StoreResult<()> {
    c.execute(
        &format!(
            "INSERT INTO {} (partition_key, audit_id, entity, key, record) VALUES (?1, ?2, ?3, ?4, ?5)",
            t.audit
        ),
        params![e.partition_key.as_str(), e.audit_id, e.entity.as_str(), e.key, to_json(e)?],
    )
    .map_err(sql_err)?;
    Ok(())
}

pub fn get_module(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
) -> StoreResult<Option<ModuleRecord>> {
    one(c, &t.modules, "module_name", pk, name)
}

pub fn list_modules(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    f: &ModuleFilter,
    page: Page,
) -> StoreResult<Paged<ModuleRecord>> {
    let mut filter = "partition_key = ?".to_string();
    let mut args = vec![Sql::Text(pk.as_str().into())];
    if let Some(m) = &f.module_name_contains {
        filter.push_str(" AND instr(module_name, ?) > 0");
        args.push(Sql::Text(m.clone()));
    }
    if let Some(p) = &f.package_name {
        filter.push_str(" AND package_name = ?");
        args.push(Sql::Text(p.clone()));
    }
    page_of(c, &t.modules, &filter, "module_name", args, page)
}

pub fn put_module(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    draft: ModuleDraft,
    change: &Change,
    now: Timestamp,
) -> StoreResult<ModuleRecord> {
    let current = get_module(c, t, pk, &draft.module_name)?;
    let next = ModuleRecord {
        partition_key: pk.clone(),
        draft,
        updated_by: change.updated_by.clone(),
        created_at: current.as_ref().map_or(now, |m| m.created_at),
        updated_at: now,
    };
    check_size(&format!("module {}", next.draft.module_name), &next)?;
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (partition_key, module_name, package_name, record) VALUES (?1, ?2, ?3, ?4)",
            t.modules
        ),
        params![pk.as_str(), next.draft.module_name, next.draft.package_name, to_json(&next)?],
    )
    .map_err(sql_err)?;
    let action = plan::write_action(current.is_some(), change);
    let entry = plan::audit(
        pk,
        now,
        &change.updated_by,
        action,
        AuditEntity::Module,
        &next.draft.module_name,
        current.as_ref(),
        Some(&next),
    );
    insert_audit(c, t, &entry)?;
    Ok(next)
}

pub fn delete_module(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    name: &str,
    change: &Change,
    now: Timestamp,
) -> StoreResult<bool> {
    let Some(current) = get_module(c, t, pk, name)? else {
        return Ok(false);
    };
    remove(c, &t.modules, "module_name", pk, name)?;
    let entry = plan::audit(
        pk,
        now,
        &change.updated_by,
        AuditAction::Delete,
        AuditEntity::Module,
        name,
        Some(&current),
        None,
    );
    insert_audit(c, t, &entry)?;
    Ok(true)
}

pub fn get_setting(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    id: &str,
) -> StoreResult<Option<SettingRecord>> {
    one(c, &t.settings, "setting_id", pk, id)
}

pub fn list_settings(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    f: &SettingFilter,
    page: Page,
) -> StoreResult<Paged<SettingRecord>> {
    let mut filter = "partition_key = ?".to_string();
    let mut args = vec![Sql::Text(pk.as_str().into())];
    if let Some(s) = &f.setting_id_contains {
        filter.push_str(" AND instr(setting_id, ?) > 0");
        args.push(Sql::Text(s.clone()));
    }
    page_of(c, &t.settings, &filter, "setting_id", args, page)
}

#[allow(clippy::too_many_arguments)]
pub fn put_setting(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    id: &str,
    insert: bool,
    setting: Value,
    change: &Change,
    now: Timestamp,
) -> StoreResult<SettingRecord> {
    let current = get_setting(c, t, pk, id)?;
    if !insert && current.is_none() {
        return Err(plan::cannot_find("mcp_setting", "setting_id", pk, id));
    }
    let next = SettingRecord {
        partition_key: pk.clone(),
        setting_id: id.to_string(),
        setting,
        updated_by: change.updated_by.clone(),
        created_at: current.as_ref().map_or(now, |s| s.created_at),
        updated_at: now,
    };
    check_size(&format!("setting {id}"), &next)?;
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (partition_key, setting_id, record) VALUES (?1, ?2, ?3)",
            t.settings
        ),
        params![pk.as_str(), id, to_json(&next)?],
    )
    .map_err(sql_err)?;
    let action = plan::write_action(current.is_some(), change);
    let entry = plan::audit(
        pk,
        now,
        &change.updated_by,
        action,
        AuditEntity::Setting,
        id,
        current.as_ref(),
        Some(&next),
    );
    insert_audit(c, t, &entry)?;
    Ok(next)
}

pub fn delete_setting(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    id: &str,
    change: &Change,
    now: Timestamp,
) -> StoreResult<bool> {
    let Some(current) = get_setting(c, t, pk, id)? else {
        return Ok(false);
    };
    remove(c, &t.settings, "setting_id", pk, id)?;
    let entry = plan::audit(
        pk,
        now,
        &change.updated_by,
        AuditAction::Delete,
        AuditEntity::Setting,
        id,
        Some(&current),
        None,
    );
    insert_audit(c, t, &entry)?;
    Ok(true)
}

pub fn list_audit(
    c: &Connection,
    t: &Tables,
    pk: &PartitionKey,
    f: &AuditFilter,
    page: Page,
) -> StoreResult<Paged<AuditEntry>> {
    let mut filter = "partition_key = ?".to_string();
    let mut args = vec![Sql::Text(pk.as_str().into())];
    if let Some(e) = f.entity {
        filter.push_str(" AND entity = ?");
        args.push(Sql::Text(e.as_str().into()));
    }
    if let Some(k) = &f.key {
        filter.push_str(" AND key = ?");
        args.push(Sql::Text(k.clone()));
    }
    page_of(c, &t.audit, &filter, "audit_id DESC", args, page)
}

pub fn load(c: &Connection, t: &Tables, pk: &PartitionKey) -> StoreResult<PartitionSnapshot> {
    let key = || vec![Sql::Text(pk.as_str().into())];
    Ok(PartitionSnapshot {
        functions: all_of(
            c,
            &t.functions,
            "partition_key = ? AND status = 1 ORDER BY name",
            key(),
        )?,
        modules: all_of(
            c,
            &t.modules,
            "partition_key = ? ORDER BY module_name",
            key(),
        )?,
        settings: all_of(
            c,
            &t.settings,
            "partition_key = ? ORDER BY setting_id",
            key(),
        )?,
    })
}

pub fn partitions(c: &Connection, t: &Tables) -> StoreResult<Vec<PartitionKey>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT partition_key FROM {} UNION SELECT partition_key FROM {} UNION SELECT partition_key FROM {} ORDER BY 1",
            t.functions, t.modules, t.settings
        ))
        .map_err(sql_err)?;
    let keys = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    Ok(keys
        .iter()
        .filter_map(|k| PartitionKey::parse(k).ok())
        .collect())
}
