//! OAuth clients: machine clients from `OAUTH_CLIENTS_FILE`, clients registered through
//! `/register` (RFC 7591, kept in the `AuthStore` so every node and every restart knows them)
//! and Client ID Metadata Documents (an HTTPS `client_id`, fetched by `cimd`). Redirect URIs
//! match exactly, except loopback ones, which match on any port (RFC 8252 §7.3).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use super::cimd::MetadataFetcher;
use super::{OAuthError, OAuthResult};
use crate::auth::keys::{digest, random_token, same};
use crate::state::{AuthRecord, AuthStore};

/// Most redirect URIs a registration may carry, and the longest URI or name.
const MAX_REDIRECTS: usize = 10;
const MAX_URI: usize = 2000;
const MAX_NAME: usize = 200;

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
            .any(|r| r == presented || loopback_equal(r, presented))
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

fn is_loopback_host(u: &Url) -> bool {
    matches!(
        u.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    )
}

/// Both are `http` loopback URLs that differ at most in the port.
fn loopback_equal(registered: &str, presented: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && is_loopback_host(&a)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
        && a.fragment().is_none()
        && b.fragment().is_none()
        && a.username().is_empty()
        && b.username().is_empty()
}

/// A redirect URI a client may register: HTTPS, http on a loopback host, or a native app's
/// private-use scheme (`cursor://...`); never a scheme that runs code or reads files, never a
/// fragment (RFC 6749 §3.1.2).
pub fn check_redirect_uri(raw: &str) -> OAuthResult<()> {
    let bad = |why: &str| OAuthError::InvalidRedirectUri(format!("redirect_uri {raw:?} {why}"));
    if raw.len() > MAX_URI {
        return Err(bad("is too long"));
    }
    let u = Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    if u.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&u) => Ok(()),
        "http" => Err(bad("must use https unless it is a loopback address")),
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ftp" | "ws" | "wss" => {
            Err(bad("uses a forbidden scheme"))
        }
        _ => Ok(()),
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
    pub fn new(statics: Vec<Client>, store: Arc<dyn AuthStore>, fetcher: MetadataFetcher) -> Self {
        Self {
            statics: statics
                .into_iter()
                .map(|c| (c.client_id.clone(), c))
                .collect(),
            store,
            fetcher,
        }
    }

    /// Reads `OAUTH_CLIENTS_FILE`: `{"clients": [{"client_id", "client_secret", "scopes",
    /// "roles", ...}]}`. Secrets are kept only as hashes.
    pub fn load_static(path: &Path) -> Result<Vec<Client>, String> {
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
                    check_redirect_uri(r).map_err(|e| e.to_string())?;
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
                })
            })
            .collect()
    }

    /// The client with this id, wherever it comes from. `Ok(None)`: nobody by that id.
    pub async fn find(&self, client_id: &str) -> OAuthResult<Option<Client>> {
        if let Some(c) = self.statics.get(client_id) {
            return Ok(Some(c.clone()));
        }
        if MetadataFetcher::is_metadata_url(client_id) {
            return self.fetcher.fetch(client_id).await.map(Some);
        }
        let Some(raw) = self.store.get(AuthRecord::Client, client_id).await? else {
            return Ok(None);
        };
        serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| OAuthError::Server(format!("stored client {client_id}: {e}")))
    }

    /// RFC 7591 registration. Returns the client and the response body (201).
    pub async fn register(&self, reg: Registration, now_s: u64) -> OAuthResult<(Client, Value)> {
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
            check_redirect_uri(r)?;
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
        };
        let stored =
            serde_json::to_string(&client).map_err(|e| OAuthError::Server(e.to_string()))?;
        self.store
            .put(AuthRecord::Client, &client.client_id, &stored, 0)
            .await?;
        let mut body = json!({
            "client_id": client.client_id,
            "client_id_issued_at": now_s,
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

    fn client(uris: &[&str]) -> Client {
        Client {
            client_id: "c".into(),
            client_name: None,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            secret_hash: None,
            grant_types: vec![],
            scopes: vec![],
            roles: vec![],
        }
    }

    #[test]
    fn redirects_match_exactly_except_loopback_ports() {
        let c = client(&["https://app.example/cb", "http://127.0.0.1:3000/callback"]);
        assert!(c.redirect_matches("https://app.example/cb"));
        assert!(!c.redirect_matches("https://app.example/cb/"));
        assert!(!c.redirect_matches("https://app.example/cb?x=1"));
        assert!(!c.redirect_matches("https://evil.example/cb"));
        assert!(c.redirect_matches("http://127.0.0.1:49152/callback"));
        assert!(!c.redirect_matches("http://127.0.0.1:49152/other"));
        assert!(
            !c.redirect_matches("http://localhost:3000/callback"),
            "host must match"
        );
        let https_port = client(&["https://app.example:8443/cb"]);
        assert!(!https_port.redirect_matches("https://app.example:9443/cb"));
    }

    #[test]
    fn registrable_redirects() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:33418/").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("cursor://anysphere.cursor-mcp/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://evil.example/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }
}
