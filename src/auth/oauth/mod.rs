//! The built-in OAuth 2.1 authorization server, free of the web framework: who the clients
//! are (`clients`, `cimd`, their redirect URIs in `redirect`, the registration rate in
//! `source_rate`), what an authorization request may ask (`authorize`), the grants
//! of `/token` and revocation (`grants`), and the sealed values that carry a sign-in
//! across the login and consent pages (`seal`). Time is passed in from the `Clock`.

pub mod authorize;
pub mod bounded_cache;
pub mod cimd;
pub mod clients;
pub mod grants;
pub mod redirect;
pub mod seal;
pub mod source_rate;

use std::sync::Arc;

use crate::auth::AuthProvider;
use crate::auth::cognito::Cognito;
use crate::auth::keys::SigningKeys;
use crate::auth::throttle::Throttles;
use crate::auth::upstream::Upstream;
use crate::auth::users::UserDb;
use crate::clock::Clock;
use crate::state::{AuthStore, StateError};

pub use clients::{Client, Clients};

/// OAuth errors as the RFCs name them; `code()` is the wire value.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2: missing or malformed parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// RFC 6749 §5.2: unknown client or failed client authentication (401).
    #[error("{0}")]
    InvalidClient(String),
    /// RFC 6749 §5.2: bad, expired, used or foreign code or refresh token.
    #[error("{0}")]
    InvalidGrant(String),
    /// RFC 6749 §5.2: this client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// RFC 6749 §5.2.
    #[error("grant type {0:?} is not supported")]
    UnsupportedGrantType(String),
    /// RFC 6749 §4.1.2.1.
    #[error("response_type must be \"code\"")]
    UnsupportedResponseType,
    /// RFC 6749 §5.2.
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8707 §2: the resource is not one of this server's.
    #[error("{0}")]
    InvalidTarget(String),
    /// RFC 6749 §4.1.2.1: the person said no.
    #[error("the user denied the request")]
    AccessDenied,
    /// RFC 7591 §3.2.2.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// RFC 7591 §3.2.2.
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// Too many requests from this source, account or client (429 with `Retry-After`,
    /// RFC 6585 §4); sent as `temporarily_unavailable`, the nearest RFC 6749 code.
    #[error("{message}")]
    RateLimited { retry_after_s: u64, message: String },
    /// RFC 7591 §3.2.2 body: registration is closed because the client cap is reached (503).
    #[error("{0}")]
    RegistrationClosed(String),
    /// RFC 6749 §4.1.2.1: a backend is unreachable (503).
    #[error("temporarily unavailable")]
    Unavailable(#[from] StateError),
    /// A bug (500); the cause is logged, never sent.
    #[error("server error")]
    Server(String),
}

impl OAuthError {
    /// A throttle's refusal: wait `retry_after_s` seconds.
    pub fn throttled(retry_after_s: u64) -> Self {
        Self::RateLimited {
            retry_after_s,
            message: format!("too many requests; try again in {retry_after_s} s"),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::RateLimited { .. } | Self::RegistrationClosed(_) | Self::Unavailable(_) => {
                "temporarily_unavailable"
            }
            Self::Server(_) => "server_error",
        }
    }
}

pub type OAuthResult<T> = Result<T, OAuthError>;

/// Settings of the authorization server (from `Config`).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub provider: AuthProvider,
    /// The issuer and resource base; `None`: `http://<Host>` of each request.
    pub public_url: Option<String>,
    pub access_ttl_s: u64,
    pub refresh_ttl_s: u64,
    /// How long the previous refresh token still works after a rotation, so two nodes
    /// refreshing the same token at once both succeed.
    pub refresh_grace_ms: u64,
    /// Test mode: `/authorize` signs this user in and approves without pages.
    pub test_user: Option<String>,
    /// A bearer token that is an admin (compared in constant time).
    pub admin_static_token: Option<String>,
    /// Development: CIMD URLs may be http:// and point at private addresses.
    pub cimd_allow_private: bool,
}

/// Everything the auth endpoints and the bearer guard need; one per process.
pub struct AuthServer {
    pub settings: AuthSettings,
    pub keys: SigningKeys,
    pub store: Arc<dyn AuthStore>,
    pub clients: Clients,
    pub users: Option<Arc<UserDb>>,
    pub cognito: Option<Arc<Cognito>>,
    /// An OpenID Connect provider the login page offers as an alternative.
    pub upstream: Option<Arc<Upstream>>,
    /// Sign-in backoff, `/token` rate limits and the bcrypt gate of this node.
    pub throttle: Throttles,
    pub clock: Arc<dyn Clock>,
}

impl AuthServer {
    pub fn enabled(&self) -> bool {
        self.settings.provider != AuthProvider::None
    }

    pub fn now_s(&self) -> u64 {
        self.clock.now_ms() / 1000
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}
