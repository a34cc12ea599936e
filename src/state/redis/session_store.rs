//! Sessions as JSON strings with a native sliding TTL: `GETEX PX` loads and renews in one
//! command, so serving a request on a live session costs one round trip.

use std::sync::Arc;

use async_trait::async_trait;

use super::conn::Redis;
use super::keys::Keys;
use crate::clock::Clock;
use crate::state::{
    SessionId, SessionRecord, SessionStore, StateError, StateErrorKind, StateResult,
};

pub struct RedisSessionStore {
    redis: Redis,
    keys: Keys,
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
}

impl RedisSessionStore {
    pub fn new(redis: Redis, keys: Keys, ttl_ms: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            redis,
            keys,
            ttl_ms,
            clock,
        }
    }

    fn decode(&self, raw: Option<String>) -> StateResult<Option<SessionRecord>> {
        let Some(raw) = raw else { return Ok(None) };
        let mut record: SessionRecord = serde_json::from_str(&raw).map_err(|e| StateError {
            kind: StateErrorKind::Internal,
            cause: format!("a stored session does not parse: {e}"),
        })?;
        record.last_active_ms = self.clock.now_ms();
        Ok(Some(record))
    }

    fn encode(record: &SessionRecord) -> StateResult<String> {
        serde_json::to_string(record).map_err(|e| StateError {
            kind: StateErrorKind::Internal,
            cause: format!("a session does not serialize: {e}"),
        })
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: SessionRecord) -> StateResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.session(&record.id))
            .arg(Self::encode(&record)?)
            .arg("PX")
            .arg(self.ttl_ms)
            .arg("NX");
        let stored: Option<String> = self.redis.query(&cmd).await?;
        match stored {
            Some(_) => Ok(()),
            None => Err(StateError {
                kind: StateErrorKind::Internal,
                cause: format!("session id {} already exists", record.id),
            }),
        }
    }

    async fn get(&self, id: &SessionId) -> StateResult<Option<SessionRecord>> {
        let mut cmd = redis::cmd("GETEX");
        cmd.arg(self.keys.session(id)).arg("PX").arg(self.ttl_ms);
        let raw = self.redis.query(&cmd).await?;
        self.decode(raw)
    }

    async fn peek(&self, id: &SessionId) -> StateResult<Option<SessionRecord>> {
        let raw = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.session(id)))
            .await?;
        self.decode(raw)
    }

    async fn update(&self, record: &SessionRecord) -> StateResult<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.session(&record.id))
            .arg(Self::encode(record)?)
            .arg("PX")
            .arg(self.ttl_ms)
            .arg("XX");
        let stored: Option<String> = self.redis.query(&cmd).await?;
        Ok(stored.is_some())
    }

    async fn delete(&self, id: &SessionId) -> StateResult<bool> {
        let removed: u64 = self
            .redis
            .query(redis::cmd("DEL").arg(self.keys.session(id)))
            .await?;
        Ok(removed > 0)
    }

    async fn purge_expired(&self) -> StateResult<Vec<SessionId>> {
        Ok(Vec::new()) // Redis expires sessions itself
    }

    async fn ping(&self) -> StateResult<()> {
        let _pong: String = self.redis.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn count(&self) -> StateResult<Option<usize>> {
        Ok(None) // not tracked: counting would mean scanning the keyspace
    }
}
