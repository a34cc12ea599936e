//! `AuthStore` for a single node: maps behind one mutex, expiry read from the `Clock`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::state::StateResult;
use crate::state::auth_store::{AuthRecord, AuthStore, Rotation};

struct Family {
    generation: u64,
    rotated_at: u64,
    grant: String,
    expires_at: u64,
}

#[derive(Default)]
struct Maps {
    records: HashMap<(AuthRecord, String), (String, u64)>,
    /// Registered clients: value and the time they expire unless used.
    clients: HashMap<String, (String, u64)>,
    families: HashMap<String, Family>,
    /// Revoked families and tokens (`family` or `family/jti`) until the given time.
    revoked: HashMap<String, u64>,
}

pub struct MemoryAuthStore {
    maps: Mutex<Maps>,
    clock: Arc<dyn Clock>,
}

impl MemoryAuthStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            maps: Mutex::new(Maps::default()),
            clock,
        }
    }

    fn deadline(&self, ttl_ms: u64) -> u64 {
        if ttl_ms == 0 {
            u64::MAX
        } else {
            self.clock.now_ms().saturating_add(ttl_ms)
        }
    }

    /// Drops what expired; called on writes so the maps stay bounded by live entries.
    fn sweep(maps: &mut Maps, now: u64) {
        maps.records.retain(|_, (_, at)| *at > now);
        maps.clients.retain(|_, (_, at)| *at > now);
        maps.families.retain(|_, f| f.expires_at > now);
        maps.revoked.retain(|_, at| *at > now);
    }
}

#[async_trait]
impl AuthStore for MemoryAuthStore {
    async fn put(&self, kind: AuthRecord, key: &str, value: &str, ttl_ms: u64) -> StateResult<()> {
        let at = self.deadline(ttl_ms);
        let mut maps = self.maps.lock();
        Self::sweep(&mut maps, self.clock.now_ms());
        maps.records
            .insert((kind, key.to_string()), (value.to_string(), at));
        Ok(())
    }

    async fn get(&self, kind: AuthRecord, key: &str) -> StateResult<Option<String>> {
        let now = self.clock.now_ms();
        let maps = self.maps.lock();
        Ok(maps
            .records
            .get(&(kind, key.to_string()))
            .filter(|(_, at)| *at > now)
            .map(|(v, _)| v.clone()))
    }

    async fn take(&self, kind: AuthRecord, key: &str) -> StateResult<Option<String>> {
        let now = self.clock.now_ms();
        let mut maps = self.maps.lock();
        Ok(maps
            .records
            .remove(&(kind, key.to_string()))
            .filter(|(_, at)| *at > now)
            .map(|(v, _)| v))
    }

    async fn delete(&self, kind: AuthRecord, key: &str) -> StateResult<()> {
        self.maps.lock().records.remove(&(kind, key.to_string()));
        Ok(())
    }

    async fn put_client(
        &self,
        id: &str,
        value: &str,
        ttl_ms: u64,
        max: usize,
    ) -> StateResult<bool> {
        let now = self.clock.now_ms();
        let mut maps = self.maps.lock();
        maps.clients.retain(|_, (_, at)| *at > now);
        if maps.clients.len() >= max && !maps.clients.contains_key(id) {
            return Ok(false);
        }
        maps.clients.insert(
            id.to_string(),
            (value.to_string(), now.saturating_add(ttl_ms)),
        );
        Ok(true)
    }

    async fn use_client(
        &self,
        id: &str,
        ttl_ms: u64,
        touch_ms: u64,
    ) -> StateResult<Option<String>> {
        let now = self.clock.now_ms();
        let mut maps = self.maps.lock();
        let Some((value, at)) = maps.clients.get_mut(id) else {
            return Ok(None);
        };
        if *at <= now {
            maps.clients.remove(id);
            return Ok(None);
        }
        let fresh = now.saturating_add(ttl_ms);
        if fresh.saturating_sub(*at) > touch_ms {
            *at = fresh;
        }
        Ok(Some(value.clone()))
    }

    async fn delete_client(&self, id: &str) -> StateResult<()> {
        self.maps.lock().clients.remove(id);
        Ok(())
    }

    async fn client_count(&self) -> StateResult<usize> {
        let now = self.clock.now_ms();
        let maps = self.maps.lock();
        Ok(maps.clients.values().filter(|(_, at)| *at > now).count())
    }

    async fn create_family(&self, family: &str, grant: &str, ttl_ms: u64) -> StateResult<()> {
        let now = self.clock.now_ms();
        let expires_at = self.deadline(ttl_ms);
        let mut maps = self.maps.lock();
        Self::sweep(&mut maps, now);
        maps.families.insert(
            family.to_string(),
            Family {
                generation: 0,
                rotated_at: now,
                grant: grant.to_string(),
                expires_at,
            },
        );
        Ok(())
    }

    async fn family_grant(&self, family: &str) -> StateResult<Option<String>> {
        let now = self.clock.now_ms();
        let maps = self.maps.lock();
        Ok(maps
            .families
            .get(family)
            .filter(|f| f.expires_at > now)
            .map(|f| f.grant.clone()))
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
        let expires_at = self.deadline(ttl_ms);
        let revoked_until = self.deadline(revoke_ms);
        let mut maps = self.maps.lock();
        let Some(f) = maps
            .families
            .get_mut(family)
            .filter(|f| f.expires_at > now_ms)
        else {
            return Ok(Rotation::Unknown);
        };
        if generation == f.generation {
            f.generation += 1;
            f.rotated_at = now_ms;
            f.expires_at = expires_at;
            return Ok(Rotation::Rotated {
                generation: f.generation,
                grant: f.grant.clone(),
            });
        }
        if generation + 1 == f.generation && now_ms.saturating_sub(f.rotated_at) <= grace_ms {
            return Ok(Rotation::Concurrent {
                generation: f.generation,
                grant: f.grant.clone(),
            });
        }
        maps.families.remove(family);
        maps.revoked.insert(family.to_string(), revoked_until);
        Ok(Rotation::Reused)
    }

    async fn revoke_family(&self, family: &str, revoke_ms: u64) -> StateResult<()> {
        let until = self.deadline(revoke_ms);
        let mut maps = self.maps.lock();
        maps.families.remove(family);
        maps.revoked.insert(family.to_string(), until);
        Ok(())
    }

    async fn revoke_token(&self, family: &str, jti: &str, ttl_ms: u64) -> StateResult<()> {
        let until = self.deadline(ttl_ms);
        let mut maps = self.maps.lock();
        Self::sweep(&mut maps, self.clock.now_ms());
        maps.revoked.insert(format!("{family}/{jti}"), until);
        Ok(())
    }

    async fn is_revoked(&self, family: &str, jti: &str) -> StateResult<bool> {
        let now = self.clock.now_ms();
        let maps = self.maps.lock();
        let hit = |k: &str| maps.revoked.get(k).is_some_and(|at| *at > now);
        Ok(hit(family) || hit(&format!("{family}/{jti}")))
    }
}
