//! What a running function may do besides returning: report progress, log, ask the client, and
//! notice cancellation. The engine provides the `Peer` that carries these out.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::ClientRequestError;
use crate::auth::Principal;
use crate::state::{LogLevel, SessionId};

/// The engine's side of a running call: sends messages on the request's stream and routes
/// requests to the client.
#[async_trait]
pub trait Peer: Send + Sync {
    /// Sends a notification related to the running request (progress, log).
    async fn notify(&self, method: &str, params: Value);
    /// Sends a request to the client on the request's stream and waits for its response.
    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientRequestError>;
    /// Closes the request's response stream without ending the request; the client resumes
    /// it with `Last-Event-ID` and gets what follows (SEP-1699). No-op on other transports.
    async fn close_stream(&self);
    /// Whether the client declared `capability` (e.g. `sampling`) in `initialize`.
    fn client_supports(&self, capability: &str) -> bool;
    /// Tells every session subscribed to `uri` that the resource changed.
    async fn resource_updated(&self, uri: &str);
}

pub struct Ctx {
    pub session_id: Option<SessionId>,
    pub principal: Principal,
    /// Cancelled by `notifications/cancelled` or when the session ends.
    pub cancel: CancellationToken,
    /// The tool, prompt or resource name the client invoked (one function may back several).
    pub entry: String,
    /// The module entry's `setting` from the config file.
    pub setting: Value,
    progress_token: Option<Value>,
    log_level: Option<LogLevel>,
    peer: Arc<dyn Peer>,
    /// Progress must increase (spec basic/utilities/progress); remember the last value sent.
    last_progress: Mutex<Option<f64>>,
}

impl Ctx {
    pub fn new(
        session_id: Option<SessionId>,
        principal: Principal,
        cancel: CancellationToken,
        progress_token: Option<Value>,
        log_level: Option<LogLevel>,
        peer: Arc<dyn Peer>,
    ) -> Self {
        Self {
            session_id,
            principal,
            cancel,
            entry: String::new(),
            setting: Value::Null,
            progress_token,
            log_level,
            peer,
            last_progress: Mutex::new(None),
        }
    }

    pub fn for_entry(mut self, entry: &str, setting: Value) -> Self {
        self.entry = entry.to_string();
        self.setting = setting;
        self
    }

    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Sends `notifications/progress` when the caller asked for it; a value that does not
    /// increase is dropped rather than sent out of spec.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        {
            let mut last = self.last_progress.lock();
            if last.is_some_and(|l| progress <= l) {
                return;
            }
            *last = Some(progress);
        }
        let mut params = json!({"progressToken": token, "progress": progress});
        if let Some(t) = total {
            params["total"] = json!(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.peer.notify("notifications/progress", params).await;
    }

    /// Sends `notifications/message` unless the session's `logging/setLevel` filters it out.
    pub async fn log(&self, level: LogLevel, logger: &str, data: Value) {
        if self.log_level.is_some_and(|min| level < min) {
            return;
        }
        let params = json!({"level": level.as_str(), "logger": logger, "data": data});
        self.peer.notify("notifications/message", params).await;
    }

    /// Asks the client (`sampling/createMessage`, `elicitation/create`, `roots/list`). Fails
    /// at once when the client did not declare the matching capability.
    pub async fn request_client(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        let capability = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => "experimental",
        };
        if !self.peer.client_supports(capability) {
            return Err(ClientRequestError::NotSupported(capability));
        }
        tokio::select! {
            r = self.peer.request(method, params) => r,
            _ = self.cancel.cancelled() => Err(ClientRequestError::Cancelled),
        }
    }

    /// See `Peer::close_stream`.
    pub async fn close_stream(&self) {
        self.peer.close_stream().await;
    }

    pub async fn resource_updated(&self, uri: &str) {
        self.peer.resource_updated(uri).await;
    }
}
