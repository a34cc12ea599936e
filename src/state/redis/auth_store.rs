//! `AuthStore` on Redis: codes as plain strings taken with `GETDEL`, clients as strings listed
//! in an index of their expiry times (`put_client.lua` / `use_client.lua`), refresh families as hashes rotated by `redis/scripts/rotate_refresh.lua`, revocations as
//! keys that expire with the token they refuse.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::{Script, Value};

use super::conn::Redis;
use super::keys::Keys;
use crate::clock::Clock;
use crate::state::auth_store::{AuthRecord, AuthStore, Rotation};
use crate::state::{StateError, StateErrorKind, StateResult};

static ROTATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/rotate_refresh.lua")));
static PUT_CLIENT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/put_client.lua")));
static USE_CLIENT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/use_client.lua")));

pub struct RedisAuthStore {
    redis: Redis,
    keys: Keys,
    /// Decides when clients expire (the index's scores), so every node agrees and tests can
    /// move time.
    clock: Arc<dyn Clock>,
}

impl RedisAuthStore {
    pub fn new(redis: Redis, keys: Keys, clock: Arc<dyn Clock>) -> Self {
        Self { redis, keys, clock }
    }

    fn key(&self, kind: AuthRecord, key: &str) -> String {
        let kind = match kind {
            AuthRecord::Code => "code",
        };
        self.keys.auth_record(kind, key)
    }
}

fn set_cmd(key: &str, value: &str, ttl_ms: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if ttl_ms > 0 {
        cmd.arg("PX").arg(ttl_ms);
    }
    cmd
}

#[async_trait]
impl AuthStore for RedisAuthStore {
    async fn put(&self, kind: AuthRecord, key: &str, value: &str, ttl_ms: u64) -> StateResult<()> {
        self.redis
            .query(&set_cmd(&self.key(kind, key), value, ttl_ms))
            .await
    }

    async fn get(&self, kind: AuthRecord, key: &str) -> StateResult<Option<String>> {
        self.redis
            .query(redis::cmd("GET").arg(self.key(kind, key)))
            .await
    }

    async fn take(&self, kind: AuthRecord, key: &str) -> StateResult<Option<String>> {
        self.redis
            .query(redis::cmd("GETDEL").arg(self.key(kind, key)))
            .await
    }

    async fn delete(&self, kind: AuthRecord, key: &str) -> StateResult<()> {
        self.redis
            .query(redis::cmd("DEL").arg(self.key(kind, key)))
            .await
    }

    async fn put_client(
        &self,
        id: &str,
        value: &str,
        ttl_ms: u64,
        max: usize,
    ) -> StateResult<bool> {
        let mut call = PUT_CLIENT.prepare_invoke();
        call.key(self.keys.client_index())
            .key(self.keys.client(id))
            .arg(id)
            .arg(value)
            .arg(self.clock.now_ms())
            .arg(ttl_ms.max(1))
            .arg(max);
        let stored: u64 = self.redis.script(call).await?;
        Ok(stored == 1)
    }

    async fn use_client(
        &self,
        id: &str,
        ttl_ms: u64,
        touch_ms: u64,
    ) -> StateResult<Option<String>> {
        let mut call = USE_CLIENT.prepare_invoke();
        call.key(self.keys.client_index())
            .key(self.keys.client(id))
            .arg(id)
            .arg(self.clock.now_ms())
            .arg(ttl_ms.max(1))
            .arg(touch_ms);
        self.redis.script(call).await
    }

    async fn delete_client(&self, id: &str) -> StateResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.keys.client(id))
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.client_index())
            .arg(id)
            .ignore();
        self.redis.pipeline(&pipe).await
    }

    async fn client_count(&self) -> StateResult<usize> {
        self.redis
            .query(
                redis::cmd("ZCOUNT")
                    .arg(self.keys.client_index())
                    .arg(format!("({}", self.clock.now_ms()))
                    .arg("+inf"),
            )
            .await
    }

    async fn create_family(&self, family: &str, grant: &str, ttl_ms: u64) -> StateResult<()> {
        let key = self.keys.refresh_family(family);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("gen")
            .arg(0)
            .arg("rotated_at")
            .arg(0) // the first rotation has no predecessor to grant grace to
            .arg("grant")
            .arg(grant)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms.max(1))
            .ignore();
        self.redis.pipeline(&pipe).await
    }

    async fn family_grant(&self, family: &str) -> StateResult<Option<String>> {
        self.redis
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.refresh_family(family))
                    .arg("grant"),
            )
            .await
    }

    async fn rotate_refresh(
        &self,
        family: &str,
        generation: u64,
        now_ms: u64,
        grace_ms: u64,
        ttl_ms: u64,
        revoke_ms: u64,
    ) -> StateResult<Rotation> {
        let mut call = ROTATE.prepare_invoke();
        call.key(self.keys.refresh_family(family))
            .key(self.keys.revoked_family(family))
            .arg(generation)
            .arg(now_ms)
            .arg(grace_ms)
            .arg(ttl_ms.max(1))
            .arg(revoke_ms.max(1));
        let reply: Vec<Value> = self.redis.script(call).await?;
        let int = |i: usize| match reply.get(i) {
            Some(Value::Int(n)) => Ok(*n as u64),
            other => Err(corrupt(format!("{other:?}"))),
        };
        let text = |i: usize| match reply.get(i) {
            Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            other => Err(corrupt(format!("{other:?}"))),
        };
        Ok(match int(0)? {
            1 => Rotation::Rotated {
                generation: int(1)?,
                grant: text(2)?,
            },
            2 => Rotation::Concurrent {
                generation: int(1)?,
                grant: text(2)?,
            },
            3 => Rotation::Reused,
            _ => Rotation::Unknown,
        })
    }

    async fn revoke_family(&self, family: &str, revoke_ms: u64) -> StateResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.keys.refresh_family(family))
            .ignore()
            .add_command(set_cmd(
                &self.keys.revoked_family(family),
                "1",
                revoke_ms.max(1),
            ))
            .ignore();
        self.redis.pipeline(&pipe).await
    }

    async fn revoke_token(&self, family: &str, jti: &str, ttl_ms: u64) -> StateResult<()> {
        self.redis
            .query(&set_cmd(
                &self.keys.revoked_token(family, jti),
                "1",
                ttl_ms.max(1),
            ))
            .await
    }

    async fn is_revoked(&self, family: &str, jti: &str) -> StateResult<bool> {
        let found: u64 = self
            .redis
            .query(
                redis::cmd("EXISTS")
                    .arg(self.keys.revoked_family(family))
                    .arg(self.keys.revoked_token(family, jti)),
            )
            .await?;
        Ok(found > 0)
    }
}

fn corrupt(what: String) -> StateError {
    StateError {
        kind: StateErrorKind::Internal,
        cause: format!("rotate_refresh.lua answered {what}"),
    }
}
