//! Shared state of a running cluster: sessions (`SessionStore`), SSE replay buffers (`EventLog`)
//! and pub/sub fan-out (`Bus`). Each is a trait with an in-memory implementation here; the Redis
//! implementations (`redis/`) plug in behind the same traits, so nothing above this layer
//! changes.

pub mod auth_store;
pub mod memory;
pub mod redis;
mod types;

#[cfg(test)]
mod auth_testsuite;
#[cfg(test)]
mod testsuite;

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::Value;

pub use auth_store::{AuthRecord, AuthStore, Rotation};
pub use types::{
    Event, JsonText, LogLevel, ReplayFrom, SessionId, SessionRecord, StreamKey, TransportKind,
};

/// What went wrong in a backend, as a kind (for decisions: `Unavailable` -> 503) plus a source
/// (for the log, never for the client).
#[derive(Debug, thiserror::Error)]
#[error("state backend {kind:?}: {cause}")]
pub struct StateError {
    pub kind: StateErrorKind,
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateErrorKind {
    /// The backend cannot be reached; retry later.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// A bug or corrupt data.
    Internal,
}

pub type StateResult<T> = Result<T, StateError>;

/// The `type` of the message a `Bus` subscription yields when messages may have been lost
/// (its connection came back): `{"type": "resync"}`. Readers that keep state derived from
/// the topic (the catalog caches) re-read it; others ignore it.
pub const BUS_RESYNC: &str = "resync";

/// Where MCP sessions live. Every method is keyed by `SessionId`; a missing or expired session
/// is `Ok(None)` / `Ok(false)`, never an error.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session unless its subject already holds `limit` live sessions
    /// (`Ok(false)`: nothing is stored). Sessions that ended or expired do not count, on any
    /// node. Ids come from a CSPRNG, so a collision is treated as a bug.
    async fn create(&self, record: SessionRecord, limit: usize) -> StateResult<bool>;
    /// Loads a live session and slides its inactivity TTL (one round trip).
    async fn get(&self, id: &SessionId) -> StateResult<Option<SessionRecord>>;
    /// Loads a live session without touching its TTL (background readers use this).
    async fn peek(&self, id: &SessionId) -> StateResult<Option<SessionRecord>>;
    /// Applies `change` to a live session (`initialize` results, log level, subscriptions)
    /// atomically with respect to every other writer on any node: two concurrent changes
    /// (say, two `resources/subscribe` through different nodes) both land. Returns the saved
    /// record, or `None` when the session is gone.
    async fn modify(
        &self,
        id: &SessionId,
        change: &(dyn for<'r> Fn(&'r mut SessionRecord) + Send + Sync),
    ) -> StateResult<Option<SessionRecord>>;
    /// Ends a session (it stops counting against its subject's cap at once). Idempotent:
    /// false when it did not exist.
    async fn delete(&self, id: &SessionId) -> StateResult<bool>;
    /// Removes sessions idle past their TTL and returns their ids so callers can release what
    /// hangs off them (streams, running calls). Backends with native TTLs may return nothing.
    async fn purge_expired(&self) -> StateResult<Vec<SessionId>>;
    /// Fails when the store cannot be reached (health checks: a node that cannot reach its
    /// sessions should get no traffic).
    async fn ping(&self) -> StateResult<()>;
    /// Number of live sessions (for health and leak tests); `None` where the backend does not
    /// track it (Redis: counting would mean scanning the keyspace).
    async fn count(&self) -> StateResult<Option<usize>>;
}

/// Replay buffers: one append-only, capped stream of SSE events per (session, stream). Event ids
/// name their stream, so `Last-Event-ID` can only ever resume the stream it came from.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Creates a stream if it does not exist yet (idempotent). Only opened streams take events,
    /// so a late writer can never resurrect the buffers of a session that ended.
    async fn open(&self, key: &StreamKey) -> StateResult<()>;
    /// Appends one event and returns its sequence number (> 0, increasing per stream), or
    /// `Ok(None)` when the stream does not exist (any more). `last` marks the end of the
    /// stream: subscribers finish after delivering it.
    async fn append(&self, key: &StreamKey, data: Arc<str>, last: bool)
    -> StateResult<Option<u64>>;
    /// Delivers the events `from` names and then follows the stream live until its last event
    /// or its removal. `Ok(None)` when the stream does not exist.
    async fn subscribe(
        &self,
        key: &StreamKey,
        from: ReplayFrom,
    ) -> StateResult<Option<BoxStream<'static, Event>>>;
    /// Drops every stream of a session; live subscribers end.
    async fn remove_session(&self, session: &SessionId) -> StateResult<()>;
    /// (streams, buffered events, buffered bytes) currently held, for leak tests and health.
    fn footprint(&self) -> (usize, usize, usize);
}

/// Pub/sub between the parts of a node and, with Redis, between nodes. At-most-once: a message
/// published while nobody listens is gone.
///
/// Topics named `<scope>:<id>` (one session, one node) carry little traffic and exist once per
/// session, so their subscribers get a small buffer; cluster-wide topics (`catalog`, `control`)
/// get a large one. A subscriber that falls further behind than its buffer loses messages.
/// Messages a subscriber of `topic` may fall behind by (see `Bus`).
pub fn topic_capacity(topic: &str) -> usize {
    if topic.contains(':') { 32 } else { 1024 }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, topic: &str, message: Value) -> StateResult<()>;
    /// Every message published on `topic` from now on, at most once; after a gap (a
    /// reconnect) a `{"type": BUS_RESYNC}` message first.
    async fn subscribe(&self, topic: &str) -> StateResult<BoxStream<'static, Value>>;
    /// Topics with at least one subscriber.
    fn topic_count(&self) -> usize;
    /// Whether messages reach other nodes (Redis) or only this process (memory). Routing
    /// between nodes is pointless, and waiting for another node's reply wrong, without it.
    fn spans_nodes(&self) -> bool;
}
