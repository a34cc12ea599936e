//! The definitions a catalog holds (tools, resources, templates, prompts), each bound to its
//! function, and how one is built from its config-file spec: names checked, schemas compiled,
//! listings prepared once, the function bound through the runtimes.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{CatalogError, UriTemplate, entry_err, file};
use crate::auth::scope::Access;
use crate::runtime::{CodeRef, Function, FunctionSpec, Kind, ReturnType, Runtimes};

/// What a definition is bound to: the function, and the setting from its module entry.
#[derive(Clone)]
pub struct Binding {
    pub function: Arc<dyn Function>,
    pub setting: Value,
    /// Which runtime serves it (`builtin`, `python`, `command`).
    pub runtime: &'static str,
    /// The module it comes from (`module_name`: the cache routes count them).
    pub module: String,
}

/// Whether a tool may run as a task (tasks extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    Forbidden,
    Optional,
    Required,
}

pub struct ToolDef {
    pub name: String,
    pub task_support: TaskSupport,
    /// The `Tool` object as `tools/list` shows it.
    pub listing: Value,
    pub validator: Option<jsonschema::Validator>,
    pub output_validator: Option<jsonschema::Validator>,
    pub binding: Binding,
    /// Who may see and call it (scopes, roles); open when both are empty.
    pub access: Access,
}

pub struct ResourceDef {
    pub uri: String,
    pub listing: Value,
    pub mime_type: Option<String>,
    pub binding: Binding,
}

pub struct TemplateDef {
    pub template: UriTemplate,
    pub listing: Value,
    pub mime_type: Option<String>,
    pub binding: Binding,
}

pub struct PromptArg {
    pub name: String,
    pub required: bool,
    pub completions: Vec<String>,
}

pub struct PromptDef {
    pub name: String,
    pub listing: Value,
    pub arguments: Vec<PromptArg>,
    pub binding: Binding,
}

/// Binds one definition's function through the runtimes; an error names the definition.
pub(super) async fn bind(
    runtimes: &Runtimes,
    kind: Kind,
    name: &str,
    entry: &file::ModuleEntry,
) -> Result<Binding, CatalogError> {
    let what = kind.as_str();
    let return_type =
        ReturnType::parse(entry.return_type.as_deref()).map_err(|e| entry_err(what, name, e))?;
    let timeout = match entry.timeout_secs {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 => Some(std::time::Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(entry_err(
                what,
                name,
                format!("timeout_secs must be a positive number of seconds, not {s}"),
            ));
        }
    };
    let setting = match &entry.setting {
        Value::Null => json!({}),
        v => v.clone(),
    };
    let spec = FunctionSpec {
        kind,
        entry: name.to_string(),
        code: CodeRef {
            module: entry.module_name.clone(),
            package: entry
                .package_name
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| entry.module_name.clone()),
            source: entry.source.clone(),
        },
        class: entry.class_name.clone().filter(|c| !c.is_empty()),
        function: entry.function_name.clone(),
        setting: setting.clone(),
        return_type,
        is_async: entry.is_async,
        runtime: entry.runtime.clone(),
        command: entry.command.clone(),
        timeout,
    };
    let (runtime, function) = runtimes
        .bind(&spec)
        .await
        .map_err(|e| entry_err(what, name, e.to_string()))?;
    Ok(Binding {
        function,
        setting,
        runtime,
        module: entry.module_name.clone(),
    })
}

pub(super) fn find_entry<'a>(
    entries: &'a [file::ModuleEntry],
    keys: &[&str],
    kind: &'static str,
    name: &str,
    section: &str,
) -> Result<&'a file::ModuleEntry, CatalogError> {
    keys.iter()
        .find_map(|k| entries.iter().find(|e| e.name == *k))
        .ok_or_else(|| entry_err(kind, name, format!("has no entry in {section}")))
}

/// Tool names per spec server/tools: 1..=128 characters of `[A-Za-z0-9_.-]`; we also allow `/`
/// as the conformance suite does, but nothing else.
pub(super) fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

pub(super) fn tool_def(spec: file::ToolSpec, binding: Binding) -> Result<ToolDef, CatalogError> {
    if !valid_tool_name(&spec.name) {
        return Err(entry_err(
            "tool",
            &spec.name,
            "name must be 1-128 characters of A-Z a-z 0-9 _ - . /",
        ));
    }
    let input_schema = spec
        .input_schema
        .unwrap_or_else(|| json!({"type": "object"}));
    if input_schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(entry_err(
            "tool",
            &spec.name,
            "inputSchema must have \"type\": \"object\"",
        ));
    }
    let compile = |schema: &Value, what: &str| {
        jsonschema::draft202012::options()
            .build(schema)
            .map_err(|e| {
                entry_err(
                    "tool",
                    &spec.name,
                    format!("{what} is not a valid JSON Schema: {e}"),
                )
            })
    };
    let validator = Some(compile(&input_schema, "inputSchema")?);
    let output_validator = match &spec.output_schema {
        Some(s) => Some(compile(s, "outputSchema")?),
        None => None,
    };
    let mut listing = Map::new();
    listing.insert("name".into(), json!(spec.name));
    insert_opt(&mut listing, "title", spec.title.map(Value::String));
    insert_opt(
        &mut listing,
        "description",
        spec.description.map(Value::String),
    );
    listing.insert("inputSchema".into(), input_schema);
    insert_opt(&mut listing, "outputSchema", spec.output_schema);
    insert_opt(&mut listing, "annotations", spec.annotations);
    insert_opt(&mut listing, "icons", spec.icons);
    let task_support = match spec
        .execution
        .as_ref()
        .and_then(|e| e.get("taskSupport"))
        .and_then(Value::as_str)
    {
        None | Some("forbidden") => TaskSupport::Forbidden,
        Some("optional") => TaskSupport::Optional,
        Some("required") => TaskSupport::Required,
        Some(other) => {
            return Err(entry_err(
                "tool",
                &spec.name,
                format!("execution.taskSupport '{other}' is not forbidden, optional or required"),
            ));
        }
    };
    Ok(ToolDef {
        access: Access {
            scopes: spec.scopes,
            roles: spec.roles,
        },
        name: spec.name,
        task_support,
        listing: Value::Object(listing),
        validator,
        output_validator,
        binding,
    })
}

pub(super) fn prompt_def(spec: file::PromptSpec, binding: Binding) -> PromptDef {
    let mut listing = Map::new();
    listing.insert("name".into(), json!(spec.name));
    insert_opt(&mut listing, "title", spec.title.map(Value::String));
    insert_opt(
        &mut listing,
        "description",
        spec.description.map(Value::String),
    );
    let args: Vec<Value> = spec
        .arguments
        .iter()
        .map(|a| {
            let mut m = Map::new();
            m.insert("name".into(), json!(a.name));
            insert_opt(&mut m, "title", a.title.clone().map(Value::String));
            insert_opt(
                &mut m,
                "description",
                a.description.clone().map(Value::String),
            );
            m.insert("required".into(), json!(a.required));
            Value::Object(m)
        })
        .collect();
    if !args.is_empty() {
        listing.insert("arguments".into(), Value::Array(args));
    }
    let arguments = spec
        .arguments
        .into_iter()
        .map(|a| PromptArg {
            name: a.name,
            required: a.required,
            completions: a.completions,
        })
        .collect();
    PromptDef {
        name: spec.name,
        listing: Value::Object(listing),
        arguments,
        binding,
    }
}

pub(super) fn listing_of(spec: &file::ResourceSpec, uri_key: &str, uri: &str) -> Value {
    let mut m = Map::new();
    m.insert(uri_key.into(), json!(uri));
    m.insert("name".into(), json!(spec.name));
    insert_opt(&mut m, "title", spec.title.clone().map(Value::String));
    insert_opt(
        &mut m,
        "description",
        spec.description.clone().map(Value::String),
    );
    insert_opt(
        &mut m,
        "mimeType",
        spec.mime_type.clone().map(Value::String),
    );
    insert_opt(&mut m, "annotations", spec.annotations.clone());
    Value::Object(m)
}

fn insert_opt(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(key.into(), v);
    }
}
