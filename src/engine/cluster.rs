//! Routing between the nodes of a cluster over the `Bus`. A node keeps what cannot be shared
//! (running calls, functions waiting for the client, the notification pump of a GET stream)
//! and other nodes reach it with messages: a cancellation is broadcast (any node may run the
//! request), a client's answer goes to the node named in the request id it answers, the end of
//! a session and the move of a session's GET stream are broadcast, and a task method goes to
//! the node named in the task id, which replies to the asking node. With the memory bus there
//! is one node and nothing to route: none of this runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::Engine;
use super::topics::{self, ControlEvent};
use crate::protocol::{self, Message, RequestId, Response, RpcError};
use crate::state::{SessionId, StateError};

/// How long a task method forwarded to another node may take; a node that does not answer in
/// time is gone, and so are its tasks.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// Forwarded task methods awaiting the owning node's reply, by correlation id.
#[derive(Default)]
pub struct Forwarded(Mutex<HashMap<String, oneshot::Sender<Result<Value, RpcError>>>>);

impl Engine {
    /// Subscribes this node to the catalog topic, the cluster's control topic and its own
    /// topic, and serves what arrives until the engine is dropped.
    pub async fn start_routing(self: &Arc<Self>) -> Result<(), StateError> {
        self.start_catalog_watch().await?;
        let bus = &self.backends.bus;
        if !bus.spans_nodes() {
            return Ok(());
        }
        let control = bus.subscribe(topics::CONTROL).await?;
        let direct = bus.subscribe(&topics::node(&self.id_prefix)).await?;
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut messages = futures::stream::select(control, direct);
            while let Some(m) = messages.next().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if let Some(event) = topics::decode::<ControlEvent>(topics::CONTROL, m) {
                    engine.on_route(event).await;
                }
            }
        });
        Ok(())
    }

    async fn on_route(&self, m: ControlEvent) {
        match m {
            ControlEvent::TaskCall {
                reply_to,
                correlation,
                subject,
                method,
                params,
            } => {
                let outcome = self.local_task_method(&subject, &method, &params);
                let outcome = match outcome {
                    Ok(result) => json!({"result": result}),
                    Err(e) => json!({"error": e.to_value()}),
                };
                self.broadcast(
                    topics::node(&reply_to),
                    ControlEvent::TaskReply {
                        correlation,
                        outcome,
                    },
                );
            }
            ControlEvent::TaskReply {
                correlation,
                outcome,
            } => self.take_task_reply(&correlation, &outcome),
            ControlEvent::Cancel { session, request } => {
                if self.inflight.cancel(&session, &request) {
                    tracing::debug!(%session, %request, "request cancelled through another node");
                }
            }
            ControlEvent::Answer { session, response } => {
                if let Ok(Message::Response(r)) =
                    protocol::jsonrpc::parse_single(response.as_bytes(), 1024)
                    && let Some(id) = r.id.clone()
                    && !self.pending.resolve(&session, &id, r.outcome)
                {
                    tracing::debug!(%session, request = %id, "routed answer found no waiting function");
                }
            }
            ControlEvent::SessionEnded { session } => self.release_local(&session).await,
            ControlEvent::GetStream { session, node } => {
                if node != *self.id_prefix {
                    // The session's GET stream moved: the old stream closes (a message goes
                    // on one stream only) and its pump stops (each notification is buffered
                    // once).
                    self.get_streams.close(&session);
                    self.stop_pump(&session).await;
                }
            }
        }
    }

    /// Cancels a request that is not running here: whichever node runs it stops it.
    pub(super) fn route_cancel(&self, session: &SessionId, id: &RequestId) {
        self.broadcast(
            topics::CONTROL.to_string(),
            ControlEvent::Cancel {
                session: session.clone(),
                request: id.clone(),
            },
        );
    }

    /// Hands a client's answer that nobody waits for here to the node that asked: server-to-
    /// client request ids start with the asking node's id. False when the id is not one of
    /// another node's.
    pub(super) fn route_answer(&self, session: &SessionId, response: &Response) -> bool {
        if !self.backends.bus.spans_nodes() {
            return false;
        }
        let Some(RequestId::Str(id)) = &response.id else {
            return false;
        };
        let Some((node, _)) = id.rsplit_once('-') else {
            return false;
        };
        if node == &*self.id_prefix || !node.starts_with(super::NODE_ID_PREFIX) {
            return false;
        }
        self.broadcast(
            topics::node(node),
            ControlEvent::Answer {
                session: session.clone(),
                response: response.to_json().to_string(),
            },
        );
        true
    }

    pub(super) fn announce_session_end(&self, session: &SessionId) {
        self.broadcast(
            topics::CONTROL.to_string(),
            ControlEvent::SessionEnded {
                session: session.clone(),
            },
        );
    }

    pub(super) fn announce_get_stream(&self, session: &SessionId) {
        self.broadcast(
            topics::CONTROL.to_string(),
            ControlEvent::GetStream {
                session: session.clone(),
                node: self.id_prefix.to_string(),
            },
        );
    }

    /// Runs a task method on the node that owns the task (named in its id) and waits for the
    /// reply. An owner that does not answer in time is treated as gone: its tasks are unknown.
    pub(super) async fn forward_task_method(
        &self,
        node: &str,
        subject: &str,
        method: &str,
        params: &Value,
    ) -> Result<Value, RpcError> {
        let correlation = format!("{}-{:016x}", self.id_prefix, rand::random::<u64>());
        let (tx, rx) = oneshot::channel();
        self.forwarded.0.lock().insert(correlation.clone(), tx);
        let message = ControlEvent::TaskCall {
            reply_to: self.id_prefix.to_string(),
            correlation: correlation.clone(),
            subject: subject.to_string(),
            method: method.to_string(),
            params: params.clone(),
        };
        if let Err(e) = topics::publish(&*self.backends.bus, &topics::node(node), &message).await {
            self.forwarded.0.lock().remove(&correlation);
            return Err(super::state_error(e));
        }
        let reply = tokio::time::timeout(FORWARD_TIMEOUT, rx).await;
        self.forwarded.0.lock().remove(&correlation);
        match reply {
            Ok(Ok(outcome)) => outcome,
            _ => {
                let id = params.get("taskId").and_then(Value::as_str).unwrap_or("");
                Err(RpcError::invalid_params(format!("Unknown task: {id}")))
            }
        }
    }

    fn take_task_reply(&self, correlation: &str, outcome: &Value) {
        let Some(waiter) = self.forwarded.0.lock().remove(correlation) else {
            return;
        };
        let reply = match outcome.get("error") {
            Some(e) => Err(RpcError {
                code: e.get("code").and_then(Value::as_i64).unwrap_or(-32603),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("Internal error")
                    .to_string(),
                data: e.get("data").cloned(),
            }),
            None => Ok(outcome.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = waiter.send(reply);
    }

    /// Publishes without making the caller wait; a lost message is logged (at most once).
    /// Nothing to do when there are no other nodes.
    fn broadcast(&self, topic: String, message: ControlEvent) {
        if !self.backends.bus.spans_nodes() {
            return;
        }
        let bus = self.backends.bus.clone();
        tokio::spawn(async move {
            if let Err(e) = topics::publish(&*bus, &topic, &message).await {
                tracing::warn!(%topic, error = %e, "could not reach the other nodes");
            }
        });
    }
}
