//! The MCP config file, in the Python daemon's JSON format: `tools.tools` with
//! `tools.tool_modules`, `resources.resources` with `resources.resource_modules`, and
//! `prompts.prompts` with `prompts.prompt_modules`. Module entries are accepted as a list of
//! objects with `name` or as a map from name to entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub tools: Section<ToolSpec>,
    #[serde(default)]
    pub resources: ResourceSection,
    #[serde(default)]
    pub prompts: Section<PromptSpec>,
    /// Optional text the server returns as `instructions` from `initialize`.
    #[serde(default)]
    pub instructions: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Section<T> {
    #[serde(default = "Vec::new", alias = "items")]
    #[serde(rename = "tools", alias = "prompts")]
    pub items: Vec<T>,
    #[serde(
        default,
        alias = "prompt_modules",
        rename = "tool_modules",
        deserialize_with = "modules"
    )]
    pub modules: Vec<ModuleEntry>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            modules: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceSection {
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default, rename = "resourceTemplates", alias = "resource_templates")]
    pub templates: Vec<ResourceSpec>,
    #[serde(default, deserialize_with = "modules")]
    pub resource_modules: Vec<ModuleEntry>,
}

/// Where a definition's function lives.
#[derive(Debug, Clone, Deserialize)]
pub struct ModuleEntry {
    #[serde(default)]
    pub name: String,
    pub module_name: String,
    #[serde(default)]
    pub class_name: Option<String>,
    pub function_name: String,
    /// Free-form settings handed to the function (`Ctx::setting`).
    #[serde(default)]
    pub setting: Value,
    /// `text` | `image` | `embedded_resource` (Python daemon); builtins shape their own output.
    #[serde(default)]
    pub return_type: Option<String>,
}

fn modules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModuleEntry>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        List(Vec<ModuleEntry>),
        Map(BTreeMap<String, ModuleEntry>),
    }
    Ok(match Shape::deserialize(d)? {
        Shape::List(v) => v,
        Shape::Map(m) => m
            .into_iter()
            .map(|(name, mut e)| {
                if e.name.is_empty() {
                    e.name = name;
                }
                e
            })
            .collect(),
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "inputSchema", alias = "input_schema", default)]
    pub input_schema: Option<Value>,
    #[serde(rename = "outputSchema", alias = "output_schema", default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub annotations: Option<Value>,
    #[serde(default)]
    pub icons: Option<Value>,
    /// `{"taskSupport": "forbidden" | "optional" | "required"}` (tasks extension).
    #[serde(default)]
    pub execution: Option<Value>,
    /// Scopes a caller's token needs (all of them) to see and call the tool.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Roles the caller needs (any one of them) to see and call the tool.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceSpec {
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(rename = "uriTemplate", alias = "uri_template", default)]
    pub uri_template: Option<String>,
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "mimeType", alias = "mime_type", default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub annotations: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PromptSpec {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: Vec<PromptArgSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PromptArgSpec {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Values offered by `completion/complete` for this argument (prefix-filtered).
    #[serde(default)]
    pub completions: Vec<String>,
}
