//! Sessions as strings `<revision>\n<record JSON>` with a native sliding TTL: `GETEX PX`
//! loads and renews in one command, so serving a request on a live session costs one round
//! trip. Changes are compare-and-set on the revision (`redis/scripts/update_session.lua`).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;

use super::conn::Redis;
use super::keys::Keys;
use crate::clock::Clock;
use crate::state::{
    SessionId, SessionRecord, SessionStore, StateError, StateErrorKind, StateResult,
};

static UPDATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/update_session.lua")));

/// Attempts of one `modify` before giving up on a session that keeps changing under it.
const MODIFY_ATTEMPTS: usize = 16;

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

    /// `<revision>\n<json>` -> (revision, record).
    fn decode(&self, raw: Option<String>) -> StateResult<Option<(String, SessionRecord)>> {
        let Some(raw) = raw else { return Ok(None) };
        let corrupt = |why: String| StateError {
            kind: StateErrorKind::Internal,
            cause: format!("a stored session does not parse: {why}"),
        };
        let (revision, json) = raw
            .split_once('\n')
            .ok_or_else(|| corrupt("no revision".into()))?;
        let mut record: SessionRecord =
            serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
        record.last_active_ms = self.clock.now_ms();
        Ok(Some((revision.to_string(), record)))
    }

    fn encode(revision: u64, record: &SessionRecord) -> StateResult<String> {
        let json = serde_json::to_string(record).map_err(|e| StateError {
            kind: StateErrorKind::Internal,
            cause: format!("a session does not serialize: {e}"),
        })?;
        Ok(format!("{revision}\n{json}"))
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: SessionRecord) -> StateResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.session(&record.id))
            .arg(Self::encode(0, &record)?)
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
        Ok(self.decode(raw)?.map(|(_, record)| record))
    }

    async fn peek(&self, id: &SessionId) -> StateResult<Option<SessionRecord>> {
        let raw = self
            .redis
            .query(redis::cmd("GET").arg(self.keys.session(id)))
            .await?;
        Ok(self.decode(raw)?.map(|(_, record)| record))
    }

    async fn modify(
        &self,
        id: &SessionId,
        change: &(dyn for<'r> Fn(&'r mut SessionRecord) + Send + Sync),
    ) -> StateResult<Option<SessionRecord>> {
        let key = self.keys.session(id);
        for _ in 0..MODIFY_ATTEMPTS {
            let raw = self.redis.query(redis::cmd("GET").arg(&key)).await?;
            let Some((revision, mut record)) = self.decode(raw)? else {
                return Ok(None);
            };
            change(&mut record);
            let next: u64 = revision.parse::<u64>().unwrap_or(0).wrapping_add(1);
            let mut call = UPDATE.prepare_invoke();
            call.key(&key)
                .arg(&revision)
                .arg(Self::encode(next, &record)?)
                .arg(self.ttl_ms);
            match self.redis.script::<i64>(call).await? {
                0 => return Ok(None),
                2 => return Ok(Some(record)),
                _ => continue, // another writer came first: re-read and re-apply
            }
        }
        Err(StateError {
            kind: StateErrorKind::Unavailable,
            cause: format!("session {id} kept changing during {MODIFY_ATTEMPTS} attempts"),
        })
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
