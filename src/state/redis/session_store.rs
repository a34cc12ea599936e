//! Sessions as strings `<revision>\n<record JSON>` with a native sliding TTL: `GETEX PX`
//! loads and renews in one command, so serving a request on a live session costs one round
//! trip. Changes are compare-and-set on the revision (`redis/scripts/update_session.lua`).
//!
//! The per-user cap keeps an index per owner (`Keys::user_sessions`, a zset of session ids):
//! adding to it is atomic against the cap (`redis/scripts/add_user_session.lua`), and members
//! whose session ended or expired are pruned only when the owner is at the cap, so creating a
//! session costs two round trips and serving one still costs one.

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
static ADD_TO_OWNER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/add_user_session.lua")));

/// How old an index member must be before pruning may drop it for having no session: a
/// session is indexed a moment before its record is written, and a concurrent prune in that
/// moment must not forget it (or the owner could slip past the cap).
const PRUNE_GRACE_MS: u64 = 10_000;

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

    /// Adds `record` to its owner's index unless the owner holds `limit` sessions there.
    async fn add_to_owner(
        &self,
        index: &str,
        record: &SessionRecord,
        limit: usize,
    ) -> StateResult<bool> {
        let mut call = ADD_TO_OWNER.prepare_invoke();
        call.key(index)
            .arg(record.id.as_str())
            .arg(limit)
            .arg(record.created_ms)
            .arg(self.ttl_ms);
        Ok(self.redis.script::<i64>(call).await? == 1)
    }

    /// Drops the members of an owner's index whose session no longer exists (ended on a node
    /// that could not reach the index, or expired). One `EXISTS` per member, sent together;
    /// at most the cap's worth, and only when the owner is at the cap.
    async fn prune_owner(&self, index: &str) -> StateResult<()> {
        let members: Vec<(String, u64)> = self
            .redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES"),
            )
            .await?;
        let settled = self
            .clock
            .now_ms()
            .saturating_sub(PRUNE_GRACE_MS.min(self.ttl_ms));
        let candidates: Vec<SessionId> = members
            .into_iter()
            .filter(|(_, created)| *created <= settled)
            .filter_map(|(id, _)| SessionId::parse(&id))
            .collect();
        let checks = candidates.iter().map(|id| {
            let key = self.keys.session(id);
            async move {
                let exists: bool = self.redis.query(redis::cmd("EXISTS").arg(key)).await?;
                Ok::<_, StateError>((id, exists))
            }
        });
        let mut gone = redis::cmd("ZREM");
        gone.arg(index);
        let mut any = false;
        for checked in futures::future::join_all(checks).await {
            let (id, exists) = checked?;
            if !exists {
                gone.arg(id.as_str());
                any = true;
            }
        }
        if any {
            let _: i64 = self.redis.query(&gone).await?;
        }
        Ok(())
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
    async fn create(&self, record: SessionRecord, limit: usize) -> StateResult<bool> {
        let index = self.keys.user_sessions(&record.subject);
        if !self.add_to_owner(&index, &record, limit).await? {
            self.prune_owner(&index).await?;
            if !self.add_to_owner(&index, &record, limit).await? {
                return Ok(false);
            }
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.session(&record.id))
            .arg(Self::encode(0, &record)?)
            .arg("PX")
            .arg(self.ttl_ms)
            .arg("NX");
        let stored: Option<String> = self.redis.query(&cmd).await?;
        match stored {
            Some(_) => Ok(true),
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
        // Read the owner first so the session stops counting against its cap right away.
        let key = self.keys.session(id);
        let raw = self.redis.query(redis::cmd("GET").arg(&key)).await?;
        let owner = self.decode(raw).ok().flatten().map(|(_, r)| r.subject);
        let removed: u64 = self.redis.query(redis::cmd("DEL").arg(&key)).await?;
        if let Some(subject) = owner {
            let _: i64 = self
                .redis
                .query(
                    redis::cmd("ZREM")
                        .arg(self.keys.user_sessions(&subject))
                        .arg(id.as_str()),
                )
                .await?;
        }
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
