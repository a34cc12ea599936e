//! Who is calling. For now every caller is anonymous; the OAuth issue adds bearer tokens that
//! produce the same `Principal`, so transports and the engine do not change.

use serde::Serialize;

/// The authenticated identity a request runs as. Sessions, replay buffers and pending
/// server-to-client requests are bound to `subject`, so one user can never reach another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable user id (the token's `sub`); `anonymous` when authentication is off.
    pub subject: String,
    /// Scopes granted to this caller (empty when authentication is off).
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".to_string(),
            scopes: Vec::new(),
        }
    }
}
