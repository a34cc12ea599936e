//! MCP semantics, free of any transport: `initialize` negotiation, method dispatch, tools,
//! resources, prompts, completion, logging, cancellation and server-to-client requests.
//! Transports hand it parsed messages plus who is calling and which session; it hands back
//! responses and pushes related messages into the request's outgoing channel.

mod catalog_watch;
mod cluster;
mod completion;
mod invoke;
mod lifecycle;
pub mod modern;
mod notifications;
mod ordered;
mod pagination;
mod peer;
mod prompts;
pub mod recorder;
mod registry;
pub mod request_state;
mod resources;
pub mod tasks;
pub mod tools;
pub mod topics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use lifecycle::{Negotiated, OpenSessionError};
pub use notifications::list_notifications;

use crate::auth::Principal;
use crate::catalog::{Catalog, CatalogSource, Catalogs};
use crate::clock::Clock;
use crate::protocol::{Notification, PartitionKey, Request, RequestId, Response, RpcError, codes};
use crate::runtime::Runtimes;
use crate::state::{Bus, EventLog, LogLevel, SessionId, SessionRecord, SessionStore, StateError};
pub use registry::GetStreamLease;
use registry::{GetStreams, Inflight, PendingClientRequests};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the requestState key cannot be used as an HMAC key")]
    StateKey,
}

/// Server identity and limits the engine needs.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub server_name: String,
    pub server_version: String,
    /// Items per page of `*/list` results.
    pub page_size: usize,
    /// How long a function waits for the client to answer a server-to-client request.
    pub client_request_timeout: Duration,
    /// HMAC key for stateless-era `requestState` (shared by every node of a cluster).
    pub request_state_key: Vec<u8>,
    /// How long a sealed `requestState` stays valid.
    pub request_state_ttl: Duration,
    /// How long a partition's catalog is served from this node's cache before it is loaded
    /// again (`CATALOG_CACHE_TTL_SECS`): the last line of defence against a missed purge.
    pub catalog_ttl: Duration,
    /// What one caller may keep in sessions.
    pub limits: SessionLimits,
}

/// What one caller may keep in sessions (the `StateLimits` settings the engine enforces; the
/// replay buffer caps are the event log's).
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max_sessions_per_user: usize,
    pub max_anonymous_sessions: usize,
    /// Per `clientInfo` and per `capabilities` of `initialize`, bytes of compact JSON.
    pub max_client_metadata_bytes: usize,
    pub max_subscriptions_per_session: usize,
    pub max_subscription_uri_bytes: usize,
}

/// The backends the engine reads and writes.
#[derive(Clone)]
pub struct Backends {
    pub sessions: Arc<dyn SessionStore>,
    pub events: Arc<dyn EventLog>,
    pub bus: Arc<dyn Bus>,
    /// OAuth codes, clients, refresh families and revocations (used by `auth`, kept here so
    /// it is chosen with the other state backends).
    pub auth: Arc<dyn crate::state::AuthStore>,
    pub clock: Arc<dyn Clock>,
}

/// What a running request sends besides its final response.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A notification or server-to-client request, in order.
    Message(Value),
    /// Ask the transport to close the response stream now, without ending it: the client
    /// resumes with `Last-Event-ID` (SEP-1699 polling). Transports without that ignore it.
    CloseStream,
}

/// Everything a request carries besides its message.
pub struct Call {
    pub principal: Principal,
    /// The partition the request was made in: the catalog it sees (the session's, when it has
    /// one: the transport refuses a session used under another partition).
    pub partition: PartitionKey,
    /// The session the request belongs to (loaded and owner-checked by the transport).
    pub session: Option<SessionRecord>,
    /// Where related notifications and server-to-client requests go; `None` when the
    /// transport cannot carry them.
    pub out: Option<mpsc::Sender<Outgoing>>,
    /// Stateless era: what the request's `_meta` says (there is no session).
    pub modern: Option<modern::ModernMeta>,
    /// Cancels the request from outside (stateless era: the client closed the response).
    pub cancel: Option<CancellationToken>,
}

impl Call {
    /// A legacy-era call in `session` (or without one, on plain HTTP).
    pub fn legacy(
        principal: Principal,
        partition: PartitionKey,
        session: Option<SessionRecord>,
        out: Option<mpsc::Sender<Outgoing>>,
    ) -> Self {
        Self {
            principal,
            partition,
            session,
            out,
            modern: None,
            cancel: None,
        }
    }
}

/// Counts of everything the engine holds per session, for health output and leak tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    /// `None` where the session store does not count (Redis).
    pub sessions: Option<usize>,
    pub event_streams: usize,
    pub buffered_events: usize,
    pub buffered_bytes: usize,
    pub running_requests: usize,
    pub pending_client_requests: usize,
    pub notification_pumps: usize,
    pub bus_topics: usize,
}

pub struct Engine {
    /// The catalog of every partition this node serves, loaded on first use.
    catalogs: Catalogs,
    pub backends: Backends,
    settings: EngineSettings,
    inflight: Inflight,
    pending: Arc<PendingClientRequests>,
    get_streams: Arc<GetStreams>,
    /// Task methods sent to other nodes, awaiting their reply (by correlation id).
    forwarded: cluster::Forwarded,
    /// Calls that became tasks (tasks extension).
    tasks: tasks::TaskStore,
    /// Seals and opens stateless-era `requestState`.
    sealer: request_state::StateSealer,
    /// Per-session tasks that turn bus events into the session's notifications.
    pumps: Mutex<HashMap<SessionId, JoinHandle<()>>>,
    /// This node's id; server-to-client request ids start with it, so an answer that lands
    /// on another node can be routed back here.
    id_prefix: Arc<str>,
    /// This node's reader of the catalog topic and the local channel its clients hear from.
    catalog_events: catalog_watch::CatalogEvents,
}

/// How long a cancelled request's function may take to end by itself before it is dropped
/// (longer than the Python runtime's own grace, after which it kills the worker).
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// How node ids (and so server-to-client request ids) start.
const NODE_ID_PREFIX: &str = "srv";

impl Engine {
    /// `source` gives each partition's catalog; `runtimes` bind its functions (and are
    /// stopped at shutdown).
    pub fn new(
        source: Arc<dyn CatalogSource>,
        runtimes: Runtimes,
        backends: Backends,
        settings: EngineSettings,
    ) -> Result<Arc<Self>, EngineError> {
        let node: u32 = rand::random();
        let sealer = request_state::StateSealer::new(
            &settings.request_state_key,
            settings.request_state_ttl.as_millis() as u64,
            backends.clock.clone(),
        )
        .map_err(|_| EngineError::StateKey)?;
        Ok(Arc::new(Self {
            catalog_events: catalog_watch::CatalogEvents::new(runtimes),
            catalogs: Catalogs::new(source, settings.catalog_ttl, backends.clock.clone()),
            backends,
            settings,
            inflight: Inflight::default(),
            pending: Arc::new(PendingClientRequests::default()),
            get_streams: Arc::new(GetStreams::default()),
            forwarded: Default::default(),
            sealer,
            tasks: tasks::TaskStore::default(),
            pumps: Mutex::new(HashMap::new()),
            id_prefix: format!("{NODE_ID_PREFIX}{node:08x}").into(),
        }))
    }

    /// Takes the session's GET stream slot on this node (`None`: already open here, 409).
    /// The receiver fires when another node takes the stream over.
    pub fn open_get_stream(
        &self,
        session: &SessionId,
    ) -> Option<(GetStreamLease, tokio::sync::oneshot::Receiver<()>)> {
        self.get_streams.open(session)
    }

    /// This node's id (server-to-client request ids and task ids start with it).
    pub fn node_id(&self) -> &str {
        &self.id_prefix
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The catalog `partition` sees now (loaded on first use). A source that fails with
    /// nothing cached is an internal error for the request; the cause goes to the log.
    pub async fn catalog(&self, partition: &PartitionKey) -> Result<Arc<Catalog>, RpcError> {
        self.catalogs.get(partition).await.map_err(|e| {
            tracing::error!(%partition, error = %e, "cannot load the catalog");
            RpcError::internal("Internal error: the catalog of this endpoint is unavailable")
        })
    }

    /// This node's catalog cache (the admin cache routes read and purge it).
    pub fn catalogs(&self) -> &Catalogs {
        &self.catalogs
    }

    /// Answers one request. `None` when the request was cancelled: the spec says a cancelled
    /// request gets no response.
    pub async fn handle_request(&self, call: Call, req: Request) -> Option<Response> {
        let guard = match &call.session {
            Some(s) => match self.inflight.start(&s.id, &req.id) {
                Some(g) => Some(g),
                None => {
                    let e = RpcError::invalid_request(format!(
                        "Invalid Request: request id {} is already in use",
                        req.id
                    ));
                    return Some(Response::err(Some(req.id), e));
                }
            },
            None => None,
        };
        let cancel = match (&guard, &call.cancel) {
            (Some(g), _) => g.token.clone(),
            (None, Some(external)) => external.clone(),
            (None, None) => CancellationToken::new(),
        };
        let id = req.id.clone();
        let dispatch = self.dispatch(&call, &req, &cancel);
        tokio::pin!(dispatch);
        let outcome = tokio::select! {
            // A function that ended because of the cancellation gets no answer either.
            r = &mut dispatch => match cancel.is_cancelled() {
                true => return None,
                false => r,
            },
            _ = cancel.cancelled() => {
                // No answer goes out; the function sees the cancellation through its `Ctx`
                // (a Python worker gets it as KeyboardInterrupt) and gets a moment to end by
                // itself (clean up, release what it holds) before it is dropped.
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut dispatch).await;
                return None;
            }
        };
        drop(guard);
        Some(match outcome {
            Ok(result) => Response::ok(id, result),
            Err(e) => Response::err(Some(id), e),
        })
    }

    async fn dispatch(
        &self,
        call: &Call,
        req: &Request,
        cancel: &CancellationToken,
    ) -> Result<Value, RpcError> {
        if call.modern.is_some() {
            if !modern::serves(&req.method) || req.method == "subscriptions/listen" {
                // subscriptions/listen is a stream; its transport serves it, not this dispatcher.
                return Err(RpcError::method_not_found(&req.method));
            }
            let mut result = match req.method.as_str() {
                "server/discover" => self.discover(&*self.catalog(&call.partition).await?),
                "tasks/get" | "tasks/update" | "tasks/cancel" => {
                    self.task_method(call, req).await?
                }
                _ => self.dispatch_method(call, req, cancel).await?,
            };
            self.decorate(&req.method, &mut result);
            return Ok(result);
        }
        self.dispatch_method(call, req, cancel).await
    }

    async fn dispatch_method(
        &self,
        call: &Call,
        req: &Request,
        cancel: &CancellationToken,
    ) -> Result<Value, RpcError> {
        let empty = Value::Object(serde_json::Map::new());
        let params = req.params.as_ref().unwrap_or(&empty);
        let catalog = self.catalog(&call.partition).await?;
        match req.method.as_str() {
            "ping" => Ok(json!({})),
            "initialize" => match &call.session {
                Some(_) => Err(RpcError::invalid_request(
                    "Invalid Request: session is already initialized",
                )),
                None => Ok(self.negotiate_in(&catalog, params)?.result),
            },
            "tools/list" => tools::list(
                &catalog,
                &call.principal,
                params,
                self.settings.page_size,
                self.version(call),
            ),
            "tools/call" => tools::call(self, &catalog, call, req, params, cancel).await,
            "resources/list" => resources::list(&catalog, params, self.settings.page_size),
            "resources/templates/list" => {
                resources::list_templates(&catalog, params, self.settings.page_size)
            }
            "resources/read" => resources::read(self, &catalog, call, req, params, cancel).await,
            "resources/subscribe" => self.subscribe(call, &catalog, params, true).await,
            "resources/unsubscribe" => self.subscribe(call, &catalog, params, false).await,
            "prompts/list" => prompts::list(&catalog, params, self.settings.page_size),
            "prompts/get" => prompts::get(self, &catalog, call, req, params, cancel).await,
            "completion/complete" => completion::complete(&catalog, params),
            "logging/setLevel" => self.set_level(call, params).await,
            other => Err(RpcError::method_not_found(other)),
        }
    }

    fn version(&self, call: &Call) -> Option<crate::protocol::ProtocolVersion> {
        call.session.as_ref().and_then(|s| s.protocol_version)
    }

    /// `tasks/get`, `tasks/update`, `tasks/cancel`: only for clients that declared the tasks
    /// extension (-32021 otherwise, before any lookup), only on the caller's own tasks, on
    /// whichever node runs the task.
    async fn task_method(&self, call: &Call, req: &Request) -> Result<Value, RpcError> {
        if !call.modern.as_ref().is_some_and(tasks::declared) {
            return Err(tasks::missing_extension());
        }
        let params = req.params.clone().unwrap_or_else(|| json!({}));
        let id = str_param(&params, "taskId")?;
        let subject = &call.principal.subject;
        match tasks::node_of(id) {
            Some(node)
                if self.backends.bus.spans_nodes()
                    && node != &*self.id_prefix
                    && !self.tasks.contains(id) =>
            {
                self.forward_task_method(node, subject, &req.method, &params)
                    .await
            }
            _ => self.local_task_method(subject, &req.method, &params),
        }
    }

    /// A task method on a task of this node.
    fn local_task_method(
        &self,
        subject: &str,
        method: &str,
        params: &Value,
    ) -> Result<Value, RpcError> {
        let id = str_param(params, "taskId")?;
        match method {
            "tasks/get" => self.tasks.get(id, subject),
            "tasks/cancel" => self.tasks.cancel(id, subject),
            _ => {
                let empty = serde_json::Map::new();
                let responses = params
                    .get("inputResponses")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                self.tasks.update(id, subject, responses)
            }
        }
    }

    async fn set_level(&self, call: &Call, params: &Value) -> Result<Value, RpcError> {
        let level = params
            .get("level")
            .and_then(Value::as_str)
            .and_then(LogLevel::parse)
            .ok_or_else(|| RpcError::invalid_params("Invalid params: 'level' must be one of debug, info, notice, warning, error, critical, alert, emergency"))?;
        let session = call.session.as_ref().ok_or_else(requires_session)?;
        self.modify_session(&session.id, &|s| s.log_level = Some(level))
            .await?;
        Ok(json!({}))
    }

    async fn subscribe(
        &self,
        call: &Call,
        catalog: &Catalog,
        params: &Value,
        on: bool,
    ) -> Result<Value, RpcError> {
        let uri = str_param(params, "uri")?;
        let limits = &self.settings.limits;
        if on && uri.len() > limits.max_subscription_uri_bytes {
            return Err(RpcError::invalid_params(format!(
                "Invalid params: 'uri' is {} bytes, more than the limit of {} \
                 (MAX_SUBSCRIPTION_URI_BYTES)",
                uri.len(),
                limits.max_subscription_uri_bytes
            )));
        }
        if catalog.resource(uri).is_none() && catalog.match_template(uri).is_none() {
            return Err(resources::not_found(uri));
        }
        let session = call.session.as_ref().ok_or_else(requires_session)?;
        let max = limits.max_subscriptions_per_session;
        // Decided inside the change, so the cap holds against concurrent subscribes on any
        // node (the change re-runs on the fresh record when another writer came first).
        let full = std::sync::atomic::AtomicBool::new(false);
        self.modify_session(&session.id, &|s| {
            let at_cap = on && !s.subscriptions.contains(uri) && s.subscriptions.len() >= max;
            full.store(at_cap, std::sync::atomic::Ordering::Relaxed);
            if at_cap {
                return;
            }
            if on {
                s.subscriptions.insert(uri.to_string());
            } else {
                s.subscriptions.remove(uri);
            }
        })
        .await?;
        if full.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RpcError::new(
                codes::SERVER_ERROR,
                format!(
                    "Too many subscriptions: this session has {max}, the limit \
                     (MAX_SUBSCRIPTIONS_PER_SESSION); unsubscribe from one first"
                ),
            ));
        }
        Ok(json!({}))
    }

    /// Changes the stored session without losing a concurrent change made elsewhere.
    async fn modify_session(
        &self,
        id: &SessionId,
        change: &(dyn for<'r> Fn(&'r mut SessionRecord) + Send + Sync),
    ) -> Result<(), RpcError> {
        match self.backends.sessions.modify(id, change).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(RpcError::new(codes::SESSION_NOT_FOUND, "Session not found")),
            Err(e) => Err(state_error(e)),
        }
    }

    /// Handles a notification from the client.
    pub fn handle_notification(&self, session: Option<&SessionRecord>, n: &Notification) {
        // initialized, roots/list_changed, progress: nothing to do on this side.
        if n.method != "notifications/cancelled" {
            return;
        }
        let id = n.params.as_ref().and_then(|p| p.get("requestId")).cloned();
        if let (Some(s), Some(Ok(id))) = (session, id.map(serde_json::from_value::<RequestId>)) {
            if self.inflight.cancel(&s.id, &id) {
                tracing::debug!(session = %s.id, request = %id, "request cancelled by the client");
            } else {
                self.route_cancel(&s.id, &id); // it may run on another node
            }
        }
    }

    /// Delivers a client's response to a server-to-client request of the same session.
    pub fn handle_response(&self, session: &SessionId, response: Response) {
        let Some(id) = response.id.clone() else {
            return;
        };
        if self.pending.is_waiting(session, &id) {
            self.pending.resolve(session, &id, response.outcome);
        } else if !self.route_answer(session, &response) {
            tracing::debug!(session = %session, request = %id, "response to no pending request ignored");
        }
    }

    /// Ends a session everywhere on this node: stored record, replay buffers, running calls,
    /// waits for the client, notification pump.
    pub async fn end_session(&self, id: &SessionId) -> Result<bool, StateError> {
        let existed = self.backends.sessions.delete(id).await?;
        self.release_session(id).await;
        self.announce_session_end(id);
        Ok(existed)
    }

    /// Frees what hangs off a session that is already gone from the store.
    async fn release_session(&self, id: &SessionId) {
        self.release_local(id).await;
        if let Err(e) = self.backends.events.remove_session(id).await {
            tracing::warn!(session = %id, error = %e, "could not drop replay buffers");
        }
    }

    /// Frees what this node holds for a session: running calls, waits for the client, the
    /// notification pump.
    async fn release_local(&self, id: &SessionId) {
        self.inflight.cancel_session(id);
        self.pending.drop_session(id);
        self.stop_pump(id).await;
        self.get_streams.close(id);
    }

    async fn stop_pump(&self, id: &SessionId) {
        let pump = self.pumps.lock().remove(id);
        if let Some(pump) = pump {
            pump.abort();
            let _ = pump.await; // resolves once the task is dropped with its bus subscription
        }
    }

    /// Removes expired sessions and everything they held; returns how many (on Redis, how many
    /// this node held something for). Stores that
    /// expire sessions themselves (Redis) report none, so this also checks every session this
    /// node holds something for (a notification pump, a GET stream): one whose record is gone
    /// loses its pump, its GET stream and its replay buffers, whose live readers end on every
    /// node. Without that, a GET stream outlives its session by as long as its client stays
    /// connected (keep-alives never renew a session).
    pub async fn reap_expired(&self) -> Result<usize, StateError> {
        self.tasks.purge(self.backends.clock.now_ms());
        let expired = self.backends.sessions.purge_expired().await?;
        for id in &expired {
            self.release_session(id).await;
        }
        let mut held: Vec<SessionId> = self.pumps.lock().keys().cloned().collect();
        held.extend(self.get_streams.sessions());
        held.sort();
        held.dedup();
        let mut released = 0;
        for id in held {
            if !expired.contains(&id) && self.backends.sessions.peek(&id).await?.is_none() {
                self.release_session(&id).await;
                released += 1;
            }
        }
        if released > 0 {
            tracing::debug!(
                released,
                "released what this node held for expired sessions"
            );
        }
        Ok(expired.len() + released)
    }

    pub async fn footprint(&self) -> Result<Footprint, StateError> {
        let (event_streams, buffered_events, buffered_bytes) = self.backends.events.footprint();
        Ok(Footprint {
            sessions: self.backends.sessions.count().await?,
            event_streams,
            buffered_events,
            buffered_bytes,
            running_requests: self.inflight.len(),
            pending_client_requests: self.pending.len(),
            notification_pumps: self.pumps.lock().len(),
            bus_topics: self.backends.bus.topic_count(),
        })
    }
}

/// A required string parameter, or -32602 naming it.
fn str_param<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    params.get(key).and_then(Value::as_str).ok_or_else(|| {
        RpcError::invalid_params(format!("Invalid params: '{key}' must be a string"))
    })
}

fn requires_session() -> RpcError {
    RpcError::invalid_request(
        "Invalid Request: this method needs a session (use /mcp, /sse or stdio)",
    )
}

/// A backend failure as a JSON-RPC error: no internals, the source goes to the log.
pub fn state_error(e: StateError) -> RpcError {
    tracing::error!(error = %e, "state backend failed");
    RpcError::internal("Internal error: session state is unavailable")
}
