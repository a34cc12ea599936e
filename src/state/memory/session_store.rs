//! Sessions in a mutex-guarded map with a sliding inactivity TTL read from the `Clock`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::state::{
    SessionId, SessionRecord, SessionStore, StateError, StateErrorKind, StateResult,
};

pub struct MemorySessionStore {
    sessions: Mutex<HashMap<SessionId, SessionRecord>>,
    /// Inactivity after which a session is gone (sliding: every `get` renews it).
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
}

impl MemorySessionStore {
    pub fn new(ttl_ms: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            ttl_ms,
            clock,
        }
    }

    fn is_live(&self, record: &SessionRecord, now: u64) -> bool {
        now.saturating_sub(record.last_active_ms) < self.ttl_ms
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, record: SessionRecord) -> StateResult<()> {
        match self.sessions.lock().entry(record.id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => Err(StateError {
                kind: StateErrorKind::Internal,
                cause: format!("session id {} already exists", record.id),
            }),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(record);
                Ok(())
            }
        }
    }

    async fn get(&self, id: &SessionId) -> StateResult<Option<SessionRecord>> {
        let now = self.clock.now_ms();
        let mut sessions = self.sessions.lock();
        match sessions.get_mut(id) {
            Some(rec) if self.is_live(rec, now) => {
                rec.last_active_ms = now;
                Ok(Some(rec.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn peek(&self, id: &SessionId) -> StateResult<Option<SessionRecord>> {
        let now = self.clock.now_ms();
        Ok(self
            .sessions
            .lock()
            .get(id)
            .filter(|r| self.is_live(r, now))
            .cloned())
    }

    async fn modify(
        &self,
        id: &SessionId,
        change: &(dyn for<'r> Fn(&'r mut SessionRecord) + Send + Sync),
    ) -> StateResult<Option<SessionRecord>> {
        let now = self.clock.now_ms();
        let mut sessions = self.sessions.lock();
        match sessions.get_mut(id) {
            Some(rec) if self.is_live(rec, now) => {
                change(rec);
                rec.last_active_ms = now;
                Ok(Some(rec.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn delete(&self, id: &SessionId) -> StateResult<bool> {
        Ok(self.sessions.lock().remove(id).is_some())
    }

    async fn purge_expired(&self) -> StateResult<Vec<SessionId>> {
        let now = self.clock.now_ms();
        let mut sessions = self.sessions.lock();
        let expired: Vec<SessionId> = sessions
            .values()
            .filter(|r| !self.is_live(r, now))
            .map(|r| r.id.clone())
            .collect();
        for id in &expired {
            sessions.remove(id);
        }
        if sessions.capacity() > 64 && sessions.len() < sessions.capacity() / 4 {
            // Give memory back after a burst of sessions ends.
            sessions.shrink_to_fit();
        }
        Ok(expired)
    }

    async fn ping(&self) -> StateResult<()> {
        Ok(())
    }

    async fn count(&self) -> StateResult<Option<usize>> {
        Ok(Some(self.sessions.lock().len()))
    }
}
