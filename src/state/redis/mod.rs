//! The Redis backends: sessions, replay buffers and the bus shared by every node of a cluster,
//! on a single Redis or a Redis Cluster. Key layout in `keys.rs`, multi-step operations in the
//! Lua scripts of the top-level `redis/scripts/` folder.

mod auth_store;
mod bus;
mod conn;
mod event_log;
mod keys;
mod policy;
mod pubsub;
mod session_store;

use std::sync::Arc;
use std::time::Duration;

pub use auth_store::RedisAuthStore;
pub use bus::RedisBus;
pub use event_log::RedisEventLog;
pub use policy::EvictionCheck;
pub use session_store::RedisSessionStore;

use crate::clock::Clock;
use crate::state::memory::EventLogLimits;
use crate::state::{StateError, StateErrorKind, StateResult};
use conn::Redis;
use keys::Keys;
use pubsub::Hub;

/// How to reach Redis and what to keep there.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One URL, or the seed nodes of a cluster.
    pub urls: Vec<String>,
    pub cluster: bool,
    /// Prepended to every key and channel, so deployments can share a Redis.
    pub prefix: String,
    /// Deadline of every command; past it the request fails with 503.
    pub timeout: Duration,
    pub session_ttl: Duration,
    pub limits: EventLogLimits,
    /// Refuse or warn when Redis's eviction policy could drop keys with a TTL.
    pub eviction_check: EvictionCheck,
}

pub struct RedisBackends {
    pub sessions: Arc<RedisSessionStore>,
    pub events: Arc<RedisEventLog>,
    pub bus: Arc<RedisBus>,
    pub auth: Arc<RedisAuthStore>,
}

/// Connects (failing when Redis cannot be reached within the timeout) and starts the node's
/// pub/sub connection.
pub async fn connect(
    settings: &RedisSettings,
    clock: Arc<dyn Clock>,
) -> StateResult<RedisBackends> {
    let redis = Redis::connect(&settings.urls, settings.cluster, settings.timeout).await?;
    let _pong: String = redis.query(&redis::cmd("PING")).await?;
    policy::check(&redis, settings.eviction_check).await?;
    // Classic pub/sub reaches every node of a cluster, so one connection to any node will do.
    let endpoints = if settings.cluster {
        pubsub::Endpoints::Cluster {
            urls: settings.urls.clone(),
            commands: redis.clone(),
        }
    } else {
        let first = settings.urls.first().ok_or_else(|| StateError {
            kind: StateErrorKind::Internal,
            cause: "no Redis URL".into(),
        })?;
        pubsub::Endpoints::Single(redis::Client::open(first.as_str()).map_err(conn::failure)?)
    };
    let hub = Hub::start(endpoints, settings.timeout);
    let keys = Keys::new(&settings.prefix);
    let ttl_ms = settings.session_ttl.as_millis() as u64;
    Ok(RedisBackends {
        sessions: Arc::new(RedisSessionStore::new(
            redis.clone(),
            keys.clone(),
            ttl_ms,
            clock.clone(),
        )),
        events: Arc::new(RedisEventLog::new(
            redis.clone(),
            hub.clone(),
            keys.clone(),
            ttl_ms,
            settings.limits,
        )),
        auth: Arc::new(RedisAuthStore::new(redis.clone(), keys.clone(), clock)),
        bus: Arc::new(RedisBus::new(redis, hub, keys)),
    })
}
