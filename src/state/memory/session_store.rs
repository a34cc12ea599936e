//! Sessions in a mutex-guarded map with a sliding inactivity TTL read from the `Clock`, and an
//! index by subject so the per-user session cap costs no scan of every session.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::state::{
    SessionId, SessionRecord, SessionStore, StateError, StateErrorKind, StateResult,
};

#[derive(Default)]
struct Sessions {
    by_id: HashMap<SessionId, SessionRecord>,
    /// The ids each subject holds (live or expired but not yet purged), for the cap.
    by_subject: HashMap<String, HashSet<SessionId>>,
}

impl Sessions {
    fn remove(&mut self, id: &SessionId) -> Option<SessionRecord> {
        let record = self.by_id.remove(id)?;
        if let Some(ids) = self.by_subject.get_mut(&record.subject) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_subject.remove(&record.subject);
            }
        }
        Some(record)
    }
}

pub struct MemorySessionStore {
    sessions: Mutex<Sessions>,
    /// Inactivity after which a session is gone (sliding: every `get` renews it).
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
}

impl MemorySessionStore {
    pub fn new(ttl_ms: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            sessions: Mutex::new(Sessions::default()),
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
    async fn create(&self, record: SessionRecord, limit: usize) -> StateResult<bool> {
        let now = self.clock.now_ms();
        let mut sessions = self.sessions.lock();
        if sessions.by_id.contains_key(&record.id) {
            return Err(StateError {
                kind: StateErrorKind::Internal,
                cause: format!("session id {} already exists", record.id),
            });
        }
        let held = sessions
            .by_subject
            .get(&record.subject)
            .map_or(0, HashSet::len);
        if held >= limit {
            // Expired sessions the reaper has not swept yet do not count against the owner.
            // They stay until it does: the reaper releases what hangs off them.
            let live = sessions.by_subject[&record.subject]
                .iter()
                .filter(|id| {
                    sessions
                        .by_id
                        .get(*id)
                        .is_some_and(|r| self.is_live(r, now))
                })
                .count();
            if live >= limit {
                return Ok(false);
            }
        }
        sessions
            .by_subject
            .entry(record.subject.clone())
            .or_default()
            .insert(record.id.clone());
        sessions.by_id.insert(record.id.clone(), record);
        Ok(true)
    }

    async fn get(&self, id: &SessionId) -> StateResult<Option<SessionRecord>> {
        let now = self.clock.now_ms();
        let mut sessions = self.sessions.lock();
        match sessions.by_id.get_mut(id) {
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
            .by_id
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
        match sessions.by_id.get_mut(id) {
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
            .by_id
            .values()
            .filter(|r| !self.is_live(r, now))
            .map(|r| r.id.clone())
            .collect();
        for id in &expired {
            sessions.remove(id);
        }
        if sessions.by_id.capacity() > 64 && sessions.by_id.len() < sessions.by_id.capacity() / 4 {
            // Give memory back after a burst of sessions ends.
            sessions.by_id.shrink_to_fit();
            sessions.by_subject.shrink_to_fit();
        }
        Ok(expired)
    }

    async fn ping(&self) -> StateResult<()> {
        Ok(())
    }

    async fn count(&self) -> StateResult<Option<usize>> {
        Ok(Some(self.sessions.lock().by_id.len()))
    }
}
