//! The engine's `Peer`: how a running function's progress, logs and client requests reach the
//! stream of the request that started it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Outgoing;
use super::registry::PendingClientRequests;
use super::topics::{self, CatalogEvent, SessionEvent};
use crate::catalog::CatalogChanges;
use crate::protocol::{Message, PartitionKey, RequestId};
use crate::runtime::{ClientRequestError, List, Peer};
use crate::state::{Bus, JsonText, SessionId};

/// Ids of server-to-client requests: a per-process random prefix plus a counter, so they are
/// unique within every session even across restarts.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct RequestPeer {
    /// The request's partition: list changes and resource updates reach its clients only.
    pub partition: PartitionKey,
    /// The session server-to-client requests belong to (legacy era only).
    pub session: Option<SessionId>,
    /// What the client declared (from `initialize` or the request's `_meta`).
    pub capabilities: JsonText,
    /// Stateless era without `logLevel`: log notifications are not sent at all.
    pub drop_logs: bool,
    /// The request's outgoing stream; `None` on transports with no way back (plain HTTP).
    pub out: Option<mpsc::Sender<Outgoing>>,
    pub pending: Arc<PendingClientRequests>,
    pub bus: Arc<dyn Bus>,
    pub timeout: Duration,
    pub id_prefix: Arc<str>,
}

#[async_trait]
impl Peer for RequestPeer {
    async fn notify(&self, method: &str, params: Value) {
        if self.drop_logs && method == "notifications/message" {
            return;
        }
        if let Some(out) = &self.out {
            // A closed stream means the transport is gone; the function keeps running.
            let _ = out
                .send(Outgoing::Message(Message::notification_value(
                    method, params,
                )))
                .await;
        }
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientRequestError> {
        let (Some(out), Some(session)) = (&self.out, &self.session) else {
            return Err(ClientRequestError::NoBackChannel);
        };
        let id = RequestId::Str(format!(
            "{}-{}",
            self.id_prefix,
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        let reply = self.pending.register(session, &id);
        if out
            .send(Outgoing::Message(Message::request_value(
                &id, method, params,
            )))
            .await
            .is_err()
        {
            self.pending.forget(session, &id);
            return Err(ClientRequestError::NoBackChannel);
        }
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(ClientRequestError::Rejected {
                method: method.to_string(),
                error,
            }),
            Ok(Err(_)) => Err(ClientRequestError::SessionGone),
            Err(_) => {
                self.pending.forget(session, &id);
                Err(ClientRequestError::Timeout {
                    method: method.to_string(),
                    timeout: self.timeout,
                })
            }
        }
    }

    async fn close_stream(&self) {
        if let Some(out) = &self.out {
            let _ = out.send(Outgoing::CloseStream).await;
        }
    }

    fn client_supports(&self, capability: &str) -> bool {
        self.capabilities.has(capability)
    }

    async fn list_changed(&self, list: List) {
        let lists = CatalogChanges {
            tools: list == List::Tools,
            resources: list == List::Resources,
            prompts: list == List::Prompts,
        };
        let event = CatalogEvent::ListsChanged {
            partition: self.partition.clone(),
            lists,
        };
        if let Err(e) = topics::publish(&*self.bus, topics::CATALOG, &event).await {
            tracing::warn!(error = %e, "could not publish a list change");
        }
    }

    async fn notify_session(&self, method: &str, params: Value) {
        let Some(session) = &self.session else { return };
        let message = Message::notification_value(method, params);
        let event = SessionEvent::Notify { message };
        if let Err(e) = topics::publish(&*self.bus, &topics::session(session), &event).await {
            tracing::warn!(error = %e, "could not publish a session notification");
        }
    }

    async fn resource_updated(&self, uri: &str) {
        let event = CatalogEvent::ResourceUpdated {
            partition: self.partition.clone(),
            uri: uri.to_string(),
        };
        if let Err(e) = topics::publish(&*self.bus, topics::CATALOG, &event).await {
            tracing::warn!(error = %e, "could not publish a resource update");
        }
    }
}
