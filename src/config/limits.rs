//! Resource limits, one group per layer that enforces them, so each group's settings, defaults
//! and validation live next to each other. Every field is a flag and an environment variable,
//! like the rest of `Config`, and prints in `check-config`.

use clap::Args;
use serde::Serialize;

use super::ConfigError;

/// Limits of the HTTP server itself: connections, header and body reads, idle keep-alive.
#[derive(Debug, Clone, Args, Serialize)]
pub struct HttpLimits {}

impl HttpLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Limits of what one user or session may keep on a node or in Redis: sessions per user,
/// stored client metadata, replay buffers, subscriptions.
#[derive(Debug, Clone, Args, Serialize)]
pub struct StateLimits {}

impl StateLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Limits of the authorization server: registrations, sign-in and token throttles, hashing.
#[derive(Debug, Clone, Args, Serialize)]
pub struct AuthLimits {
    /// Most OAuth clients registered through /register (RFC 7591) alive at once, across the
    /// deployment; past it registration answers 503 until unused clients expire.
    #[arg(long, env = "OAUTH_MAX_CLIENTS", default_value_t = 10_000)]
    pub oauth_max_clients: usize,

    /// A client registered through /register expires after this many days without a use at
    /// /authorize or /token. At least REFRESH_TOKEN_EXP_DAYS, so no live refresh token
    /// outlives its client.
    #[arg(long, env = "OAUTH_CLIENT_IDLE_DAYS", default_value_t = 90)]
    pub oauth_client_idle_days: u64,

    /// Client registrations per source address per minute (per node; bursts up to the same
    /// number). Past it: 429 with Retry-After. The source is the TCP peer: behind a proxy or
    /// load balancer every caller shares the proxy's address.
    #[arg(long, env = "OAUTH_REGISTRATIONS_PER_MINUTE", default_value_t = 10)]
    pub oauth_registrations_per_minute: u32,

    /// Private-use redirect URI schemes without a dot that clients may register, comma
    /// separated (reverse-domain schemes like com.example.app are always allowed, as are https
    /// and http on loopback). The default lists those of Cursor and the VS Code family. Empty:
    /// none.
    #[arg(
        long,
        env = "OAUTH_ALLOWED_REDIRECT_SCHEMES",
        value_delimiter = ',',
        default_value = crate::auth::oauth::redirect::KNOWN_APP_SCHEMES
    )]
    pub oauth_allowed_redirect_schemes: Vec<String>,
}

impl AuthLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("OAUTH_MAX_CLIENTS", self.oauth_max_clients as u64),
            ("OAUTH_CLIENT_IDLE_DAYS", self.oauth_client_idle_days),
            (
                "OAUTH_REGISTRATIONS_PER_MINUTE",
                u64::from(self.oauth_registrations_per_minute),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        for scheme in self.redirect_schemes() {
            if let Some(why) =
                crate::auth::oauth::redirect::RedirectPolicy::refuse_app_scheme(scheme)
            {
                return Err(ConfigError::Invalid("OAUTH_ALLOWED_REDIRECT_SCHEMES", why));
            }
        }
        Ok(())
    }

    /// The allowed app schemes, without the empty entries an empty setting gives.
    pub fn redirect_schemes(&self) -> impl Iterator<Item = &String> {
        self.oauth_allowed_redirect_schemes
            .iter()
            .filter(|s| !s.trim().is_empty())
    }
}
