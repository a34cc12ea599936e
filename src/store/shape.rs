//! Shape checks shared by both backends, run before anything is written: required fields,
//! key sizes, JSON payloads of the right kind, and DynamoDB's item limit (400 KB), applied on
//! SQLite too so a catalog that works embedded also fits in DynamoDB.

use serde::Serialize;
use serde_json::Value;

use super::error::{StoreError, StoreErrorKind, StoreResult};
use super::records::{CallRecord, FunctionDraft, ModuleDraft};

/// DynamoDB's item limit: 400 KB, counting attribute names and values.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's limit for a sort key value.
const MAX_RANGE_KEY_BYTES: usize = 1024;

/// The size DynamoDB would count for `value` stored as an item (a JSON object of attributes):
/// names and strings by their UTF-8 length, numbers by their digits, 1 byte for a boolean or
/// null, 3 bytes plus 1 per element for a map or list. Slightly above DynamoDB's own count for
/// numbers, so an item accepted here is accepted there.
pub fn item_size(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
        other => value_size(other),
    }
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => n.to_string().len().div_ceil(2) + 1,
        Value::String(s) => s.len(),
        Value::Array(items) => 3 + items.iter().map(|i| 1 + value_size(i)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
    }
}

/// Refuses a record whose item would exceed `MAX_ITEM_BYTES`, naming what it is.
pub fn check_size(what: &str, record: &impl Serialize) -> StoreResult<()> {
    let json = serde_json::to_value(record)
        .map_err(|e| StoreError::internal(format!("cannot serialize {what}: {e}")))?;
    let size = item_size(&json);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::new(
            StoreErrorKind::TooLarge,
            format!(
                "{what} is {size} bytes as a stored item, over the limit of {MAX_ITEM_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}

/// A range key: non-empty, at most 1024 bytes, no NUL.
pub fn check_key(field: &str, value: &str) -> StoreResult<()> {
    if value.is_empty() {
        return Err(StoreError::invalid(format!("{field} is required")));
    }
    if value.len() > MAX_RANGE_KEY_BYTES {
        return Err(StoreError::invalid(format!(
            "{field} is {} bytes, over the limit of {MAX_RANGE_KEY_BYTES}",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(StoreError::invalid(format!("{field} contains a NUL byte")));
    }
    Ok(())
}

/// `updated_by` is required on every write (the original's `updatedBy: String!`).
pub fn check_actor(updated_by: &str) -> StoreResult<()> {
    if updated_by.trim().is_empty() {
        return Err(StoreError::invalid("updated_by is required"));
    }
    Ok(())
}

fn check_object(field: &str, value: &Value) -> StoreResult<()> {
    if !value.is_object() {
        return Err(StoreError::invalid(format!(
            "{field} must be a JSON object, not {}",
            kind_of(value)
        )));
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn check_function(d: &FunctionDraft) -> StoreResult<()> {
    check_key("name", &d.name)?;
    check_object("data", &d.data)
}

pub fn check_module(d: &ModuleDraft) -> StoreResult<()> {
    check_key("module_name", &d.module_name)?;
    if d.package_name.is_empty() {
        return Err(StoreError::invalid("package_name is required"));
    }
    let Value::Array(items) = &d.classes else {
        return Err(StoreError::invalid(format!(
            "classes must be a JSON array of objects, not {}",
            kind_of(&d.classes)
        )));
    };
    if let Some(bad) = items.iter().find(|i| !i.is_object()) {
        return Err(StoreError::invalid(format!(
            "classes must hold objects ({{\"class_name\", \"setting_id\"}}), not {}",
            kind_of(bad)
        )));
    }
    Ok(())
}

pub fn check_setting(setting: &Value) -> StoreResult<()> {
    check_object("setting", setting)
}

pub fn check_call(c: &CallRecord) -> StoreResult<()> {
    check_key("mcp_function_call_uuid", &c.mcp_function_call_uuid)?;
    if c.name.is_empty() {
        return Err(StoreError::invalid("name is required"));
    }
    check_object("arguments", &c.arguments)?;
    check_actor(&c.updated_by)?;
    check_size(&format!("function call {}", c.mcp_function_call_uuid), c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_follow_dynamodb_counting() {
        assert_eq!(item_size(&json!({"a": "xyz"})), 4);
        assert_eq!(item_size(&json!({"ok": true})), 3);
        assert_eq!(item_size(&json!({"m": {"k": "v"}})), 1 + 3 + 1 + 1 + 1);
        assert_eq!(
            item_size(&json!({"l": ["ab", 1]})),
            1 + 3 + (1 + 2) + (1 + 2)
        );
        let big = json!({"content": "x".repeat(MAX_ITEM_BYTES)});
        let err = check_size("call 1", &big).unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::TooLarge);
        assert!(err.to_string().contains("call 1"), "{err}");
        check_size(
            "call 2",
            &json!({"content": "x".repeat(MAX_ITEM_BYTES - 10)}),
        )
        .unwrap();
    }

    #[test]
    fn keys_and_payloads_are_checked() {
        assert!(check_key("name", "").is_err());
        assert!(check_key("name", &"n".repeat(1025)).is_err());
        assert!(check_key("name", "a\0b").is_err());
        check_key("name", "get_weather").unwrap();
        assert!(check_actor("  ").is_err());
        let module = |classes| ModuleDraft {
            module_name: "m".into(),
            package_name: "p".into(),
            classes,
            source: None,
        };
        check_module(&module(json!([{"class_name": "C", "setting_id": "1"}]))).unwrap();
        assert!(check_module(&module(json!({"class_name": "C"}))).is_err());
        assert!(check_module(&module(json!(["C"]))).is_err());
        assert!(check_setting(&json!([1])).is_err());
    }
}
