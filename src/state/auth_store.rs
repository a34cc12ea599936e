//! `AuthStore`: the OAuth state every node must see — single-use authorization codes,
//! registered clients (counted, expiring when unused), refresh-token families with rotation,
//! and revoked token ids. The domain
//! (`auth::oauth`) decides what the values mean; the store only keeps them, atomically where
//! the security rules need it (a code is taken once, a refresh generation rotates once).

use async_trait::async_trait;

use super::StateResult;

/// Where a record lives; each kind has its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthRecord {
    /// An authorization code (by the hash of the code). Single use, 10 minutes.
    Code,
}

/// What a refresh attempt found (see `AuthStore::rotate_refresh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented generation was current: the family moved to `generation`.
    Rotated { generation: u64, grant: String },
    /// The presented generation was replaced within the grace window (a concurrent refresh of
    /// the same token, maybe on another node): hand out the current `generation` again.
    Concurrent { generation: u64, grant: String },
    /// An older generation came back: the token was stolen or replayed. The family is gone.
    Reused,
    /// No such family (never existed, expired or revoked).
    Unknown,
}

/// The contract every implementation passes (`state/testsuite.rs`). Missing is `Ok(None)`;
/// ttl of 0 means "no expiry".
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    async fn put(&self, kind: AuthRecord, key: &str, value: &str, ttl_ms: u64) -> StateResult<()>;
    async fn get(&self, kind: AuthRecord, key: &str) -> StateResult<Option<String>>;
    /// Reads and deletes in one step (Redis GETDEL): of two concurrent takers one gets the value.
    async fn take(&self, kind: AuthRecord, key: &str) -> StateResult<Option<String>>;
    async fn delete(&self, kind: AuthRecord, key: &str) -> StateResult<()>;

    /// Stores a registered client that expires unless used within `ttl_ms` (ttl > 0), unless
    /// `max` live clients exist already: `Ok(false)` then, and nothing is stored. The count and
    /// the insert are one atomic step, so concurrent registrations on many nodes cannot pass
    /// the cap together.
    async fn put_client(&self, id: &str, value: &str, ttl_ms: u64, max: usize)
    -> StateResult<bool>;
    /// A live client (`Ok(None)`: never registered, deleted or expired), read for a use of it:
    /// its expiry moves to `ttl_ms` from now when the last move is more than `touch_ms` old, so
    /// frequent uses cost no write.
    async fn use_client(&self, id: &str, ttl_ms: u64, touch_ms: u64)
    -> StateResult<Option<String>>;
    /// Removes a client (idempotent); its place under the cap is free at once.
    async fn delete_client(&self, id: &str) -> StateResult<()>;
    /// How many registered clients are alive.
    async fn client_count(&self) -> StateResult<usize>;

    /// Starts a refresh-token family at generation 0 with its grant (opaque JSON).
    async fn create_family(&self, family: &str, grant: &str, ttl_ms: u64) -> StateResult<()>;
    /// The grant of a live family (`Ok(None)`: unknown, expired or revoked), read before a
    /// refresh so a request that must be refused does not rotate the family first.
    async fn family_grant(&self, family: &str) -> StateResult<Option<String>>;
    /// Atomically checks `generation` against the family's current one and rotates it; an old
    /// generation outside `grace_ms` deletes the family and marks it revoked for `revoke_ms`.
    async fn rotate_refresh(
        &self,
        family: &str,
        generation: u64,
        now_ms: u64,
        grace_ms: u64,
        ttl_ms: u64,
        revoke_ms: u64,
    ) -> StateResult<Rotation>;
    /// Ends a family: its refresh tokens stop working and its access tokens are refused for
    /// `revoke_ms` (their longest remaining life).
    async fn revoke_family(&self, family: &str, revoke_ms: u64) -> StateResult<()>;
    /// Refuses one access token (`jti` of `family`) for `ttl_ms`, its remaining life.
    async fn revoke_token(&self, family: &str, jti: &str, ttl_ms: u64) -> StateResult<()>;
    /// Whether the token or its whole family was revoked (one round trip).
    async fn is_revoked(&self, family: &str, jti: &str) -> StateResult<bool>;
}
