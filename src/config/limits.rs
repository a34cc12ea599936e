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
pub struct StateLimits {
    /// Live sessions one authenticated user (token subject) may hold; `initialize` beyond it
    /// is refused until one ends (DELETE) or expires.
    #[arg(long, env = "MAX_SESSIONS_PER_USER", default_value_t = 32)]
    pub max_sessions_per_user: usize,

    /// Live sessions all unauthenticated callers together may hold (authentication off). One
    /// shared cap, not one per source address: behind a proxy every caller has the proxy's
    /// address, and on loopback every caller has the same one.
    #[arg(long, env = "MAX_ANONYMOUS_SESSIONS", default_value_t = 1000)]
    pub max_anonymous_sessions: usize,

    /// Largest `clientInfo`, and largest `capabilities`, an `initialize` may declare (bytes of
    /// compact JSON each); both are stored with the session.
    #[arg(long, env = "MAX_CLIENT_METADATA_BYTES", default_value_t = 16 * 1024)]
    pub max_client_metadata_bytes: usize,

    /// Bytes of event data kept per SSE stream for Last-Event-ID replay; the oldest events go
    /// first (the newest event is always kept, so one stream holds at most this plus one event).
    #[arg(long, env = "REPLAY_BUFFER_BYTES", default_value_t = 256 * 1024)]
    pub replay_buffer_bytes: usize,

    /// Resources one session may subscribe to (`resources/subscribe`).
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_SESSION", default_value_t = 128)]
    pub max_subscriptions_per_session: usize,

    /// Longest resource URI a session may subscribe to, in bytes.
    #[arg(long, env = "MAX_SUBSCRIPTION_URI_BYTES", default_value_t = 2048)]
    pub max_subscription_uri_bytes: usize,
}

impl StateLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_sessions_per_user", self.max_sessions_per_user),
            ("max_anonymous_sessions", self.max_anonymous_sessions),
            ("max_client_metadata_bytes", self.max_client_metadata_bytes),
            ("replay_buffer_bytes", self.replay_buffer_bytes),
            (
                "max_subscriptions_per_session",
                self.max_subscriptions_per_session,
            ),
            (
                "max_subscription_uri_bytes",
                self.max_subscription_uri_bytes,
            ),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(ConfigError::Zero(name)),
            None => Ok(()),
        }
    }
}

/// Limits of the authorization server: registrations, sign-in and token throttles, hashing.
#[derive(Debug, Clone, Args, Serialize)]
pub struct AuthLimits {}

impl AuthLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
