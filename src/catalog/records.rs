//! A partition's catalog from its store records, assembled as the Python daemon assembles it
//! (reference section 1.1 and checklist item 4), into the same `ConfigFile` the config file
//! parses to, so one builder binds both:
//! - every function record with a `module_name` links its definition to
//!   `(module_name, class_name, function_name)`, `return_type` `null` meaning `text`;
//! - a module's classes name their setting rows (`classes[].setting_id`); the class is built
//!   with that row's `setting`; a class without a row gets `{}` (the original skipped it, and
//!   its calls then failed on a missing `package_name`);
//! - `data` holds the rest of the definition, with keys as the original's GraphQL variables
//!   stored them (snake_case) or as written (camelCase): keys are camel-cased recursively, as
//!   the original's `JSONCamelCase` output does, and every `properties` key snake-cased, as its
//!   `_normalize_schema_keywords` does, so argument names are what its functions receive.
//!
//! A record that cannot make a definition (no `inputSchema` on a tool, no `uri` on a resource,
//! a malformed `data`) is left out and reported; the others are served. Records are checked
//! when they are written, so this only meets records written by other clients.

use serde_json::{Map, Value, json};

use super::file::{ConfigFile, PromptSpec, ResourceSpec, ToolSpec};
use crate::store::{FunctionRecord, McpType, ModuleRecord, PartitionSnapshot, SettingRecord};

/// The `ConfigFile` of a snapshot, and why each record left out was left out.
pub fn config_from_snapshot(snapshot: &PartitionSnapshot) -> (ConfigFile, Vec<String>) {
    let mut problems = Vec::new();
    let (mut tools, mut resources, mut templates, mut prompts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut links = Vec::new();
    for record in &snapshot.functions {
        let def = match definition(record) {
            Ok(def) => def,
            Err(reason) => {
                problems.push(format!(
                    "{} '{}' of partition {}: {reason}",
                    record.draft.mcp_type, record.draft.name, record.partition_key
                ));
                continue;
            }
        };
        match record.draft.mcp_type {
            McpType::Tool => tools.push(def),
            McpType::Resource if def.get("uriTemplate").is_some() => templates.push(def),
            McpType::Resource => resources.push(def),
            McpType::Prompt => prompts.push(def),
        }
        if let Some(link) = link(record) {
            links.push(link);
        }
    }
    let modules: Vec<Value> = snapshot
        .modules
        .iter()
        .flat_map(|m| module_decls(m, &snapshot.settings))
        .collect();
    let shape = json!({
        "tools": tools,
        "resources": resources,
        "resourceTemplates": templates,
        "prompts": prompts,
        "module_links": links,
        "modules": modules,
    });
    match serde_json::from_value(shape) {
        Ok(file) => (file, problems),
        // Every part was checked alone above; this would be a bug in this file, and serving
        // nothing of the partition is the safe answer to it.
        Err(e) => {
            problems.push(format!("the partition's records do not assemble: {e}"));
            (ConfigFile::default(), problems)
        }
    }
}

/// The MCP definition of one record: `data` normalized, plus its name, description and
/// annotations; checked against the spec type it must parse as.
fn definition(record: &FunctionRecord) -> Result<Value, String> {
    let d = &record.draft;
    let mut def = match normalize(&d.data) {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => return Err(format!("its data is not an object: {other}")),
    };
    def.insert("name".into(), Value::String(d.name.clone()));
    if let Some(text) = &d.description {
        def.insert("description".into(), Value::String(text.clone()));
    }
    // `annotations` is a string attribute: a JSON object in it is the MCP annotations.
    if let Some(Ok(Value::Object(a))) = d.annotations.as_deref().map(serde_json::from_str) {
        def.insert("annotations".into(), Value::Object(a));
    }
    let def = Value::Object(def);
    let checked = match d.mcp_type {
        McpType::Tool => match serde_json::from_value::<ToolSpec>(def.clone()) {
            Ok(spec) if spec.input_schema.is_none() => Err("a tool needs an inputSchema".into()),
            other => other.map(|_| ()).map_err(|e| e.to_string()),
        },
        McpType::Resource => match serde_json::from_value::<ResourceSpec>(def.clone()) {
            Ok(spec) if spec.uri.is_none() && spec.uri_template.is_none() => {
                Err("a resource needs a uri or a uriTemplate".into())
            }
            other => other.map(|_| ()).map_err(|e| e.to_string()),
        },
        McpType::Prompt => serde_json::from_value::<PromptSpec>(def.clone())
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    checked.map(|()| def)
}

/// The module link of a record that names a module (else the definition has no function and
/// the builder reports it).
fn link(record: &FunctionRecord) -> Option<Value> {
    let d = &record.draft;
    let module = d.module_name.as_deref().filter(|m| !m.is_empty())?;
    Some(json!({
        "type": d.mcp_type.as_str(),
        "name": d.name,
        "module_name": module,
        "class_name": d.class_name,
        "function_name": d.function_name.clone().unwrap_or_else(|| d.name.clone()),
        "return_type": d.return_type.clone().unwrap_or_else(|| "text".into()),
        "is_async": d.is_async.unwrap_or(false),
    }))
}

/// One module declaration per class of a module record, each with its setting row's
/// `setting` (`{}` when the class names none or a missing one); a module without classes is
/// declared once, classless (module-level functions).
fn module_decls(module: &ModuleRecord, settings: &[SettingRecord]) -> Vec<Value> {
    let d = &module.draft;
    let decl = |class: Option<&str>, setting: Value| {
        json!({
            "module_name": d.module_name,
            "package_name": d.package_name,
            "class_name": class,
            "setting": setting,
            "source": d.source,
        })
    };
    let classes: Vec<&Map<String, Value>> = d
        .classes
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    if classes.is_empty() {
        return vec![decl(None, json!({}))];
    }
    classes
        .into_iter()
        .map(|class| {
            let name = field(class, "class_name");
            let setting = field(class, "setting_id")
                .and_then(|id| settings.iter().find(|s| s.setting_id == id))
                .map(|s| snake_keys(&s.setting))
                .unwrap_or_else(|| json!({}));
            decl(name, setting)
        })
        .collect()
}

/// A class entry's field, in the stored snake_case or the camelCase a client may have used.
fn field<'a>(class: &'a Map<String, Value>, snake: &str) -> Option<&'a str> {
    class
        .get(snake)
        .or_else(|| class.get(&camel(snake)))
        .and_then(Value::as_str)
}

/// `data` as the original's config loader sees it: keys camel-cased recursively, then every
/// `properties` object's keys snake-cased.
fn normalize(data: &Value) -> Value {
    fn walk(v: &Value, under_properties: bool) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let key = match under_properties {
                            true => snake(k),
                            false => camel(k),
                        };
                        let child_is_properties = !under_properties && key == "properties";
                        (key, walk(v, child_is_properties))
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(i, false)).collect()),
            other => other.clone(),
        }
    }
    walk(data, false)
}

/// A setting's keys snake-cased recursively (`JSONSnakeCase.serialize` of the original).
fn snake_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (snake(k), snake_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(snake_keys).collect()),
        other => other.clone(),
    }
}

/// The original's `to_camel_case`: split on `_`, the first part as it is, the others
/// title-cased (`input_schema` -> `inputSchema`; `inputSchema` unchanged).
pub(crate) fn camel(key: &str) -> String {
    let mut parts = key.split('_');
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(&chars.as_str().to_lowercase());
        }
    }
    out
}

/// The original's `to_snake_case`: `_` before every uppercase letter but a leading one, then
/// lower-cased (`userName` -> `user_name`; `user_name` unchanged).
pub(crate) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PartitionKey;
    use crate::store::{FunctionDraft, ModuleDraft, Timestamp};

    fn function(mcp_type: McpType, name: &str, data: Value) -> FunctionRecord {
        FunctionRecord {
            partition_key: PartitionKey::parse("acme#t1").unwrap(),
            draft: FunctionDraft {
                name: name.into(),
                mcp_type,
                description: Some(format!("{name} does things")),
                data,
                annotations: Some(r#"{"readOnlyHint": true}"#.into()),
                module_name: Some("inventory_tools".into()),
                class_name: Some("InventoryTools".into()),
                function_name: Some(format!("{name}_fn")),
                return_type: None,
                is_async: None,
                enabled: true,
            },
            version: 1,
            updated_by: "admin".into(),
            created_at: Timestamp::from_micros(0),
            updated_at: Timestamp::from_micros(0),
        }
    }

    fn snapshot() -> PartitionSnapshot {
        let pk = PartitionKey::parse("acme#t1").unwrap();
        PartitionSnapshot {
            functions: vec![
                // As the original's GraphQL variables store a schema: snake_case throughout.
                function(
                    McpType::Tool,
                    "count_items",
                    json!({"input_schema": {"type": "object",
                        "properties": {"skuCode": {"type": "string", "max_length": 8},
                                       "ware_house": {"type": "string", "default": "main"}},
                        "required": ["skuCode"], "additional_properties": false}}),
                ),
                function(
                    McpType::Resource,
                    "status",
                    json!({"uri": "inventory://status", "mime_type": "text/plain"}),
                ),
                function(
                    McpType::Resource,
                    "item",
                    json!({"uri_template": "inventory://items/{sku}"}),
                ),
                function(
                    McpType::Prompt,
                    "restock_note",
                    json!({"arguments": [{"name": "sku", "required": true}]}),
                ),
                function(McpType::Tool, "no_schema", json!({})),
                function(
                    McpType::Resource,
                    "no_uri",
                    json!({"mime_type": "text/plain"}),
                ),
                function(McpType::Tool, "not_an_object", json!([1, 2])),
            ],
            modules: vec![ModuleRecord {
                partition_key: pk.clone(),
                draft: ModuleDraft {
                    module_name: "inventory_tools".into(),
                    package_name: "inventory_pkg".into(),
                    classes: json!([{"class_name": "InventoryTools", "setting_id": "00000000000000000042"}]),
                    source: Some("".into()),
                },
                updated_by: "admin".into(),
                created_at: Timestamp::from_micros(0),
                updated_at: Timestamp::from_micros(0),
            }],
            settings: vec![SettingRecord {
                partition_key: pk,
                setting_id: "00000000000000000042".into(),
                setting: json!({"apiBase": "https://x", "page_size": 50}),
                updated_by: "admin".into(),
                created_at: Timestamp::from_micros(0),
                updated_at: Timestamp::from_micros(0),
            }],
        }
    }

    #[test]
    fn records_assemble_as_the_python_daemon_assembles_them() {
        let (file, problems) = config_from_snapshot(&snapshot());
        assert_eq!(file.tools.items.len(), 1);
        let tool = &file.tools.items[0];
        assert_eq!(tool.name, "count_items");
        assert_eq!(tool.description.as_deref(), Some("count_items does things"));
        assert_eq!(
            tool.input_schema,
            Some(json!({"type": "object",
                "properties": {"sku_code": {"type": "string", "maxLength": 8},
                               "ware_house": {"type": "string", "default": "main"}},
                "required": ["skuCode"], "additionalProperties": false})),
            "keys camel-cased, property names snake-cased, values untouched"
        );
        assert_eq!(tool.annotations, Some(json!({"readOnlyHint": true})));
        let entry = &file.tools.modules[0];
        assert_eq!(entry.name, "count_items");
        assert_eq!(entry.module_name, "inventory_tools");
        assert_eq!(entry.class_name.as_deref(), Some("InventoryTools"));
        assert_eq!(entry.function_name, "count_items_fn");
        assert_eq!(
            entry.return_type.as_deref(),
            Some("text"),
            "null return_type is text"
        );
        assert_eq!(entry.package_name.as_deref(), Some("inventory_pkg"));
        assert_eq!(entry.source.as_deref(), Some(""));
        assert_eq!(
            entry.setting,
            json!({"api_base": "https://x", "page_size": 50}),
            "the class's setting row, keys snake-cased"
        );
        assert_eq!(file.resources.resources.len(), 1);
        assert_eq!(
            file.resources.resources[0].mime_type.as_deref(),
            Some("text/plain")
        );
        assert_eq!(
            file.resources.templates[0].uri_template.as_deref(),
            Some("inventory://items/{sku}")
        );
        assert_eq!(file.prompts.items[0].arguments[0].name, "sku");
        assert!(file.prompts.items[0].arguments[0].required);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0]
                .contains("tool 'no_schema' of partition acme#t1: a tool needs an inputSchema")
        );
        assert!(problems[1].contains("resource 'no_uri'"), "{problems:?}");
        assert!(
            problems[2].contains("data is not an object"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_class_without_a_setting_row_gets_an_empty_setting_and_a_module_without_classes_is_classless()
     {
        let mut s = snapshot();
        s.settings.clear();
        let (file, _) = config_from_snapshot(&s);
        assert_eq!(file.tools.modules[0].setting, json!({}));
        s.modules[0].draft.classes = json!([]);
        s.functions[0].draft.class_name = None;
        let (file, _) = config_from_snapshot(&s);
        let entry = &file.tools.modules[0];
        assert_eq!(
            (entry.class_name.as_deref(), entry.package_name.as_deref()),
            (None, Some("inventory_pkg"))
        );
    }

    #[test]
    fn key_casing_follows_the_originals_helpers() {
        assert_eq!(camel("input_schema"), "inputSchema");
        assert_eq!(camel("inputSchema"), "inputSchema");
        assert_eq!(camel("additional_properties"), "additionalProperties");
        assert_eq!(camel("_meta"), "Meta", "the original's side effect");
        assert_eq!(snake("userName"), "user_name");
        assert_eq!(snake("user_name"), "user_name");
        assert_eq!(snake("Name"), "name");
    }
}
