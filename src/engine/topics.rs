//! Bus topics the engine publishes on and what travels on each, as typed events: the cluster's
//! wire protocol in one place, checked by serde on both ends (a typo is a compile error, not a
//! silently dropped message). The `Bus` itself carries JSON values; `publish` and `decode`
//! here do the serde.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::CatalogChanges;
use crate::protocol::{PartitionKey, RequestId};
use crate::state::{Bus, SessionId, StateError};

/// Catalog events: `CatalogEvent`.
pub const CATALOG: &str = "catalog";

/// Messages for every node: the `ControlEvent`s without a node of their own.
pub const CONTROL: &str = "control";

/// What travels on `CATALOG`, and on each node's local channel to its pumps and listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CatalogEvent {
    /// The definitions of `partition` (`None`: every partition) changed. Every node purges its
    /// cache of them, reloads, and only then tells that partition's clients which lists
    /// changed. `origin` is the publishing node, which applied the change before publishing.
    DefinitionsChanged {
        partition: Option<PartitionKey>,
        lists: CatalogChanges,
        origin: String,
    },
    /// Tell `partition`'s clients these lists changed; nothing to reload (a function said
    /// so, or a node reloaded: the local form of `DefinitionsChanged`).
    ListsChanged {
        partition: PartitionKey,
        lists: CatalogChanges,
    },
    /// A resource of `partition` changed; its subscribers are told.
    ResourceUpdated {
        partition: PartitionKey,
        uri: String,
    },
    /// The bus may have lost messages (its connection came back): purge every cache.
    Resync,
}

/// What travels on `CONTROL` and on `node(..)` (see `cluster.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlEvent {
    /// Cancel a request, wherever it runs.
    Cancel {
        session: SessionId,
        request: RequestId,
    },
    /// A client's answer to a server-to-client request of the node it is sent to (the
    /// JSON-RPC text as the client sent it).
    Answer {
        session: SessionId,
        response: String,
    },
    /// The session ended: free what any node holds for it.
    SessionEnded { session: SessionId },
    /// The session's GET stream is now served by `node`.
    GetStream { session: SessionId, node: String },
    /// A task method for the node that owns the task; it replies on `node(reply_to)`.
    TaskCall {
        reply_to: String,
        correlation: String,
        subject: String,
        method: String,
        params: Value,
    },
    /// The reply to a `TaskCall`: `{"result": ..}` or `{"error": ..}`.
    TaskReply { correlation: String, outcome: Value },
}

/// What travels on `session(..)`: a message for that session's own stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    Notify { message: Value },
}

/// Notifications for one session's own stream: `SessionEvent`.
pub fn session(id: &SessionId) -> String {
    format!("session:{id}")
}

/// Messages for one node: answers to the server-to-client requests it sent, task methods.
pub fn node(id: &str) -> String {
    format!("node:{id}")
}

/// Publishes a typed event on `topic`.
pub async fn publish<E: Serialize>(
    bus: &dyn Bus,
    topic: &str,
    event: &E,
) -> Result<(), StateError> {
    let value = serde_json::to_value(event).map_err(|e| StateError {
        kind: crate::state::StateErrorKind::Internal,
        cause: format!("cannot encode a bus event: {e}"),
    })?;
    bus.publish(topic, value).await
}

/// A bus message as an event of `E`; `None` (logged) for anything else, such as a message
/// from a newer node.
pub fn decode<E: serde::de::DeserializeOwned>(topic: &str, message: Value) -> Option<E> {
    match serde_json::from_value(message) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::debug!(%topic, error = %e, "bus message of an unknown shape ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_have_their_wire_shape() {
        let e = CatalogEvent::DefinitionsChanged {
            partition: Some(PartitionKey::parse("a#b").unwrap()),
            lists: CatalogChanges {
                tools: true,
                ..Default::default()
            },
            origin: "srv1".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"type": "definitions_changed", "partition": "a#b",
                "lists": {"tools": true, "resources": false, "prompts": false}, "origin": "srv1"})
        );
        assert_eq!(decode::<CatalogEvent>(CATALOG, v), Some(e));
        assert_eq!(
            decode::<CatalogEvent>(CATALOG, json!({"type": "resync"})),
            Some(CatalogEvent::Resync)
        );
        assert_eq!(
            decode::<CatalogEvent>(CATALOG, json!({"type": "tools_chnaged"})),
            None
        );
        let bad_partition = json!({"type": "list_changed", "partition": "a b", "lists": {}});
        assert_eq!(decode::<CatalogEvent>(CATALOG, bad_partition), None);
        let c = ControlEvent::Cancel {
            session: SessionId::random(),
            request: RequestId::Num(7),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "cancel");
        assert_eq!(v["request"], 7);
        assert_eq!(decode::<ControlEvent>(CONTROL, v), Some(c));
    }
}
