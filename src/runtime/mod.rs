//! How one function runs. A `Function` gets its arguments and a `Ctx` (who calls, cancellation,
//! progress/log/client-request handles) and returns an `Output`. A `Runtime` binds the
//! functions the config names (`resolve`): builtin Rust modules live in `builtin`; the Python
//! worker pool and the command runtime find their code through a `CodeSource` (`code`).

pub mod builtin;
pub mod bundle;
mod code;
pub mod command;
mod ctx;
mod input;
pub mod proc;
pub mod python;
mod resolve;
pub mod sandbox;
mod task;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub use bundle::{BundleCache, BundleSettings, ZipLimits};
pub use code::{CodeError, CodeLocation, CodeRef, CodeSource, LocalCode};
pub use command::{CommandRuntime, CommandSettings};
pub use ctx::{Ctx, List, Peer};
pub use input::InputRound;
pub use python::{PythonRuntime, PythonSettings};
pub use resolve::{
    BuiltinRuntime, FunctionSpec, Kind, ReturnType, Runtime, RuntimeError, Runtimes,
};
pub use task::TaskLink;

use crate::protocol::RpcError;

/// What a function produced; the engine shapes it into the MCP result of its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Plain text: a text content item, a text resource, or a user prompt message.
    Text(String),
    /// Ready-made MCP content items (`{type: text|image|audio|resource|resource_link, ...}`) for
    /// tools and prompts (as user messages), or `contents` items for resources.
    Content(Vec<Value>),
    /// A JSON value: `structuredContent` (plus its text form) for tools, JSON text for
    /// resources.
    Json(Value),
    /// The complete MCP result object (e.g. a `CallToolResult` with `isError`, or a
    /// `GetPromptResult` with several messages), passed through unchanged.
    Result(Value),
}

/// Why a function failed. For tools this becomes a result with `isError: true`; for resources
/// and prompts a JSON-RPC error.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("{0}")]
    Failed(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error(transparent)]
    Client(#[from] ClientRequestError),
    /// A protocol-level failure: a JSON-RPC error for a plain call, a `failed` task otherwise.
    #[error("{}", .0.message)]
    Rpc(RpcError),
}

/// Why a request to the client (sampling, elicitation, roots) did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientRequestError {
    #[error("the client did not declare the '{0}' capability")]
    NotSupported(&'static str),
    #[error("this transport cannot carry requests to the client (use /mcp, /sse or stdio)")]
    NoBackChannel,
    #[error("the client did not answer {method} within {}s", timeout.as_secs())]
    Timeout { method: String, timeout: Duration },
    #[error("the client answered {method} with error {}: {}", error.code, error.message)]
    Rejected { method: String, error: RpcError },
    #[error("the session ended while waiting for the client")]
    SessionGone,
    #[error("the request was cancelled")]
    Cancelled,
    /// Stateless era: the request does not carry the client's answer yet; the engine turns this
    /// into an `input_required` result.
    #[error("the client has to provide input first")]
    InputRequired,
}

/// One callable unit of work behind a tool, resource or prompt.
#[async_trait]
pub trait Function: Send + Sync + 'static {
    async fn call(&self, ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError>;
}
