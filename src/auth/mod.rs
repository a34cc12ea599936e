//! Who is calling. The resource server (`guard`) turns a bearer token into a `Principal`;
//! the built-in OAuth 2.1 authorization server (`oauth`, its HTTP side in `http`) issues those
//! tokens to people (local users or Cognito) and machine clients.
//!
//! - `scope` — scope strings, hierarchy and what a tool requires
//! - `keys` — the HS256 signing keys (`kid`, rotation, a generated key in the data folder)
//! - `token` — our access tokens: claims, issue, verify
//! - `users` — local users (bcrypt) in `LOCAL_USER_FILE`
//! - `throttle` — sign-in backoff, `/token` rate limits, the bcrypt gate (per node, bounded)
//! - `jwks` — a provider's signing keys, cached
//! - `cognito` — Cognito tokens through the pool's JWKS, and password sign-in for the login page
//! - `upstream` — sign-in handed to an OpenID Connect provider (e.g. the Cognito hosted UI)
//! - `oauth` — the authorization server's domain: clients, PKCE, codes, refresh families
//! - `http` — the axum side: metadata documents, endpoints, pages, the bearer guard

pub mod cognito;
pub mod http;
pub mod jwks;
pub mod keys;
pub mod oauth;
pub mod scope;
pub mod setup;
pub mod throttle;
pub mod token;
pub mod upstream;
pub mod users;

use serde::Serialize;

/// The authenticated identity a request runs as. Sessions, replay buffers and pending
/// server-to-client requests are bound to `subject`, so one user can never reach another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable user id (the token's `sub`); `anonymous` when authentication is off.
    pub subject: String,
    /// Scopes granted to this caller (empty when authentication is off).
    pub scopes: Vec<String>,
    /// Roles of the person (local user roles, Cognito groups); `admin` guards admin APIs.
    pub roles: Vec<String>,
    /// The OAuth client the token was issued to, for the audit log.
    pub client_id: Option<String>,
    /// False only when authentication is off: then every tool is visible to everyone.
    pub authenticated: bool,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".to_string(),
            scopes: Vec::new(),
            roles: Vec::new(),
            client_id: None,
            authenticated: false,
        }
    }

    /// Whoever presents `ADMIN_STATIC_TOKEN` (HTTP bearer or stdio's `MCP_AUTH_TOKEN`).
    pub fn static_admin() -> Self {
        Self {
            subject: "admin-static-token".to_string(),
            scopes: vec![scope::BASE_SCOPE.to_string()],
            roles: vec![scope::ADMIN_ROLE.to_string()],
            client_id: None,
            authenticated: true,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == scope::ADMIN_ROLE)
    }

    /// Whether this caller may see and call something guarded by `access`.
    pub fn may_use(&self, access: &scope::Access) -> bool {
        !self.authenticated || self.is_admin() || access.missing(self).is_none()
    }
}

/// Which identity source the daemon uses (`AUTH_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthProvider {
    /// No authentication: everyone is `anonymous` (loopback demos, trusted networks).
    None,
    /// Local users (bcrypt) and the built-in authorization server.
    Local,
    /// Cognito users: Cognito tokens accepted directly; the built-in authorization server signs
    /// people in through Cognito.
    Cognito,
}
