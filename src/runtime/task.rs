//! The task side of a call (MCP tasks extension, `io.modelcontextprotocol/tasks`): a function
//! may turn itself into a task with `Ctx::begin_task`; from then on the request has been
//! answered with the task's id, the function runs on, and its questions to the client wait for
//! `tasks/update` instead of ending the call.

use async_trait::async_trait;
use serde_json::Value;

use super::ClientRequestError;

/// Implemented by the engine for calls that may become tasks.
#[async_trait]
pub trait TaskLink: Send + Sync {
    /// Switches the call to a task (idempotent): the engine answers the request now.
    fn begin(&self);
    /// Whether the call is running as a task.
    fn started(&self) -> bool;
    /// Task phase: publishes the questions as the task's `inputRequests` (status
    /// `input_required`) and waits until every one is answered through `tasks/update`.
    async fn ask_all(
        &self,
        asks: Vec<(String, String, Value)>,
    ) -> Result<Vec<Value>, ClientRequestError>;
}
