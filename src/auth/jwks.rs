//! A JSON Web Key Set fetched from an identity provider (Cognito's pool, an OIDC provider):
//! cached, fetched again when a token names an unknown `kid` — at most once per `REFETCH_MS`,
//! so a flood of made-up `kid`s cannot make us hammer the provider.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use parking_lot::RwLock;

use crate::clock::Clock;

const REFETCH_MS: u64 = 60_000;

/// The HTTP client for an identity provider we trust by configuration (JWKS, token and
/// sign-in endpoints): a deadline on every call, and no redirects followed.
pub fn provider_client(timeout: std::time::Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

pub struct Jwks {
    url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the set was last fetched (ms); a tokio mutex so one fetch runs at a time.
    fetched_at: tokio::sync::Mutex<Option<u64>>,
    clock: Arc<dyn Clock>,
}

impl Jwks {
    pub fn new(url: String, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            url,
            http,
            keys: RwLock::new(HashMap::new()),
            fetched_at: tokio::sync::Mutex::new(None),
            clock,
        }
    }

    /// The key with this id, fetching the set when it is not known yet. `None`: no such key.
    pub async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(k) = self.keys.read().get(kid) {
            return Some(k.clone());
        }
        let mut fetched = self.fetched_at.lock().await;
        if let Some(k) = self.keys.read().get(kid) {
            return Some(k.clone());
        }
        let now = self.clock.now_ms();
        if fetched.is_some_and(|at| now.saturating_sub(at) < REFETCH_MS) {
            return None;
        }
        *fetched = Some(now);
        let set: JwkSet = match async {
            self.http
                .get(&self.url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "cannot fetch the JWKS");
                return None;
            }
        };
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(id), Ok(k)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(id, k);
            }
        }
        tracing::info!(keys = keys.len(), url = %self.url, "JWKS loaded");
        *self.keys.write() = keys;
        self.keys.read().get(kid).cloned()
    }
}
