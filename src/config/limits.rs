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
pub struct AuthLimits {}

impl AuthLimits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
