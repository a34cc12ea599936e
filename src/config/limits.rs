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
/// The throttles are kept per node (in memory): with N nodes an attacker who reaches all of
/// them gets N times the allowance.
#[derive(Debug, Clone, Args, Serialize)]
pub struct AuthLimits {
    /// Failed sign-ins per account, and per source address (IPv6: per /64), before each
    /// further attempt must wait: 1 s, doubling per failure up to SIGNIN_BACKOFF_MAX_SECS,
    /// answered 429 with Retry-After. A successful sign-in clears the account's count; a count
    /// is forgotten 15 minutes after its last wait ended.
    #[arg(long, env = "SIGNIN_FREE_FAILURES", default_value_t = 5)]
    pub signin_free_failures: u32,

    /// Longest wait between sign-in attempts of an account or source under backoff, so an
    /// attacker can delay a real user's sign-in but never lock it out for longer.
    #[arg(long, env = "SIGNIN_BACKOFF_MAX_SECS", default_value_t = 300)]
    pub signin_backoff_max_secs: u64,

    /// Password checks (bcrypt) that run at once, on the blocking thread pool. About the
    /// number of cores the node may spend on sign-in.
    #[arg(long, env = "SIGNIN_HASH_CONCURRENCY", default_value_t = 2)]
    pub signin_hash_concurrency: usize,

    /// Password checks that may wait for a free slot; beyond, a sign-in is answered 503
    /// "busy" at once instead of queueing.
    #[arg(long, env = "SIGNIN_HASH_QUEUE", default_value_t = 16)]
    pub signin_hash_queue: usize,

    /// `/token` and `/revoke` requests a minute per source address (bursts of 10 seconds'
    /// worth pass). Behind a proxy every request has the proxy's address: raise it there.
    #[arg(long, env = "TOKEN_RATE_PER_SOURCE", default_value_t = 600)]
    pub token_rate_per_source: u32,

    /// `/token` and `/revoke` requests a minute per client id (bursts of 10 seconds' worth).
    #[arg(long, env = "TOKEN_RATE_PER_CLIENT", default_value_t = 600)]
    pub token_rate_per_client: u32,

    /// Accounts, sources or clients each throttle table tracks at most; when full, idle
    /// entries go first, then those with the fewest failures (the emptiest buckets stay).
    #[arg(long, env = "AUTH_THROTTLE_ENTRIES", default_value_t = 50_000)]
    pub auth_throttle_entries: usize,

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
            ("SIGNIN_FREE_FAILURES", u64::from(self.signin_free_failures)),
            ("SIGNIN_BACKOFF_MAX_SECS", self.signin_backoff_max_secs),
            (
                "SIGNIN_HASH_CONCURRENCY",
                self.signin_hash_concurrency as u64,
            ),
            (
                "TOKEN_RATE_PER_SOURCE",
                u64::from(self.token_rate_per_source),
            ),
            (
                "TOKEN_RATE_PER_CLIENT",
                u64::from(self.token_rate_per_client),
            ),
            ("AUTH_THROTTLE_ENTRIES", self.auth_throttle_entries as u64),
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
        if self.signin_backoff_max_secs > 86_400 {
            return Err(ConfigError::Invalid(
                "SIGNIN_BACKOFF_MAX_SECS",
                format!(
                    "must be at most 86400 (a day), got {}",
                    self.signin_backoff_max_secs
                ),
            ));
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
