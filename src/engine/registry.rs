//! Per-node bookkeeping of live work: cancellation tokens of running requests and the oneshot
//! slots of server-to-client requests awaiting the client's answer. Both are keyed by session,
//! so one session can neither cancel nor answer another's work.

use std::collections::HashMap;

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
