//! The MCP config file, in both of the Python daemon's JSON shapes: the sectioned one
//! (`tools.tools` with `tools.tool_modules`, `resources.resources` with
//! `resources.resource_modules`, `prompts.prompts` with `prompts.prompt_modules`; module entries
//! as a list of objects with `name` or as a map from name to entry), and the bundle shape its
//! modules carry as `MCP_CONFIGURATION` (`{tools, resources, prompts, module_links, modules}`:
//! flat lists, links naming each definition's function, modules carrying package, source and
//! setting), which is turned into the first.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(try_from = "Value")]
pub struct ConfigFile {
    pub tools: Section<ToolSpec>,
    pub resources: ResourceSection,
    pub prompts: Section<PromptSpec>,
    /// Optional text the server returns as `instructions` from `initialize`.
    pub instructions: Option<String>,
}

impl TryFrom<Value> for ConfigFile {
    type Error = serde_json::Error;

    fn try_from(v: Value) -> Result<Self, Self::Error> {
        let bundle = v.get("module_links").is_some() || v.get("tools").is_some_and(Value::is_array);
        if bundle {
            return Ok(serde_json::from_value::<BundleShape>(v)?.into());
        }
        let s: Sectioned = serde_json::from_value(v)?;
        Ok(Self {
            tools: s.tools,
            resources: s.resources,
            prompts: s.prompts,
            instructions: s.instructions,
        })
    }
}

#[derive(Deserialize)]
struct Sectioned {
    #[serde(default)]
    tools: Section<ToolSpec>,
    #[serde(default)]
    resources: ResourceSection,
    #[serde(default)]
    prompts: Section<PromptSpec>,
    #[serde(default)]
    instructions: Option<String>,
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
    /// The bundle `<package_name>.zip` (defaults to `module_name`).
    #[serde(default)]
    pub package_name: Option<String>,
    /// Where the code comes from: absent or `null` is an installed package, `""` or `"s3"` the
    /// bundle store, anything else a local zip or folder.
    #[serde(default)]
    pub source: Option<String>,
    /// The function is a coroutine function (`async def`).
    #[serde(default)]
    pub is_async: bool,
    /// `builtin`, `python` or `command`; absent lets the first runtime that serves it take it.
    #[serde(default)]
    pub runtime: Option<String>,
    /// The program and its arguments (command runtime).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// This function's deadline in seconds, over the runtime's default.
    #[serde(default)]
    pub timeout_secs: Option<f64>,
}

/// The bundle shape (`MCP_CONFIGURATION` of a module, and the README's example).
#[derive(Deserialize)]
struct BundleShape {
    #[serde(default)]
    tools: Vec<ToolSpec>,
    #[serde(default)]
    resources: Vec<ResourceSpec>,
    #[serde(default, rename = "resourceTemplates", alias = "resource_templates")]
    templates: Vec<ResourceSpec>,
    #[serde(default)]
    prompts: Vec<PromptSpec>,
    #[serde(default)]
    module_links: Vec<ModuleLink>,
    #[serde(default)]
    modules: Vec<ModuleDecl>,
    #[serde(default)]
    instructions: Option<String>,
}

/// Which function serves the definition `name` of kind `type`.
#[derive(Deserialize)]
struct ModuleLink {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    module_name: String,
    #[serde(default)]
    class_name: Option<String>,
    function_name: String,
    #[serde(default)]
    return_type: Option<String>,
    #[serde(default)]
    is_async: Option<bool>,
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    timeout_secs: Option<f64>,
}

/// A module: its bundle, where it comes from, and the setting its class is built with.
#[derive(Deserialize)]
struct ModuleDecl {
    module_name: String,
    #[serde(default)]
    package_name: Option<String>,
    #[serde(default)]
    class_name: Option<String>,
    #[serde(default)]
    setting: Value,
    #[serde(default)]
    source: Option<String>,
}

impl From<BundleShape> for ConfigFile {
    fn from(b: BundleShape) -> Self {
        let entries = |kind: &str| -> Vec<ModuleEntry> {
            b.module_links
                .iter()
                .filter(|l| l.kind == kind)
                .map(|l| {
                    // The link's class first, else any declaration of the module.
                    let decl = b
                        .modules
                        .iter()
                        .find(|m| m.module_name == l.module_name && m.class_name == l.class_name)
                        .or_else(|| b.modules.iter().find(|m| m.module_name == l.module_name));
                    ModuleEntry {
                        name: l.name.clone(),
                        module_name: l.module_name.clone(),
                        class_name: l.class_name.clone(),
                        function_name: l.function_name.clone(),
                        setting: decl.map(|d| d.setting.clone()).unwrap_or(Value::Null),
                        return_type: l.return_type.clone(),
                        package_name: decl.and_then(|d| d.package_name.clone()),
                        source: decl.and_then(|d| d.source.clone()),
                        is_async: l.is_async.unwrap_or(false),
                        runtime: l.runtime.clone(),
                        command: l.command.clone(),
                        timeout_secs: l.timeout_secs,
                    }
                })
                .collect()
        };
        let (tools, resources, prompts) = (entries("tool"), entries("resource"), entries("prompt"));
        Self {
            tools: Section {
                modules: tools,
                items: b.tools,
            },
            resources: ResourceSection {
                resource_modules: resources,
                resources: b.resources,
                templates: b.templates,
            },
            prompts: Section {
                modules: prompts,
                items: b.prompts,
            },
            instructions: b.instructions,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_daemons_readme_config_parses_unchanged() {
        let text = include_str!("../../tests/fixtures/functions/readme_demo.json");
        let file: ConfigFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.tools.items.len(), 2);
        let hello = &file.tools.modules[0];
        assert_eq!(hello.name, "hello");
        assert_eq!(hello.class_name.as_deref(), Some("MCPFunctionDemo"));
        assert_eq!(hello.package_name.as_deref(), Some("mcp_function_demo"));
        assert_eq!(hello.source, None, "no source: an installed package");
        assert_eq!(file.resources.resource_modules[0].name, "Server Status");
        assert_eq!(file.prompts.modules[0].function_name, "get_prompt");
    }
}
