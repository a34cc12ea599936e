//! The start-up check of Redis's eviction policy. Sessions, codes, refresh families and
//! revocation markers all carry a TTL, so any `volatile-*` or `allkeys-*` policy lets Redis
//! drop them under memory pressure — and a dropped revocation marker makes a revoked token
//! valid again. Only `noeviction` (writes fail with OOM instead, and nothing is forgotten) or
//! no memory limit at all keeps security state safe.

use serde::Serialize;

use super::conn::Redis;
use crate::state::{StateError, StateErrorKind, StateResult};

/// What to do when the live policy could evict keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvictionCheck {
    /// Refuse to start (the default).
    Refuse,
    /// Start, with a warning in the log.
    Warn,
}

/// The policy as Redis reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub policy: String,
    /// `maxmemory` in bytes; 0 is no limit (Redis then never evicts).
    pub maxmemory: u64,
}

impl Eviction {
    /// Whether Redis may drop a key that carries a TTL (all of ours do).
    pub fn can_evict(&self) -> bool {
        self.maxmemory > 0 && self.policy != "noeviction"
    }
}

/// Reads the policy and applies `check`. A Redis that hides `CONFIG` (managed services rename
/// it) cannot be checked: that is logged, not refused, and the docs say what to set.
pub async fn check(redis: &Redis, check: EvictionCheck) -> StateResult<()> {
    let eviction = match read(redis).await {
        Ok(e) => e,
        Err(e) if e.kind == StateErrorKind::Internal => {
            tracing::warn!(
                error = %e,
                "cannot read Redis's maxmemory-policy (CONFIG GET refused); make sure it is noeviction"
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if !eviction.can_evict() {
        return Ok(());
    }
    let why = format!(
        "Redis has maxmemory {} with maxmemory-policy {}: under memory pressure it may evict \
         sessions, authorization codes and revocation markers (a revoked token would work again); \
         set maxmemory-policy noeviction (redis/redis.conf does)",
        eviction.maxmemory, eviction.policy
    );
    match check {
        EvictionCheck::Refuse => Err(StateError {
            kind: StateErrorKind::Internal,
            cause: format!("{why}, or REDIS_EVICTION_CHECK=warn to start anyway"),
        }),
        EvictionCheck::Warn => {
            tracing::warn!("{why}");
            Ok(())
        }
    }
}

async fn read(redis: &Redis) -> StateResult<Eviction> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory*");
    let pairs: Vec<String> = redis.query(&cmd).await?;
    let value = |name: &str| {
        pairs
            .chunks(2)
            .find(|kv| kv[0] == name)
            .and_then(|kv| kv.get(1))
            .cloned()
    };
    let bad = |what: &str| StateError {
        kind: StateErrorKind::Internal,
        cause: format!("CONFIG GET did not report {what}"),
    };
    Ok(Eviction {
        policy: value("maxmemory-policy").ok_or_else(|| bad("maxmemory-policy"))?,
        maxmemory: value("maxmemory")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("maxmemory"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_or_no_limit_keeps_keys_with_a_ttl() {
        let e = |policy: &str, maxmemory| Eviction {
            policy: policy.into(),
            maxmemory,
        };
        assert!(!e("noeviction", 1 << 30).can_evict());
        assert!(
            !e("volatile-lru", 0).can_evict(),
            "no limit, nothing evicted"
        );
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-ttl",
            "volatile-random",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
        ] {
            assert!(e(policy, 1 << 30).can_evict(), "{policy}");
        }
    }
}
