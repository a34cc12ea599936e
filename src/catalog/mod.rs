//! Which tools, resources and prompts exist: built from the config file, each definition bound
//! (through the server's `Runtimes`) to the function that serves it, tool input schemas
//! compiled once. A running server holds one per partition in `Catalogs` (cache.rs), so a
//! reload swaps a partition's catalog atomically and reports what changed.

pub mod cache;
mod defs;
pub mod file;
pub mod records;
mod template;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::runtime::{Kind, Runtimes};
pub use cache::{CacheCounts, CatalogSource, Catalogs, FileSource};
pub use defs::{Binding, PromptArg, PromptDef, ResourceDef, TaskSupport, TemplateDef, ToolDef};
use defs::{bind, find_entry, listing_of, prompt_def, tool_def};
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
    pub async fn load(path: Option<&Path>, runtimes: &Runtimes) -> Result<Self, CatalogError> {
        Self::build(Self::read(path)?, runtimes).await
    }

    /// Reads and parses a config file (`None`: the embedded demo configuration).
    pub fn read(path: Option<&Path>) -> Result<ConfigFile, CatalogError> {
        match path {
            None => Self::parse("<embedded examples/config.json>", DEFAULT_CONFIG),
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|error| CatalogError::Read {
                    path: name.clone(),
                    error,
                })?;
                Self::parse(&name, &text)
            }
        }
    }

    pub fn parse(name: &str, text: &str) -> Result<ConfigFile, CatalogError> {
        serde_json::from_str(text).map_err(|error| CatalogError::Parse {
            path: name.to_string(),
            error,
        })
    }

    pub async fn from_json(
        name: &str,
        text: &str,
        runtimes: &Runtimes,
    ) -> Result<Self, CatalogError> {
        Self::build(Self::parse(name, text)?, runtimes).await
    }

    /// The catalog of `file`, or the first definition that cannot be built.
    pub async fn build(file: ConfigFile, runtimes: &Runtimes) -> Result<Self, CatalogError> {
        let (cat, mut errors) = Self::build_all(file, runtimes).await;
        match errors.is_empty() {
            true => Ok(cat),
            false => Err(errors.swap_remove(0)),
        }
    }

    /// Every definition of `file` that can be built, and why each other one cannot
    /// (`check-config` reports them all; start-up refuses on the first).
    pub async fn build_all(file: ConfigFile, runtimes: &Runtimes) -> (Self, Vec<CatalogError>) {
        let mut cat = Catalog {
            instructions: file.instructions,
            ..Default::default()
        };
        let mut errors = Vec::new();
        let mut note = |r: Result<(), CatalogError>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        for spec in file.tools.items {
            note(cat.add_tool(spec, &file.tools.modules, runtimes).await);
        }
        for spec in file.resources.resources {
            note(
                cat.add_resource(spec, &file.resources.resource_modules, runtimes)
                    .await,
            );
        }
        for spec in file.resources.templates {
            note(
                cat.add_template(spec, &file.resources.resource_modules, runtimes)
                    .await,
            );
        }
        for spec in file.prompts.items {
            note(cat.add_prompt(spec, &file.prompts.modules, runtimes).await);
        }
        (cat, errors)
    }

    async fn add_tool(
        &mut self,
        spec: file::ToolSpec,
        entries: &[file::ModuleEntry],
        runtimes: &Runtimes,
    ) -> Result<(), CatalogError> {
        let entry = find_entry(
            entries,
            &[&spec.name],
            "tool",
            &spec.name,
            "tools.tool_modules",
        )?;
        let binding = bind(runtimes, Kind::Tool, &spec.name, entry).await?;
        let def = tool_def(spec, binding)?;
        if self.tool_index.contains_key(&def.name) {
            return Err(entry_err("tool", &def.name, "is defined twice"));
        }
        self.tool_index.insert(def.name.clone(), self.tools.len());
        self.tools.push(Arc::new(def));
        Ok(())
    }

    async fn add_resource(
        &mut self,
        spec: file::ResourceSpec,
        entries: &[file::ModuleEntry],
        runtimes: &Runtimes,
    ) -> Result<(), CatalogError> {
        let uri = spec
            .uri
            .clone()
            .ok_or_else(|| entry_err("resource", &spec.name, "has no 'uri'"))?;
        let entry = find_entry(
            entries,
            &[&spec.name, &uri],
            "resource",
            &spec.name,
            "resources.resource_modules",
        )?;
        let binding = bind(runtimes, Kind::Resource, &spec.name, entry).await?;
        if self.resource_index.contains_key(&uri) {
            return Err(entry_err("resource", &uri, "is defined twice"));
        }
        let listing = listing_of(&spec, "uri", &uri);
        self.resource_index
            .insert(uri.clone(), self.resources.len());
        self.resources.push(Arc::new(ResourceDef {
            uri,
            listing,
            mime_type: spec.mime_type,
            binding,
        }));
        Ok(())
    }

    async fn add_template(
        &mut self,
        spec: file::ResourceSpec,
        entries: &[file::ModuleEntry],
        runtimes: &Runtimes,
    ) -> Result<(), CatalogError> {
        let raw = spec
            .uri_template
            .clone()
            .ok_or_else(|| entry_err("resource template", &spec.name, "has no 'uriTemplate'"))?;
        let template =
            UriTemplate::parse(&raw).map_err(|e| entry_err("resource template", &spec.name, e))?;
        let entry = find_entry(
            entries,
            &[&spec.name, &raw],
            "resource template",
            &spec.name,
            "resources.resource_modules",
        )?;
        let binding = bind(runtimes, Kind::Resource, &spec.name, entry).await?;
        let listing = listing_of(&spec, "uriTemplate", &raw);
        self.templates.push(Arc::new(TemplateDef {
            template,
            listing,
            mime_type: spec.mime_type,
            binding,
        }));
        Ok(())
    }

    async fn add_prompt(
        &mut self,
        spec: file::PromptSpec,
        entries: &[file::ModuleEntry],
        runtimes: &Runtimes,
    ) -> Result<(), CatalogError> {
        let entry = find_entry(
            entries,
            &[&spec.name],
            "prompt",
            &spec.name,
            "prompts.prompt_modules",
        )?;
        let binding = bind(runtimes, Kind::Prompt, &spec.name, entry).await?;
        let def = prompt_def(spec, binding);
        if self.prompt_index.contains_key(&def.name) {
            return Err(entry_err("prompt", &def.name, "is defined twice"));
        }
        self.prompt_index
            .insert(def.name.clone(), self.prompts.len());
        self.prompts.push(Arc::new(def));
        Ok(())
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

/// Which of a partition's lists changed (also what a `definitions_changed` bus event names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CatalogChanges {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
}

impl CatalogChanges {
    /// Every list (what a client must assume when nothing is known about the change).
    pub fn all() -> Self {
        Self {
            tools: true,
            resources: true,
            prompts: true,
        }
    }

    pub fn any(&self) -> bool {
        self.tools || self.resources || self.prompts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt() -> Runtimes {
        Runtimes::builtin_only()
    }

    #[tokio::test]
    async fn the_embedded_demo_config_loads() {
        let cat = Catalog::load(None, &rt()).await.unwrap();
        assert!(cat.tool("hello").is_some());
        assert!(cat.tool("add_numbers").is_some());
        assert!(cat.resource("status://server").is_some());
        assert!(cat.prompt("example-prompt").is_some());
    }

    #[tokio::test]
    async fn a_module_without_runtime_fails_naming_the_entry() {
        let cfg = r#"{"tools":{"tools":[{"name":"x","inputSchema":{"type":"object"}}],
            "tool_modules":[{"name":"x","module_name":"my_python_pkg","function_name":"f"}]}}"#;
        let err = Catalog::from_json("t", cfg, &rt())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("tool 'x'"), "{err}");
        assert!(err.contains("my_python_pkg"), "{err}");
    }

    #[tokio::test]
    async fn map_shaped_module_entries_load_too() {
        let cfg = r#"{"tools":{"tools":[{"name":"hi"}],
            "tool_modules":{"hi":{"module_name":"mcp_function_demo","function_name":"hello"}}}}"#;
        assert!(
            Catalog::from_json("t", cfg, &rt())
                .await
                .unwrap()
                .tool("hi")
                .is_some()
        );
    }

    #[tokio::test]
    async fn bad_tool_names_and_missing_entries_are_refused() {
        let cfg = r#"{"tools":{"tools":[{"name":"bad name"}],
            "tool_modules":[{"name":"bad name","module_name":"mcp_function_demo","function_name":"hello"}]}}"#;
        assert!(
            Catalog::from_json("t", cfg, &rt())
                .await
                .err()
                .unwrap()
                .to_string()
                .contains("name must be")
        );
        let cfg = r#"{"tools":{"tools":[{"name":"orphan"}]}}"#;
        assert!(
            Catalog::from_json("t", cfg, &rt())
                .await
                .err()
                .unwrap()
                .to_string()
                .contains("has no entry")
        );
    }

    #[tokio::test]
    async fn changes_are_reported_per_list() {
        let a = Catalog::load(None, &rt()).await.unwrap();
        let b = Catalog::from_json("t", r#"{"prompts":{"prompts":[]}}"#, &rt())
            .await
            .unwrap();
        let c = b.changes_from(&a);
        assert!(c.tools && c.resources && c.prompts);
        assert_eq!(
            Catalog::load(None, &rt()).await.unwrap().changes_from(&a),
            CatalogChanges::default()
        );
    }

    #[tokio::test]
    async fn the_bundle_shape_loads_with_links_and_module_settings() {
        let cfg = r#"{
          "tools": [{"name": "hi", "inputSchema": {"type": "object"}}],
          "resources": [{"uri": "status://server", "name": "Server Status"}],
          "prompts": [{"name": "p", "arguments": [{"name": "a", "required": true}]}],
          "module_links": [
            {"type": "tool", "name": "hi", "module_name": "mcp_function_demo",
             "function_name": "hello", "return_type": "text"},
            {"type": "resource", "name": "Server Status", "module_name": "mcp_function_demo",
             "function_name": "read_resource"},
            {"type": "prompt", "name": "p", "module_name": "mcp_function_demo",
             "function_name": "get_prompt"}],
          "modules": [{"module_name": "mcp_function_demo", "package_name": "demo",
                       "setting": {"k": 1}}]
        }"#;
        let cat = Catalog::from_json("t", cfg, &rt()).await.unwrap();
        assert_eq!(cat.tool("hi").unwrap().binding.setting, json!({"k": 1}));
        assert!(cat.resource("status://server").is_some());
        assert!(cat.prompt("p").is_some());
        let missing = r#"{"tools": [{"name": "x"}], "module_links": []}"#;
        let err = Catalog::from_json("t", missing, &rt()).await.err().unwrap();
        assert!(err.to_string().contains("tool 'x': has no entry"), "{err}");
    }

    #[tokio::test]
    async fn bad_return_types_and_timeouts_name_the_entry() {
        let cfg = r#"{"tools":{"tools":[{"name":"x"}],
            "tool_modules":[{"name":"x","module_name":"mcp_function_demo","function_name":"hello",
                             "return_type":"video"}]}}"#;
        let err = Catalog::from_json("t", cfg, &rt()).await.err().unwrap();
        assert!(
            err.to_string().contains("tool 'x': return_type 'video'"),
            "{err}"
        );
        let cfg = r#"{"tools":{"tools":[{"name":"x"}],
            "tool_modules":[{"name":"x","module_name":"mcp_function_demo","function_name":"hello",
                             "timeout_secs":-1}]}}"#;
        let err = Catalog::from_json("t", cfg, &rt()).await.err().unwrap();
        assert!(err.to_string().contains("timeout_secs must be"), "{err}");
    }
}
