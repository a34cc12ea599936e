//! Resource limits, one group per layer that enforces them, so each group's settings, defaults
//! and validation live next to each other. Every field is a flag and an environment variable,
//! like the rest of `Config`, and prints in `check-config`.

use clap::Args;
use serde::Serialize;

use super::ConfigError;

/// Limits of the HTTP server itself: connections, header and body reads, idle keep-alive.
#[derive(Debug, Clone, Args, Serialize)]
pub struct HttpLimits {
    /// Seconds a client has to send a complete request head once it sent its first byte
    /// (slow-header clients are disconnected).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a connection may stay open with no request in progress (keep-alive between
    /// requests). A response in progress, such as an SSE stream, is not idle.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Seconds a client has to send a whole request body, counted from its request head
    /// (slower: 408 and the connection is closed).
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,

    /// Most client connections open at once; past it a new connection is answered 503 and
    /// closed. Unset: the open-file limit (RLIMIT_NOFILE) less a reserve for everything else
    /// the process opens (a quarter of the limit, between 32 and 1024 files).
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds a shutdown waits for requests in progress (SSE streams included) before it
    /// closes their connections.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

impl HttpLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            (
                "max_connections",
                self.max_connections.map_or(1, |n| n as u64),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
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
pub struct AuthLimits {}

impl AuthLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
