//! OAuth clients: machine clients from `OAUTH_CLIENTS_FILE`, clients registered through
//! `/register` (RFC 7591, kept in the `AuthStore` so every node and every restart knows them)
//! and Client ID Metadata Documents (an HTTPS `client_id`, fetched by `cimd`). Registration is
//! bounded: a rate per source, a total number of clients, and a client unused for
//! `OAUTH_CLIENT_IDLE_DAYS` expires (each use at `/authorize` or `/token` pushes that back).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cimd::MetadataFetcher;
use super::redirect::{self, RedirectPolicy};
use super::source_rate::{Source, SourceRate};
use super::{OAuthError, OAuthResult};
use crate::auth::keys::{digest, random_token, same};
use crate::state::AuthStore;

/// Most redirect URIs a registration may carry, and the longest name.
pub const MAX_REDIRECTS: usize = 10;
pub const MAX_NAME: usize = 200;
/// A client's idle expiry is pushed back at most this often: a use within a minute of the last
/// push costs no write.
pub const TOUCH_EVERY_MS: u64 = 60_000;

/// Bounds on registered clients (from `AuthLimits`).
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Most registered clients alive at once, over the whole deployment.
    pub max_clients: usize,
    /// A registered client unused for this long expires.
    pub idle_ttl_ms: u64,
    /// Registrations per source address per minute, per node.
    pub registrations_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// SHA-256 of the secret of a confidential client; `None` for public clients.
    #[serde(default)]
    pub secret_hash: Option<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Scopes a machine client may get with `client_credentials` (static clients only).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Roles its machine tokens carry (static clients only).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Configured by the operator (`OAUTH_CLIENTS_FILE`), so its redirect URIs are trusted:
    /// `/authorize` errors may be redirected to them without a person seeing a page first
    /// (RFC 9700 §4.11.2). Never stored: a registered client cannot claim it.
    #[serde(skip)]
    pub trusted: bool,
}

impl Client {
    pub fn name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Exact match, or a loopback registration matching on any port (RFC 8252 §7.3).
    pub fn redirect_matches(&self, presented: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| redirect::matches(r, presented))
    }

    /// Checks the secret of a confidential client (constant time); public clients have none.
    pub fn authenticate(&self, secret: Option<&str>) -> OAuthResult<()> {
        match (&self.secret_hash, secret) {
            (None, _) => Ok(()),
            (Some(h), Some(s)) if same(h.as_bytes(), digest(s).as_bytes()) => Ok(()),
            _ => Err(OAuthError::InvalidClient(
                "client authentication failed".into(),
            )),
        }
    }
}

/// An RFC 7591 registration request (the fields we use; the rest is ignored).
#[derive(Debug, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub application_type: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Static clients, registered clients and metadata documents behind one lookup.
pub struct Clients {
    statics: HashMap<String, Client>,
    store: Arc<dyn AuthStore>,
    fetcher: MetadataFetcher,
    policy: RedirectPolicy,
    limits: ClientLimits,
    /// Registrations per source; anyone can register, so one source must not fill the cap.
    rate: SourceRate,
}

#[derive(Debug, Deserialize)]
struct StaticFile {
    clients: Vec<StaticClient>,
}

#[derive(Debug, Deserialize)]
struct StaticClient {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

impl Clients {
    pub fn new(
        statics: Vec<Client>,
        store: Arc<dyn AuthStore>,
        fetcher: MetadataFetcher,
        policy: RedirectPolicy,
        limits: ClientLimits,
    ) -> Self {
        Self {
            statics: statics
                .into_iter()
                .map(|c| (c.client_id.clone(), c))
                .collect(),
            store,
            fetcher,
            policy,
            rate: SourceRate::new(limits.registrations_per_minute),
            limits,
        }
    }

    /// The rules registered redirect URIs follow.
    pub fn policy(&self) -> &RedirectPolicy {
        &self.policy
    }

    /// Reads `OAUTH_CLIENTS_FILE`: `{"clients": [{"client_id", "client_secret", "scopes",
    /// "roles", ...}]}`. Secrets are kept only as hashes.
    pub fn load_static(path: &Path, policy: &RedirectPolicy) -> Result<Vec<Client>, String> {
        let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: StaticFile =
            serde_json::from_slice(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        file.clients
            .into_iter()
            .map(|c| {
                if c.client_secret.len() < 16 {
                    return Err(format!(
                        "client {}: client_secret must be at least 16 characters",
                        c.client_id
                    ));
                }
                for r in &c.redirect_uris {
                    policy.check(r).map_err(|e| e.to_string())?;
                }
                let mut grants = vec!["client_credentials".to_string()];
                if !c.redirect_uris.is_empty() {
                    grants.extend(["authorization_code".into(), "refresh_token".into()]);
                }
                Ok(Client {
                    client_id: c.client_id,
                    client_name: c.client_name,
                    redirect_uris: c.redirect_uris,
                    secret_hash: Some(digest(&c.client_secret)),
                    grant_types: grants,
                    scopes: c.scopes,
                    roles: c.roles,
                    trusted: true,
                })
            })
            .collect()
    }

    /// The client with this id, wherever it comes from, for a use of it (`/authorize`,
    /// `/token`, `/revoke`): a registered client's idle expiry is pushed back. `Ok(None)`:
    /// nobody by that id.
    pub async fn find(&self, client_id: &str) -> OAuthResult<Option<Client>> {
        if let Some(c) = self.statics.get(client_id) {
            return Ok(Some(c.clone()));
        }
        if MetadataFetcher::is_metadata_url(client_id) {
            return self.fetcher.fetch(client_id).await.map(Some);
        }
        let Some(raw) = self
            .store
            .use_client(client_id, self.limits.idle_ttl_ms, TOUCH_EVERY_MS)
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| OAuthError::Server(format!("stored client {client_id}: {e}")))
    }

    /// RFC 7591 registration from `source` (the caller's address). Returns the client and the
    /// response body (201).
    pub async fn register(
        &self,
        reg: Registration,
        source: Option<IpAddr>,
        now_ms: u64,
    ) -> OAuthResult<(Client, Value)> {
        if let Err(retry_after_s) = self.rate.take(Source::of(source), now_ms) {
            return Err(OAuthError::RateLimited {
                retry_after_s,
                message: format!(
                    "too many client registrations from this address; try again in {retry_after_s} s"
                ),
            });
        }
        let meta = |m: &str| OAuthError::InvalidClientMetadata(m.into());
        if reg.redirect_uris.is_empty() {
            return Err(OAuthError::InvalidRedirectUri(
                "redirect_uris must list at least one URI".into(),
            ));
        }
        if reg.redirect_uris.len() > MAX_REDIRECTS {
            return Err(OAuthError::InvalidRedirectUri(format!(
                "at most {MAX_REDIRECTS} redirect_uris"
            )));
        }
        for r in &reg.redirect_uris {
            self.policy.check(r)?;
        }
        if reg.client_name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
            return Err(meta("client_name is too long"));
        }
        let grants = reg
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        if grants.is_empty()
            || !grants
                .iter()
                .all(|g| g == "authorization_code" || g == "refresh_token")
        {
            return Err(meta(
                "grant_types may only hold authorization_code and refresh_token",
            ));
        }
        if reg
            .response_types
            .as_ref()
            .is_some_and(|r| r.iter().any(|t| t != "code"))
        {
            return Err(meta("response_types may only hold code"));
        }
        let method = reg
            .token_endpoint_auth_method
            .unwrap_or_else(|| "client_secret_basic".into());
        let secret = match method.as_str() {
            "none" => None,
            "client_secret_basic" | "client_secret_post" => Some(random_token()),
            other => {
                return Err(meta(&format!(
                    "token_endpoint_auth_method {other:?} is not supported"
                )));
            }
        };
        let application_type = reg.application_type.unwrap_or_else(|| "web".into());
        if application_type != "web" && application_type != "native" {
            return Err(meta("application_type must be web or native"));
        }
        let client = Client {
            client_id: format!("mcp-{}", &random_token()[..22]),
            client_name: reg.client_name,
            redirect_uris: reg.redirect_uris,
            secret_hash: secret.as_deref().map(digest),
            grant_types: grants,
            scopes: Vec::new(),
            roles: Vec::new(),
            trusted: false,
        };
        let stored =
            serde_json::to_string(&client).map_err(|e| OAuthError::Server(e.to_string()))?;
        let max = self.limits.max_clients;
        let added = self
            .store
            .put_client(&client.client_id, &stored, self.limits.idle_ttl_ms, max)
            .await?;
        if !added {
            tracing::warn!(
                max_clients = max,
                "client registration refused: OAUTH_MAX_CLIENTS reached"
            );
            return Err(OAuthError::RegistrationClosed(format!(
                "this server has reached its limit of {max} registered clients; clients unused \
                 for {} days expire, or the operator can raise OAUTH_MAX_CLIENTS",
                self.limits.idle_ttl_ms / 86_400_000
            )));
        }
        let mut body = json!({
            "client_id": client.client_id,
            "client_id_issued_at": now_ms / 1000,
            "redirect_uris": client.redirect_uris,
            "grant_types": client.grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "application_type": application_type,
        });
        if let Some(name) = &client.client_name {
            body["client_name"] = json!(name);
        }
        if let Some(scope) = reg.scope {
            body["scope"] = json!(scope);
        }
        if let Some(s) = secret {
            body["client_secret"] = json!(s);
            body["client_secret_expires_at"] = json!(0);
        }
        Ok((client, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::state::memory::MemoryAuthStore;

    fn clients(clock: Arc<ManualClock>, limits: ClientLimits) -> Clients {
        let store = Arc::new(MemoryAuthStore::new(clock.clone()));
        let policy = RedirectPolicy::new(&["cursor".to_string()]);
        let fetcher = MetadataFetcher::new(false, policy.clone(), clock);
        Clients::new(Vec::new(), store, fetcher, policy, limits)
    }

    fn registration(redirect: &str) -> Registration {
        serde_json::from_value(json!({"redirect_uris": [redirect],
            "token_endpoint_auth_method": "none"}))
        .unwrap()
    }

    const DAY_MS: u64 = 86_400_000;

    #[tokio::test]
    async fn registrations_are_capped_rate_limited_per_source_and_expire_when_unused() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let c = clients(
            clock.clone(),
            ClientLimits {
                max_clients: 2,
                idle_ttl_ms: 30 * DAY_MS,
                registrations_per_minute: 2,
            },
        );
        let here: Option<IpAddr> = Some("198.51.100.4".parse().unwrap());
        let there: Option<IpAddr> = Some("198.51.100.5".parse().unwrap());
        let now = || clock.now_ms();
        let (a, _) = c
            .register(registration("cursor://a.b/cb"), here, now())
            .await
            .unwrap();
        c.register(registration("com.example.app:/cb"), here, now())
            .await
            .unwrap();
        let slow = c
            .register(registration("https://a.example/cb"), here, now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                slow,
                OAuthError::RateLimited {
                    retry_after_s: 30,
                    ..
                }
            ),
            "{slow:?}"
        );
        let full = c
            .register(registration("https://a.example/cb"), there, now())
            .await
            .unwrap_err();
        assert!(
            matches!(full, OAuthError::RegistrationClosed(_)),
            "{full:?}"
        );
        assert!(full.to_string().contains("limit of 2 registered clients"));
        // Using a client pushes its expiry back; the unused one expires and frees its place.
        clock.advance_ms(20 * DAY_MS);
        assert!(c.find(&a.client_id).await.unwrap().is_some());
        clock.advance_ms(20 * DAY_MS);
        assert!(
            c.find(&a.client_id).await.unwrap().is_some(),
            "used 20 days ago"
        );
        let (b, _) = c
            .register(registration("https://a.example/cb"), there, now())
            .await
            .unwrap();
        clock.advance_ms(30 * DAY_MS + 1);
        assert!(c.find(&a.client_id).await.unwrap().is_none());
        assert!(c.find(&b.client_id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn registered_redirects_follow_the_policy_and_registered_clients_are_not_trusted() {
        let clock = Arc::new(ManualClock::new(0));
        let c = clients(
            clock,
            ClientLimits {
                max_clients: 10,
                idle_ttl_ms: DAY_MS,
                registrations_per_minute: 10,
            },
        );
        for bad in ["ms-msdt:/id", "search-ms:query=x", "vscode://x.y/cb"] {
            let err = c.register(registration(bad), None, 0).await.unwrap_err();
            assert_eq!(err.code(), "invalid_redirect_uri", "{bad}");
        }
        let (client, _) = c
            .register(
                registration("cursor://anysphere.cursor-mcp/oauth/callback"),
                None,
                0,
            )
            .await
            .unwrap();
        assert!(!client.trusted);
        let found = c.find(&client.client_id).await.unwrap().unwrap();
        assert!(!found.trusted, "trust is never read back from the store");
    }
}
