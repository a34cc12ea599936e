//! The plug between the catalog and the ways functions run. The catalog describes each
//! definition's function as a `FunctionSpec`; `Runtimes` asks each runtime in turn whether it
//! serves it and lets the first that does bind it. Runtimes are built once at start-up and
//! shared by every catalog (a reload rebinds, it does not restart worker pools).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;

use super::builtin;
use super::{CodeRef, Function};

/// What kind of definition a function backs: it decides how the function is called (a tool
/// with its arguments, a resource with its uri, a prompt with its name and arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Resource,
    Prompt,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Resource => "resource",
            Self::Prompt => "prompt",
        }
    }
}

/// How a Python function's return value becomes content (the Python daemon's `return_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnType {
    #[default]
    Text,
    Image,
    EmbeddedResource,
}

impl ReturnType {
    /// `None` (and the `null` the Python daemon stores) is `text`.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw {
            None | Some("text") => Ok(Self::Text),
            Some("image") => Ok(Self::Image),
            Some("embedded_resource") => Ok(Self::EmbeddedResource),
            Some(other) => Err(format!(
                "return_type '{other}' is not text, image or embedded_resource"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::EmbeddedResource => "embedded_resource",
        }
    }
}

/// Everything a runtime needs to bind one definition's function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub kind: Kind,
    /// The tool or prompt name, or the resource's name: what logs and errors call it.
    pub entry: String,
    /// Where the code lives (`module_name`, `package_name`, `source`).
    pub code: CodeRef,
    /// `class_name`: built as `cls(logger, **setting)`; `None` calls a module-level function.
    pub class: Option<String>,
    pub function: String,
    /// The settings the class is built with (builtins read them from `Ctx::setting`).
    pub setting: Value,
    pub return_type: ReturnType,
    /// `is_async`: the function is a coroutine function.
    pub is_async: bool,
    /// `runtime`: asks for one runtime by name (`builtin`, `python`, `command`); `None` lets
    /// the first runtime that serves the entry take it.
    pub runtime: Option<String>,
    /// `command`: the program and its arguments, for the command runtime.
    pub command: Option<Vec<String>>,
    /// `timeout_secs`: this function's deadline, over the runtime's default.
    pub timeout: Option<Duration>,
}

/// Why a definition's function could not be bound.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The code's store could not be reached.
    #[error("{0}")]
    Unavailable(String),
}

impl From<super::CodeError> for RuntimeError {
    fn from(e: super::CodeError) -> Self {
        use super::CodeError;
        match e {
            CodeError::NotFound(m) => Self::NotFound(m),
            CodeError::Invalid(m) => Self::Invalid(m),
            CodeError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

/// A way to run functions: builtin Rust modules, a Python worker pool, an executable.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The name an entry's `runtime` field selects it by.
    fn name(&self) -> &'static str;
    /// Whether this runtime takes `spec` when the entry names no runtime.
    fn serves(&self, spec: &FunctionSpec) -> bool;
    /// Binds the function: checks that its code can be found (without running any of it) and
    /// returns the callable. Work that needs the code itself (download, import) waits for the
    /// first call, so a bundle that turns bad later fails only its own calls.
    async fn bind(&self, spec: &FunctionSpec) -> Result<Arc<dyn Function>, RuntimeError>;
    /// Stops what the runtime runs (worker processes); called once at shutdown.
    async fn shutdown(&self) {}
}

/// The runtimes of a server, tried in order.
#[derive(Clone)]
pub struct Runtimes(Vec<Arc<dyn Runtime>>);

impl Runtimes {
    pub fn new(runtimes: Vec<Arc<dyn Runtime>>) -> Self {
        Self(runtimes)
    }

    /// Only the builtin modules (tests, and builds that serve no Python).
    pub fn builtin_only() -> Self {
        Self(vec![Arc::new(BuiltinRuntime::default())])
    }

    /// The function for `spec`, with the name of the runtime that bound it.
    pub async fn bind(
        &self,
        spec: &FunctionSpec,
    ) -> Result<(&'static str, Arc<dyn Function>), RuntimeError> {
        let runtime = match &spec.runtime {
            Some(name) => self.0.iter().find(|r| r.name() == name).ok_or_else(|| {
                RuntimeError::Invalid(format!(
                    "runtime '{name}' is not one of: {}",
                    self.names().join(", ")
                ))
            })?,
            None => self.0.iter().find(|r| r.serves(spec)).ok_or_else(|| {
                RuntimeError::NotFound(format!(
                    "module '{}' is not a builtin module ({}), and no other runtime ({}) serves it",
                    spec.code.module,
                    builtin::MODULES.join(", "),
                    self.names().join(", ")
                ))
            })?,
        };
        Ok((runtime.name(), runtime.bind(spec).await?))
    }

    pub async fn shutdown(&self) {
        for r in &self.0 {
            r.shutdown().await;
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|r| r.name()).collect()
    }
}

/// The builtin Rust modules. Each is instantiated once per server and shared by every entry
/// (and every reloaded catalog) that names it, so state it keeps lives as long as the server.
#[derive(Default)]
pub struct BuiltinRuntime {
    loaded: Mutex<HashMap<String, Arc<dyn builtin::Module>>>,
}

#[async_trait]
impl Runtime for BuiltinRuntime {
    fn name(&self) -> &'static str {
        "builtin"
    }

    /// A builtin module's name with no class, bundle or command: an entry naming a class or a
    /// `source` is Python code, even under a builtin's name (the Python daemon's demo module is
    /// called `mcp_function_demo` too).
    fn serves(&self, spec: &FunctionSpec) -> bool {
        spec.command.is_none()
            && spec.class.is_none()
            && spec.code.source.is_none()
            && builtin::MODULES.contains(&spec.code.module.as_str())
    }

    async fn bind(&self, spec: &FunctionSpec) -> Result<Arc<dyn Function>, RuntimeError> {
        let module = {
            let mut loaded = self.loaded.lock();
            match loaded.get(&spec.code.module) {
                Some(m) => m.clone(),
                None => {
                    let m: Arc<dyn builtin::Module> = builtin::module(&spec.code.module)
                        .ok_or_else(|| {
                            RuntimeError::NotFound(format!(
                                "module '{}' is not a builtin module ({})",
                                spec.code.module,
                                builtin::MODULES.join(", ")
                            ))
                        })?
                        .into();
                    loaded.insert(spec.code.module.clone(), m.clone());
                    m
                }
            }
        };
        module.function(&spec.function).ok_or_else(|| {
            RuntimeError::NotFound(format!(
                "module '{}' has no function '{}'",
                spec.code.module, spec.function
            ))
        })
    }
}
