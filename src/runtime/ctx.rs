//! What a running function may do besides returning: report progress, log, ask the client, and
//! notice cancellation. The engine provides the `Peer` that carries these out.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ClientRequestError, InputRound, TaskLink};
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
    /// Tells every listener of the request's partition that one of its lists changed.
    async fn list_changed(&self, list: List);
    /// Sends a notification on the session's own stream (GET or legacy SSE), not tied to the
    /// running request, whichever node holds that stream. Dropped without a session.
    async fn notify_session(&self, method: &str, params: Value);
}

/// The lists a client can be told changed (`notifications/{list}/list_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Tools,
    Resources,
    Prompts,
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
    /// The partition key of the call (`endpoint_id` or `endpoint_id#part_id`); Python
    /// classes that declare both get `endpoint_id` / `part_id` from it. `default` until the
    /// engine passes the real one.
    pub partition: std::borrow::Cow<'static, str>,
    progress_token: Option<Value>,
    log_level: Option<LogLevel>,
    peer: Arc<dyn Peer>,
    /// Progress must increase (spec basic/utilities/progress); remember the last value sent.
    last_progress: Mutex<Option<f64>>,
    /// Stateless era only: the client input this request carries and what the function asks.
    input: Option<InputRound>,
    /// Set when the call may become a task (tasks extension declared, tool allows tasks).
    task: Option<Arc<dyn TaskLink>>,
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
            partition: std::borrow::Cow::Borrowed("default"),
            progress_token,
            log_level,
            peer,
            last_progress: Mutex::new(None),
            input: None,
            task: None,
        }
    }

    pub fn with_task(mut self, task: Arc<dyn TaskLink>) -> Self {
        self.task = Some(task);
        self
    }

    /// Turns the call into a task when the client and the tool allow it (the request is then
    /// answered with the task id and this function keeps running); a no-op otherwise.
    pub fn begin_task(&self) {
        if let Some(t) = &self.task {
            t.begin();
        }
    }

    fn in_task(&self) -> Option<&Arc<dyn TaskLink>> {
        self.task.as_ref().filter(|t| t.started())
    }

    /// Makes client requests go through input-required results (stateless era).
    pub fn with_input(mut self, input: InputRound) -> Self {
        self.input = Some(input);
        self
    }

    pub fn input(&self) -> Option<&InputRound> {
        self.input.as_ref()
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

    /// Like `log`, but on the session's own stream rather than the request's: the message
    /// reaches the client even after this request has been answered.
    pub async fn log_to_session(&self, level: LogLevel, logger: &str, data: Value) {
        if self.log_level.is_some_and(|min| level < min) {
            return;
        }
        let params = json!({"level": level.as_str(), "logger": logger, "data": data});
        self.peer
            .notify_session("notifications/message", params)
            .await;
    }

    /// Asks the client (`sampling/createMessage`, `elicitation/create`, `roots/list`) under an
    /// automatic key; see `ask`.
    pub async fn request_client(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        let key = self
            .input
            .as_ref()
            .map(InputRound::next_auto_key)
            .unwrap_or_default();
        self.ask(&key, method, params).await
    }

    /// Asks the client for input. Legacy era: a server-to-client request on the request's
    /// stream, awaited. Stateless era: the answer under `key` in `inputResponses`, or
    /// `InputRequired` (the call then ends with an `input_required` result). Fails at once
    /// when the client did not declare the matching capability.
    pub async fn ask(
        &self,
        key: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        self.require(capability_of(method))?;
        if let Some(task) = self.in_task() {
            let mut answers = task
                .ask_all(vec![(key.to_string(), method.to_string(), params)])
                .await?;
            return answers.pop().ok_or(ClientRequestError::SessionGone);
        }
        if let Some(round) = &self.input {
            return round
                .answer_or_ask(key, method, &params)
                .ok_or(ClientRequestError::InputRequired);
        }
        tokio::select! {
            r = self.peer.request(method, params) => r,
            _ = self.cancel.cancelled() => Err(ClientRequestError::Cancelled),
        }
    }

    /// Asks for several inputs at once: in the stateless era every missing one goes into the
    /// same `input_required` result; in the legacy era they are asked one after another.
    pub async fn ask_all(
        &self,
        asks: Vec<(&str, &str, Value)>,
    ) -> Result<Vec<Value>, ClientRequestError> {
        for (_, method, _) in &asks {
            self.require(capability_of(method))?;
        }
        if let Some(task) = self.in_task() {
            let owned = asks
                .into_iter()
                .map(|(k, m, p)| (k.to_string(), m.to_string(), p))
                .collect();
            return task.ask_all(owned).await;
        }
        if let Some(round) = &self.input {
            let answers: Vec<Option<Value>> = asks
                .iter()
                .map(|(key, method, params)| round.answer_or_ask(key, method, params))
                .collect();
            return answers
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or(ClientRequestError::InputRequired);
        }
        let mut answers = Vec::with_capacity(asks.len());
        for (key, method, params) in asks {
            answers.push(self.ask(key, method, params).await?);
        }
        Ok(answers)
    }

    /// Fails with `NotSupported` unless the client declared `capability`.
    pub fn require(&self, capability: &'static str) -> Result<(), ClientRequestError> {
        if self.peer.client_supports(capability) {
            Ok(())
        } else {
            Err(ClientRequestError::NotSupported(capability))
        }
    }

    pub fn client_supports(&self, capability: &str) -> bool {
        self.peer.client_supports(capability)
    }

    /// The `requestState` this round carries (stateless era), already verified.
    pub fn request_state(&self) -> Option<&Value> {
        self.input.as_ref().and_then(InputRound::state)
    }

    /// State to get back, sealed, with the client's next round (stateless era; ignored in the
    /// legacy era, where the function simply keeps running).
    pub fn set_request_state(&self, state: Value) {
        if let Some(round) = &self.input {
            round.set_next_state(state);
        }
    }

    /// See `Peer::close_stream`.
    pub async fn close_stream(&self) {
        self.peer.close_stream().await;
    }

    /// See `Peer::list_changed`.
    pub async fn list_changed(&self, list: List) {
        self.peer.list_changed(list).await;
    }

    pub async fn resource_updated(&self, uri: &str) {
        self.peer.resource_updated(uri).await;
    }
}

/// The client capability a server-to-client method needs.
fn capability_of(method: &str) -> &'static str {
    match method {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => "experimental",
    }
}
