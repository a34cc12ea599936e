//! Per-node bookkeeping of live work: cancellation tokens of running requests and the oneshot
//! slots of server-to-client requests awaiting the client's answer. Both are keyed by session,
//! so one session can neither cancel nor answer another's work.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::protocol::{RequestId, RpcError};
use crate::state::SessionId;

#[derive(Default)]
pub struct Inflight {
    running: Mutex<HashMap<(SessionId, RequestId), CancellationToken>>,
}

impl Inflight {
    /// Registers a running request; the guard unregisters it when the request ends. `None`
    /// when the session already has a running request with this id (ids must be unique).
    pub fn start(&self, session: &SessionId, id: &RequestId) -> Option<InflightGuard<'_>> {
        let token = CancellationToken::new();
        let key = (session.clone(), id.clone());
        match self.running.lock().entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(token.clone());
            }
        }
        Some(InflightGuard {
            inflight: self,
            key: Some((session.clone(), id.clone())),
            token,
        })
    }

    /// Cancels a running request. Unknown or finished ids are ignored (spec cancellation §).
    pub fn cancel(&self, session: &SessionId, id: &RequestId) -> bool {
        match self.running.lock().get(&(session.clone(), id.clone())) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    pub fn cancel_session(&self, session: &SessionId) {
        for ((s, _), t) in self.running.lock().iter() {
            if s == session {
                t.cancel();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.running.lock().len()
    }
}

pub struct InflightGuard<'a> {
    inflight: &'a Inflight,
    key: Option<(SessionId, RequestId)>,
    pub token: CancellationToken,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inflight.running.lock().remove(&key);
        }
    }
}

/// The standalone GET streams this node holds, one per session: a second one on this node is
/// refused, and one that another node took over is closed (the spec allows each message on
/// only one stream, so two live GET streams of a session must not both get it).
#[derive(Default)]
pub struct GetStreams {
    open: Mutex<HashMap<SessionId, (u64, oneshot::Sender<()>)>>,
    next: AtomicU64,
}

impl GetStreams {
    /// `None` when the session's GET stream is already open here. The receiver fires when the
    /// stream must close.
    pub fn open(
        self: &Arc<Self>,
        session: &SessionId,
    ) -> Option<(GetStreamLease, oneshot::Receiver<()>)> {
        let (tx, rx) = oneshot::channel();
        let generation = self.next.fetch_add(1, Ordering::Relaxed);
        match self.open.lock().entry(session.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((generation, tx));
            }
        }
        let lease = GetStreamLease {
            streams: self.clone(),
            session: session.clone(),
            generation,
        };
        Some((lease, rx))
    }

    /// The sessions with a GET stream open on this node.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.open.lock().keys().cloned().collect()
    }

    /// Closes the session's GET stream on this node, if it has one.
    pub fn close(&self, session: &SessionId) {
        if let Some((_, tx)) = self.open.lock().remove(session) {
            let _ = tx.send(());
        }
    }
}

/// Holds a session's GET stream slot until the response body is dropped.
pub struct GetStreamLease {
    streams: Arc<GetStreams>,
    session: SessionId,
    generation: u64,
}

impl Drop for GetStreamLease {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock();
        if open
            .get(&self.session)
            .is_some_and(|(g, _)| *g == self.generation)
        {
            open.remove(&self.session);
        }
    }
}

type Reply = Result<Value, RpcError>;

#[derive(Default)]
pub struct PendingClientRequests {
    waiting: Mutex<HashMap<(SessionId, RequestId), oneshot::Sender<Reply>>>,
}

impl PendingClientRequests {
    pub fn register(&self, session: &SessionId, id: &RequestId) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .insert((session.clone(), id.clone()), tx);
        rx
    }

    /// Hands the client's answer to the waiting function. False when nobody waits (late,
    /// unknown, or another session's id).
    pub fn resolve(&self, session: &SessionId, id: &RequestId, reply: Reply) -> bool {
        match self.waiting.lock().remove(&(session.clone(), id.clone())) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// Whether a function on this node waits for this answer.
    pub fn is_waiting(&self, session: &SessionId, id: &RequestId) -> bool {
        self.waiting
            .lock()
            .contains_key(&(session.clone(), id.clone()))
    }

    pub fn forget(&self, session: &SessionId, id: &RequestId) {
        self.waiting.lock().remove(&(session.clone(), id.clone()));
    }

    /// Drops every wait of a session; the waiting functions see `SessionGone`.
    pub fn drop_session(&self, session: &SessionId) {
        self.waiting.lock().retain(|(s, _), _| s != session);
    }

    pub fn len(&self) -> usize {
        self.waiting.lock().len()
    }
}
