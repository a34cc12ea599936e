//! Which tools, resources and prompts exist: built from the config file, each definition bound
//! to the function that serves it, tool input schemas compiled once. A running server holds the
//! catalog behind `CatalogHandle` so a reload swaps it atomically and reports what changed.

pub mod file;
mod template;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Map, Value, json};

use crate::auth::scope::Access;
use crate::runtime::{Function, builtin};
pub use file::ConfigFile;
pub use template::UriTemplate;

/// The demo configuration served when no config file is given (`examples/config.json`).
pub const DEFAULT_CONFIG: &str = include_str!("../../examples/config.json");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read config file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("config file {path} is not valid: {error}")]
    Parse {
        path: String,
        error: serde_json::Error,
    },
    #[error("{kind} '{name}': {reason}")]
    Entry {
        kind: &'static str,
        name: String,
        reason: String,
    },
}

fn entry_err(kind: &'static str, name: &str, reason: impl Into<String>) -> CatalogError {
    CatalogError::Entry {
        kind,
        name: name.to_string(),
        reason: reason.into(),
    }
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
    pub function: Arc<dyn Function>,
    pub setting: Value,
    /// Who may see and call it (scopes, roles); open when both are empty.
    pub access: Access,
}

pub struct ResourceDef {
    pub uri: String,
    pub listing: Value,
    pub mime_type: Option<String>,
    pub function: Arc<dyn Function>,
    pub setting: Value,
}

pub struct TemplateDef {
    pub template: UriTemplate,
    pub listing: Value,
    pub mime_type: Option<String>,
    pub function: Arc<dyn Function>,
    pub setting: Value,
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
    pub function: Arc<dyn Function>,
    pub setting: Value,
}

/// One immutable snapshot of everything the server offers.
#[derive(Default)]
pub struct Catalog {
    pub tools: Vec<Arc<ToolDef>>,
    pub resources: Vec<Arc<ResourceDef>>,
    pub templates: Vec<Arc<TemplateDef>>,
    pub prompts: Vec<Arc<PromptDef>>,
    pub instructions: Option<String>,
    tool_index: HashMap<String, usize>,
    resource_index: HashMap<String, usize>,
    prompt_index: HashMap<String, usize>,
}

impl Catalog {
    pub fn load(path: Option<&Path>) -> Result<Self, CatalogError> {
        match path {
            None => Self::from_json("<embedded examples/config.json>", DEFAULT_CONFIG),
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|error| CatalogError::Read {
                    path: name.clone(),
                    error,
                })?;
                Self::from_json(&name, &text)
            }
        }
    }

    pub fn from_json(name: &str, text: &str) -> Result<Self, CatalogError> {
        let file: ConfigFile = serde_json::from_str(text).map_err(|error| CatalogError::Parse {
            path: name.to_string(),
            error,
        })?;
        Self::build(file)
    }

    pub fn build(file: ConfigFile) -> Result<Self, CatalogError> {
        let mut modules = Modules::default();
        let mut cat = Catalog {
            instructions: file.instructions,
            ..Default::default()
        };
        for spec in file.tools.items {
            let entry = find_entry(
                &file.tools.modules,
                &[&spec.name],
                "tool",
                &spec.name,
                "tools.tool_modules",
            )?;
            let function = modules.resolve("tool", &spec.name, entry)?;
            let def = tool_def(spec, function, entry.setting.clone())?;
            if cat
                .tool_index
                .insert(def.name.clone(), cat.tools.len())
                .is_some()
            {
                return Err(entry_err("tool", &def.name, "is defined twice"));
            }
            cat.tools.push(Arc::new(def));
        }
        for spec in file.resources.resources {
            let uri = spec
                .uri
                .clone()
                .ok_or_else(|| entry_err("resource", &spec.name, "has no 'uri'"))?;
            let entry = find_entry(
                &file.resources.resource_modules,
                &[&spec.name, &uri],
                "resource",
                &spec.name,
                "resources.resource_modules",
            )?;
            let function = modules.resolve("resource", &spec.name, entry)?;
            let listing = listing_of(&spec, "uri", &uri);
            let def = ResourceDef {
                uri: uri.clone(),
                listing,
                mime_type: spec.mime_type,
                function,
                setting: entry.setting.clone(),
            };
            if cat
                .resource_index
                .insert(uri.clone(), cat.resources.len())
                .is_some()
            {
                return Err(entry_err("resource", &uri, "is defined twice"));
            }
            cat.resources.push(Arc::new(def));
        }
        for spec in file.resources.templates {
            let raw = spec.uri_template.clone().ok_or_else(|| {
                entry_err("resource template", &spec.name, "has no 'uriTemplate'")
            })?;
            let template = UriTemplate::parse(&raw)
                .map_err(|e| entry_err("resource template", &spec.name, e))?;
            let entry = find_entry(
                &file.resources.resource_modules,
                &[&spec.name, &raw],
                "resource template",
                &spec.name,
                "resources.resource_modules",
            )?;
            let function = modules.resolve("resource template", &spec.name, entry)?;
            let listing = listing_of(&spec, "uriTemplate", &raw);
            cat.templates.push(Arc::new(TemplateDef {
                template,
                listing,
                mime_type: spec.mime_type,
                function,
                setting: entry.setting.clone(),
            }));
        }
        for spec in file.prompts.items {
            let entry = find_entry(
                &file.prompts.modules,
                &[&spec.name],
                "prompt",
                &spec.name,
                "prompts.prompt_modules",
            )?;
            let function = modules.resolve("prompt", &spec.name, entry)?;
            let def = prompt_def(spec, function, entry.setting.clone());
            if cat
                .prompt_index
                .insert(def.name.clone(), cat.prompts.len())
                .is_some()
            {
                return Err(entry_err("prompt", &def.name, "is defined twice"));
            }
            cat.prompts.push(Arc::new(def));
        }
        Ok(cat)
    }

    pub fn tool(&self, name: &str) -> Option<&Arc<ToolDef>> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }
    pub fn resource(&self, uri: &str) -> Option<&Arc<ResourceDef>> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }
    pub fn prompt(&self, name: &str) -> Option<&Arc<PromptDef>> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }
    /// The first template that matches `uri`, with the variables it captured.
    pub fn match_template(&self, uri: &str) -> Option<(&Arc<TemplateDef>, Map<String, Value>)> {
        self.templates
            .iter()
            .find_map(|t| t.template.matches(uri).map(|vars| (t, vars)))
    }

    /// Which lists differ from `other` (for `notifications/*/list_changed` after a reload).
    pub fn changes_from(&self, other: &Catalog) -> CatalogChanges {
        let listings = |v: &[Value]| Value::Array(v.to_vec());
        CatalogChanges {
            tools: listings(
                &self
                    .tools
                    .iter()
                    .map(|t| t.listing.clone())
                    .collect::<Vec<_>>(),
            ) != listings(
                &other
                    .tools
                    .iter()
                    .map(|t| t.listing.clone())
                    .collect::<Vec<_>>(),
            ),
            resources: self
                .resources
                .iter()
                .map(|r| &r.listing)
                .ne(other.resources.iter().map(|r| &r.listing))
                || self
                    .templates
                    .iter()
                    .map(|t| &t.listing)
                    .ne(other.templates.iter().map(|t| &t.listing)),
            prompts: self
                .prompts
                .iter()
                .map(|p| &p.listing)
                .ne(other.prompts.iter().map(|p| &p.listing)),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogChanges {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
}

impl CatalogChanges {
    /// The catalog event types (`tools_changed`, ...) of what changed.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.tools, "tools_changed"),
            (self.resources, "resources_changed"),
            (self.prompts, "prompts_changed"),
        ]
        .into_iter()
        .filter_map(|(changed, kind)| changed.then_some(kind))
    }
}

/// Builtin modules instantiated once per catalog, shared by every entry that names them.
#[derive(Default)]
struct Modules {
    loaded: HashMap<String, Box<dyn builtin::Module>>,
}

impl Modules {
    fn resolve(
        &mut self,
        kind: &'static str,
        name: &str,
        entry: &file::ModuleEntry,
    ) -> Result<Arc<dyn Function>, CatalogError> {
        if !self.loaded.contains_key(&entry.module_name) {
            let module = builtin::module(&entry.module_name).ok_or_else(|| {
                entry_err(kind, name, format!(
                    "module '{}' is not a builtin module ({}), and this build has no Python runtime to load it",
                    entry.module_name,
                    builtin::MODULES.join(", ")
                ))
            })?;
            self.loaded.insert(entry.module_name.clone(), module);
        }
        let module = self
            .loaded
            .get(&entry.module_name)
            .ok_or_else(|| entry_err(kind, name, "module vanished"))?;
        module.function(&entry.function_name).ok_or_else(|| {
            entry_err(
                kind,
                name,
                format!(
                    "module '{}' has no function '{}'",
                    entry.module_name, entry.function_name
                ),
            )
        })
    }
}

fn find_entry<'a>(
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
fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

fn tool_def(
    spec: file::ToolSpec,
    function: Arc<dyn Function>,
    setting: Value,
) -> Result<ToolDef, CatalogError> {
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
        function,
        setting,
    })
}

fn prompt_def(spec: file::PromptSpec, function: Arc<dyn Function>, setting: Value) -> PromptDef {
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
        function,
        setting,
    }
}

fn listing_of(spec: &file::ResourceSpec, uri_key: &str, uri: &str) -> Value {
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

/// The live catalog of a server: readers take a cheap snapshot; a reload swaps it whole.
pub struct CatalogHandle {
    current: RwLock<Arc<Catalog>>,
}

impl CatalogHandle {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            current: RwLock::new(Arc::new(catalog)),
        }
    }
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.current.read().clone()
    }
    /// Installs `next` and reports which lists changed.
    pub fn replace(&self, next: Catalog) -> CatalogChanges {
        let mut cur = self.current.write();
        let changes = next.changes_from(&cur);
        *cur = Arc::new(next);
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_demo_config_loads() {
        let cat = Catalog::load(None).unwrap();
        assert!(cat.tool("hello").is_some());
        assert!(cat.tool("add_numbers").is_some());
        assert!(cat.resource("status://server").is_some());
        assert!(cat.prompt("example-prompt").is_some());
    }

    #[test]
    fn a_module_without_runtime_fails_naming_the_entry() {
        let cfg = r#"{"tools":{"tools":[{"name":"x","inputSchema":{"type":"object"}}],
            "tool_modules":[{"name":"x","module_name":"my_python_pkg","function_name":"f"}]}}"#;
        let err = Catalog::from_json("t", cfg).err().unwrap().to_string();
        assert!(err.contains("tool 'x'"), "{err}");
        assert!(err.contains("my_python_pkg"), "{err}");
    }

    #[test]
    fn map_shaped_module_entries_load_too() {
        let cfg = r#"{"tools":{"tools":[{"name":"hi"}],
            "tool_modules":{"hi":{"module_name":"mcp_function_demo","function_name":"hello"}}}}"#;
        assert!(Catalog::from_json("t", cfg).unwrap().tool("hi").is_some());
    }

    #[test]
    fn bad_tool_names_and_missing_entries_are_refused() {
        let cfg = r#"{"tools":{"tools":[{"name":"bad name"}],
            "tool_modules":[{"name":"bad name","module_name":"mcp_function_demo","function_name":"hello"}]}}"#;
        assert!(
            Catalog::from_json("t", cfg)
                .err()
                .unwrap()
                .to_string()
                .contains("name must be")
        );
        let cfg = r#"{"tools":{"tools":[{"name":"orphan"}]}}"#;
        assert!(
            Catalog::from_json("t", cfg)
                .err()
                .unwrap()
                .to_string()
                .contains("has no entry")
        );
    }

    #[test]
    fn changes_are_reported_per_list() {
        let a = Catalog::load(None).unwrap();
        let b = Catalog::from_json("t", r#"{"prompts":{"prompts":[]}}"#).unwrap();
        let c = b.changes_from(&a);
        assert!(c.tools && c.resources && c.prompts);
        assert_eq!(
            Catalog::load(None).unwrap().changes_from(&a),
            CatalogChanges::default()
        );
    }
}
