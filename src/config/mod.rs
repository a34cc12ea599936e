//! Configuration from flags and environment variables (every setting has both, and a default).
//! `Config::validate` refuses combinations that cannot work; `Config::for_test` is what tests
//! start servers with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod functions;
mod limits;

pub use crate::auth::AuthProvider;
pub use functions::{FunctionSettings, SandboxMode};
pub use limits::{AuthLimits, HttpLimits, StateLimits};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportMode {
    /// Serve HTTP: streamable HTTP (/mcp), legacy HTTP+SSE (/sse), plain HTTP (/http).
    Http,
    /// Same as `http` (the Python daemon's name for its HTTP mode); kept so its configs work.
    Sse,
    /// Newline-delimited JSON-RPC on stdin/stdout; logs on stderr.
    Stdio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Print the effective configuration (secrets masked) and the catalog it loads, then exit.
    CheckConfig,
    /// Manage local users (LOCAL_USER_FILE).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum UserCommand {
    /// Add a user. The password is read from stdin with --password-stdin, else generated and
    /// printed.
    Add {
        username: String,
        /// A role (repeatable), e.g. `--role admin`.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Remove a user.
    Remove { username: String },
}

/// mcp-daemon: a Model Context Protocol server.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "mcp-daemon", version, about)]
pub struct Config {
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,

    /// Transport to serve.
    #[arg(long, env = "MCP_TRANSPORT", value_enum, default_value = "http")]
    pub transport: TransportMode,

    /// Address to listen on. Loopback by default; set 0.0.0.0 only behind a proxy or with auth.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// TCP port (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// MCP config file (the Python daemon's JSON format). Default: the embedded demo config.
    #[arg(long = "config", env = "MCP_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Seconds of inactivity after which a session expires.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 3600)]
    pub session_ttl_secs: u64,

    /// How often expired sessions are swept, in seconds.
    #[arg(long, env = "SESSION_REAP_INTERVAL_SECS", default_value_t = 30)]
    pub session_reap_interval_secs: u64,

    /// Largest accepted request body in bytes (larger: 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest accepted JSON nesting (deeper: -32700).
    #[arg(long, env = "MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,

    /// Host names accepted in the Host header, comma-separated; `*` accepts any. Loopback names
    /// (localhost, 127.0.0.1, [::1]) are always accepted.
    #[arg(long, env = "ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Browser origins accepted in the Origin header, comma-separated (e.g.
    /// https://app.example.com); origins on an allowed host are accepted too.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds between SSE keep-alive comments.
    #[arg(long, env = "SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub sse_keepalive_secs: u64,

    /// Reconnect delay (ms) sent to clients in the SSE `retry:` field.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = 1000)]
    pub sse_retry_ms: u64,

    /// Events kept per SSE stream for Last-Event-ID replay.
    #[arg(long, env = "REPLAY_BUFFER_EVENTS", default_value_t = 1000)]
    pub replay_buffer_events: usize,

    /// SSE streams kept per session for replay.
    #[arg(long, env = "REPLAY_BUFFER_STREAMS", default_value_t = 32)]
    pub replay_buffer_streams: usize,

    /// Seconds a function waits for the client to answer sampling/elicitation/roots.
    #[arg(long, env = "CLIENT_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub client_request_timeout_secs: u64,

    /// Items per page of tools/list, resources/list, prompts/list.
    #[arg(long, env = "PAGE_SIZE", default_value_t = 100)]
    pub page_size: usize,

    /// Log format on stderr.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `mcp_daemon=debug`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// HMAC key (at least 32 characters) that seals stateless-era `requestState`; every node of
    /// a cluster needs the same one. Unset: a random key per process (single node only).
    #[arg(long, env = "REQUEST_STATE_KEY")]
    #[serde(serialize_with = "mask")]
    pub request_state_key: Option<String>,

    /// Seconds a sealed `requestState` stays valid.
    #[arg(long, env = "REQUEST_STATE_TTL_SECS", default_value_t = 600)]
    pub request_state_ttl_secs: u64,

    /// Seconds a partition's catalog is served from a node's cache before it is loaded again.
    /// Changes reach every node at once through the bus; this only bounds how long a node that
    /// missed one keeps serving the old definitions.
    #[arg(long, env = "CATALOG_CACHE_TTL_SECS", default_value_t = 300)]
    pub catalog_cache_ttl_secs: u64,

    /// Redis for state shared by every node (sessions, replay buffers, pub/sub), e.g.
    /// `redis://:password@10.0.0.5:6379/0`; with `--redis-cluster`, a comma-separated list of
    /// seed nodes. Unset: per-node memory (a single node).
    #[arg(long, env = "REDIS_URL")]
    #[serde(serialize_with = "mask")]
    pub redis_url: Option<String>,

    /// `REDIS_URL` names the seed nodes of a Redis Cluster.
    #[arg(long, env = "REDIS_CLUSTER", default_value_t = false)]
    pub redis_cluster: bool,

    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "mcp")]
    pub redis_prefix: String,

    /// Milliseconds a Redis command may take before the request fails with 503.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 2000)]
    pub redis_timeout_ms: u64,

    /// When Redis's `maxmemory-policy` could evict keys with a TTL (sessions, codes,
    /// revocation markers: a revoked token would work again): `refuse` to start, or `warn`.
    /// `noeviction` (as in redis/redis.conf) or no `maxmemory` passes.
    #[arg(
        long,
        env = "REDIS_EVICTION_CHECK",
        value_enum,
        default_value = "refuse"
    )]
    pub redis_eviction_check: crate::state::redis::EvictionCheck,

    /// Who may call: `none` (everyone is anonymous), `local` (local users and the built-in
    /// OAuth 2.1 server) or `cognito`. Unset: `none` when listening on loopback only, `local`
    /// otherwise, so nothing reachable from a network runs without authentication by accident.
    #[arg(long, env = "AUTH_PROVIDER", value_enum)]
    pub auth_provider: Option<AuthProvider>,

    /// The public base URL clients use (`https://mcp.example.com`): the OAuth issuer and the
    /// base of every resource URI. Unset: `http://<Host header>` of each request.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Folder for what the daemon generates and keeps: the signing key (single node), the
    /// default user file.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Signing key (at least 32 characters) of access tokens, refresh tokens and sign-in pages;
    /// every node of a cluster needs the same one. Unset on a single node: generated into
    /// DATA_DIR on first start.
    #[arg(long, env = "JWT_SECRET_KEY")]
    #[serde(serialize_with = "mask")]
    pub jwt_secret_key: Option<String>,

    /// Previous signing keys, comma-separated: tokens they signed still verify (key rotation).
    #[arg(long, env = "JWT_PREVIOUS_KEYS", value_delimiter = ',')]
    #[serde(serialize_with = "mask_list")]
    pub jwt_previous_keys: Vec<String>,

    /// Access token lifetime in minutes.
    #[arg(long, env = "ACCESS_TOKEN_EXP", default_value_t = 60)]
    pub access_token_exp: u64,

    /// Refresh token lifetime in days (each refresh starts it again).
    #[arg(long, env = "REFRESH_TOKEN_EXP_DAYS", default_value_t = 30)]
    pub refresh_token_exp_days: u64,

    /// Local users (bcrypt hashes and roles). Default: DATA_DIR/users.json.
    #[arg(long, env = "LOCAL_USER_FILE")]
    pub local_user_file: Option<PathBuf>,

    /// The bootstrap admin, created in the user file when missing.
    #[arg(long, env = "ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,

    /// Password of the bootstrap admin. Unset: a random one, printed once when the admin is
    /// created.
    #[arg(long, env = "ADMIN_PASSWORD")]
    #[serde(serialize_with = "mask")]
    pub admin_password: Option<String>,

    /// A bearer token that acts as an admin (for automation; compared in constant time,
    /// logged as such). At least 32 characters.
    #[arg(long, env = "ADMIN_STATIC_TOKEN")]
    #[serde(serialize_with = "mask")]
    pub admin_static_token: Option<String>,

    /// Machine clients for `client_credentials` (JSON: {"clients": [{"client_id",
    /// "client_secret", "scopes", "roles"}]}).
    #[arg(long, env = "OAUTH_CLIENTS_FILE")]
    pub oauth_clients_file: Option<PathBuf>,

    /// TEST MODE: /authorize signs this user in and approves at once, without pages. Only on
    /// loopback; for CI and local client development.
    #[arg(long, env = "OAUTH_TEST_USER")]
    pub oauth_test_user: Option<String>,

    /// Development: Client ID Metadata Document URLs may be http:// and point at loopback or
    /// private addresses.
    #[arg(long, env = "CIMD_ALLOW_PRIVATE", default_value_t = false)]
    pub cimd_allow_private: bool,

    /// Cognito user pool id (e.g. `us-east-1_AbCdEf123`).
    #[arg(long, env = "COGNITO_USER_POOL_ID")]
    pub cognito_user_pool_id: Option<String>,

    /// Cognito region. Default: AWS_REGION, then REGION_NAME.
    #[arg(long, env = "COGNITO_REGION")]
    pub cognito_region: Option<String>,

    /// Cognito app client ids whose tokens are accepted, comma-separated; the first signs
    /// people in on the login page.
    #[arg(long, env = "COGNITO_APP_CLIENT_ID", value_delimiter = ',')]
    pub cognito_app_client_id: Vec<String>,

    /// Secret of the first app client, when it has one.
    #[arg(long, env = "COGNITO_APP_SECRET")]
    #[serde(serialize_with = "mask")]
    pub cognito_app_secret: Option<String>,

    /// Identifier of this server's resource server in the pool: its custom scopes
    /// (`<id>/notes:write`) count as ours (`notes:write`); other resource servers' do not.
    #[arg(long, env = "COGNITO_RESOURCE_SERVER")]
    pub cognito_resource_server: Option<String>,

    /// The pool's JWKS. Default: https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json
    #[arg(long, env = "COGNITO_JWKS_URL")]
    pub cognito_jwks_url: Option<String>,

    /// The `iss` of the pool's tokens. Default: https://cognito-idp.<region>.amazonaws.com/<pool>
    #[arg(long, env = "COGNITO_ISSUER")]
    pub cognito_issuer: Option<String>,

    /// The Cognito IdP API the login page signs in through. Default:
    /// https://cognito-idp.<region>.amazonaws.com/
    #[arg(long, env = "COGNITO_ENDPOINT")]
    pub cognito_endpoint: Option<String>,

    /// An OpenID Connect provider the login page can hand the sign-in to (e.g. the Cognito
    /// hosted UI: https://cognito-idp.<region>.amazonaws.com/<pool>). Register
    /// <PUBLIC_URL>/authorize/callback as its redirect URI.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// Our client id at that provider.
    #[arg(long, env = "OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// Our client secret at that provider (sent with HTTP Basic).
    #[arg(long, env = "OIDC_CLIENT_SECRET")]
    #[serde(serialize_with = "mask")]
    pub oidc_client_secret: Option<String>,

    /// What the login page's button calls the provider.
    #[arg(long, env = "OIDC_NAME", default_value = "single sign-on")]
    pub oidc_name: String,

    /// Scopes asked of the provider, space-separated.
    #[arg(long, env = "OIDC_SCOPES", default_value = "openid email profile")]
    pub oidc_scopes: String,

    #[arg(long, env = "AWS_REGION", hide = true)]
    #[serde(skip)]
    pub aws_region: Option<String>,

    #[arg(long, env = "REGION_NAME", hide = true)]
    #[serde(skip)]
    pub region_name: Option<String>,

    #[command(flatten)]
    #[serde(flatten)]
    pub http_limits: HttpLimits,

    #[command(flatten)]
    #[serde(flatten)]
    pub state_limits: StateLimits,

    #[command(flatten)]
    #[serde(flatten)]
    pub auth_limits: AuthLimits,

    #[command(flatten)]
    #[serde(flatten)]
    pub functions: FunctionSettings,
}

fn mask_list<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&"***,".repeat(v.len()))
}

/// Secrets print as `"***"` (or null when unset), never as their value.
fn mask<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    #[error("max_json_depth must be between 2 and 1024, got {0}")]
    Depth(usize),
    #[error("REQUEST_STATE_KEY must be at least 32 characters")]
    ShortStateKey,
    #[error("{0} {1}")]
    Invalid(&'static str, String),
    #[error("{0} is required: {1}")]
    Missing(&'static str, &'static str),
    #[error("REDIS_PREFIX must be letters, digits, '-', '_' or '.', got {0:?}")]
    Prefix(String),
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("session_ttl_secs", self.session_ttl_secs),
            (
                "session_reap_interval_secs",
                self.session_reap_interval_secs,
            ),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("sse_keepalive_secs", self.sse_keepalive_secs),
            ("replay_buffer_events", self.replay_buffer_events as u64),
            ("replay_buffer_streams", self.replay_buffer_streams as u64),
            (
                "client_request_timeout_secs",
                self.client_request_timeout_secs,
            ),
            ("page_size", self.page_size as u64),
            ("request_state_ttl_secs", self.request_state_ttl_secs),
            ("catalog_cache_ttl_secs", self.catalog_cache_ttl_secs),
            ("redis_timeout_ms", self.redis_timeout_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        if !(2..=1024).contains(&self.max_json_depth) {
            return Err(ConfigError::Depth(self.max_json_depth));
        }
        if self
            .request_state_key
            .as_ref()
            .is_some_and(|k| k.len() < 32)
        {
            return Err(ConfigError::ShortStateKey);
        }
        if self.redis_url.is_some() && self.request_state_key.is_none() {
            // Otherwise each node seals with its own random key and refuses the others' state.
            return Err(ConfigError::Missing(
                "REQUEST_STATE_KEY",
                "REDIS_URL is set: every node of a cluster must seal requestState with the same key",
            ));
        }
        if self.redis_cluster && self.redis_url.is_none() {
            return Err(ConfigError::Missing(
                "REDIS_URL",
                "REDIS_CLUSTER is set but names no seed nodes",
            ));
        }
        if !self
            .redis_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || self.redis_prefix.is_empty()
        {
            return Err(ConfigError::Prefix(self.redis_prefix.clone()));
        }
        self.http_limits.validate()?;
        self.state_limits.validate()?;
        self.functions.validate()?;
        self.auth_limits.validate()?;
        self.validate_auth()
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let provider = self.auth();
        if provider == AuthProvider::None {
            return Ok(());
        }
        if self.any_host_sets_the_issuer() {
            // The issuer and the audience of tokens come from the Host header without
            // PUBLIC_URL: with any Host accepted, a client could have tokens minted for a name
            // it picked.
            return Err(ConfigError::Invalid(
                "ALLOWED_HOSTS",
                "is `*` while PUBLIC_URL is unset: the Host header would set the OAuth issuer; set PUBLIC_URL to the URL clients use, or list the host names in ALLOWED_HOSTS".into(),
            ));
        }
        if self.jwt_secret_key.as_ref().is_some_and(|k| k.len() < 32)
            || self.jwt_previous_keys.iter().any(|k| k.len() < 32)
        {
            return Err(ConfigError::Invalid(
                "JWT_SECRET_KEY",
                "must be at least 32 characters".into(),
            ));
        }
        if self.redis_url.is_some() && self.jwt_secret_key.is_none() {
            return Err(ConfigError::Missing(
                "JWT_SECRET_KEY",
                "REDIS_URL is set: every node of a cluster must sign tokens with the same key",
            ));
        }
        if self
            .admin_static_token
            .as_ref()
            .is_some_and(|t| t.len() < 32)
        {
            return Err(ConfigError::Invalid(
                "ADMIN_STATIC_TOKEN",
                "must be at least 32 characters".into(),
            ));
        }
        if self.oauth_test_user.is_some() && !self.host.is_loopback() {
            return Err(ConfigError::Invalid(
                "OAUTH_TEST_USER",
                "approves every sign-in without a person; it is refused unless HOST is loopback"
                    .into(),
            ));
        }
        if self.access_token_exp == 0 || self.refresh_token_exp_days == 0 {
            return Err(ConfigError::Zero(
                "access_token_exp / refresh_token_exp_days",
            ));
        }
        if self.auth_limits.oauth_client_idle_days < self.refresh_token_exp_days {
            return Err(ConfigError::Invalid(
                "OAUTH_CLIENT_IDLE_DAYS",
                format!(
                    "must be at least REFRESH_TOKEN_EXP_DAYS ({}): a client must not expire while its refresh tokens live",
                    self.refresh_token_exp_days
                ),
            ));
        }
        if let Some(u) = &self.public_url {
            let ok = url::Url::parse(u).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https") && p.path() == "/" && p.query().is_none()
            });
            if !ok {
                return Err(ConfigError::Invalid(
                    "PUBLIC_URL",
                    format!("must be an origin like https://mcp.example.com, got {u:?}"),
                ));
            }
        }
        if self.oidc_issuer.is_some() && self.oidc_client_id.is_none() {
            return Err(ConfigError::Missing("OIDC_CLIENT_ID", "OIDC_ISSUER is set"));
        }
        if provider == AuthProvider::Cognito {
            if self.cognito_app_client_id.is_empty() {
                return Err(ConfigError::Missing(
                    "COGNITO_APP_CLIENT_ID",
                    "AUTH_PROVIDER is cognito",
                ));
            }
            let derived = self.cognito_user_pool_id.is_some() && self.cognito_region().is_some();
            if !derived && (self.cognito_issuer.is_none() || self.cognito_jwks_url.is_none()) {
                return Err(ConfigError::Missing(
                    "COGNITO_USER_POOL_ID",
                    "AUTH_PROVIDER is cognito (with COGNITO_REGION, or COGNITO_ISSUER and COGNITO_JWKS_URL)",
                ));
            }
        }
        Ok(())
    }

    /// `ALLOWED_HOSTS=*` without `PUBLIC_URL`: any Host header is accepted and becomes the
    /// base URL of what the server tells clients (refused with authentication on, a warning
    /// without).
    pub fn any_host_sets_the_issuer(&self) -> bool {
        self.public_url.is_none() && self.allowed_hosts.iter().any(|h| h.trim() == "*")
    }

    /// The identity source in effect: as set, else `none` on loopback and `local` beyond.
    pub fn auth(&self) -> AuthProvider {
        match self.auth_provider {
            Some(p) => p,
            None if self.host.is_loopback() => AuthProvider::None,
            None => AuthProvider::Local,
        }
    }

    pub fn cognito_region(&self) -> Option<&str> {
        self.cognito_region
            .as_deref()
            .or(self.aws_region.as_deref())
            .or(self.region_name.as_deref())
    }

    /// The public URL without its trailing slash, scheme and host lowercased.
    pub fn canonical_public_url(&self) -> Option<String> {
        let u = url::Url::parse(self.public_url.as_deref()?).ok()?;
        Some(u.origin().ascii_serialization())
    }

    /// Parses `args` (the program name first) as the command line, reading no environment
    /// variable: what tests and `defaults` use, so a variable set on the machine running them
    /// cannot change what they test. Exits with clap's message on bad flags, like `parse`.
    pub fn from_flags<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command_without_env().get_matches_from(args);
        Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    fn command_without_env() -> clap::Command {
        Config::command().mut_args(|a| a.env(None))
    }

    /// Every documented default, with no environment variable read.
    pub fn defaults() -> Self {
        Config::from_flags(["mcp-daemon"])
    }

    /// A config for tests: the defaults (hermetic: no environment variable is read) on
    /// loopback, port 0, the embedded demo catalog, quiet.
    pub fn for_test() -> Self {
        let mut c = Config::defaults();
        c.port = 0;
        c.log_level = "warn".into();
        c
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    /// The Redis URLs to connect to (one, or a cluster's seed nodes), if Redis is configured.
    pub fn redis_urls(&self) -> Option<Vec<String>> {
        let raw = self.redis_url.as_deref()?;
        Some(
            raw.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    /// The effective configuration as JSON for `check-config`, secrets masked.
    pub fn effective(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure_and_valid() {
        let c = Config::from_flags(["mcp-daemon"]);
        assert_eq!(c.host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.port, 8000);
        assert_eq!(c.session_ttl_secs, 3600);
        assert_eq!(c.transport, TransportMode::Http);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn flags_parse_and_validation_refuses_zeroes() {
        let c = Config::from_flags([
            "mcp-daemon",
            "--transport",
            "stdio",
            "--allowed-hosts",
            "a.example,b.example",
        ]);
        assert_eq!(c.transport, TransportMode::Stdio);
        assert_eq!(c.allowed_hosts, vec!["a.example", "b.example"]);
        let mut c = Config::for_test();
        c.page_size = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("page_size")));
        c.page_size = 1;
        c.max_json_depth = 1;
        assert_eq!(c.validate(), Err(ConfigError::Depth(1)));
    }

    #[test]
    fn unsafe_auth_settings_stop_start_up_and_secrets_are_masked() {
        let c = Config::from_flags([
            "mcp-daemon",
            "--auth-provider",
            "local",
            "--jwt-secret-key",
            "hunter2",
        ]);
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("JWT_SECRET_KEY") && err.contains("32"),
            "{err}"
        );
        let shown = c.effective().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(c.effective()["jwt_secret_key"], "***");
        let c = Config::from_flags(["mcp-daemon", "--redis-url", "redis://10.0.0.1"]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("REQUEST_STATE_KEY"), "{err}");
        let key = "k".repeat(32);
        let ok = Config::from_flags([
            "mcp-daemon",
            "--redis-url",
            "redis://a:1, redis://b:2",
            "--redis-cluster",
            "--request-state-key",
            &key,
        ]);
        assert!(ok.validate().is_ok());
        assert_eq!(ok.redis_urls().unwrap(), vec!["redis://a:1", "redis://b:2"]);
        let mut bad = Config::for_test();
        bad.redis_prefix = "a b".into();
        assert!(bad.validate().is_err());
        assert_eq!(
            c.effective()["redis_url"],
            "***",
            "URLs may embed passwords"
        );
    }

    #[test]
    fn auth_defaults_follow_the_listen_address() {
        let local = Config::from_flags(["mcp-daemon"]);
        assert_eq!(local.auth(), AuthProvider::None, "loopback demo stays open");
        let public = Config::from_flags(["mcp-daemon", "--host", "0.0.0.0"]);
        assert_eq!(
            public.auth(),
            AuthProvider::Local,
            "reachable means authenticated"
        );
        let explicit =
            Config::from_flags(["mcp-daemon", "--host", "0.0.0.0", "--auth-provider", "none"]);
        assert_eq!(
            explicit.auth(),
            AuthProvider::None,
            "set explicitly, it wins"
        );
        let key = "k".repeat(32);
        let cluster = Config::from_flags([
            "mcp-daemon",
            "--host",
            "0.0.0.0",
            "--redis-url",
            "redis://r",
            "--request-state-key",
            &key,
        ]);
        let err = cluster.validate().unwrap_err().to_string();
        assert!(
            err.contains("JWT_SECRET_KEY"),
            "a cluster needs one shared key: {err}"
        );
        let test_mode = Config::from_flags([
            "mcp-daemon",
            "--host",
            "0.0.0.0",
            "--oauth-test-user",
            "admin",
        ]);
        assert!(test_mode.validate().is_err(), "test mode only on loopback");
        let cognito = Config::from_flags(["mcp-daemon", "--auth-provider", "cognito"]);
        assert!(cognito.validate().is_err());
        let bad_url = Config::from_flags([
            "mcp-daemon",
            "--auth-provider",
            "local",
            "--public-url",
            "https://a.example/mcp",
        ]);
        assert!(bad_url.validate().is_err());
    }

    #[test]
    fn tests_read_no_environment_variable() {
        let cmd = Config::command_without_env();
        let with_env: Vec<_> = cmd
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .map(|a| a.get_id().to_string())
            .collect();
        assert!(
            with_env.is_empty(),
            "still read from the environment: {with_env:?}"
        );
        let read = Config::command()
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .count();
        assert!(
            read > 40,
            "the real command line reads its variables ({read})"
        );
    }

    #[test]
    fn any_host_without_public_url_is_refused_with_auth_on() {
        let c = Config::from_flags([
            "mcp-daemon",
            "--auth-provider",
            "local",
            "--allowed-hosts",
            "*",
        ]);
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("ALLOWED_HOSTS") && err.contains("PUBLIC_URL"),
            "{err}"
        );
        let with_url = Config::from_flags([
            "mcp-daemon",
            "--auth-provider",
            "local",
            "--allowed-hosts",
            "*",
            "--public-url",
            "https://mcp.example.com",
        ]);
        assert!(with_url.validate().is_ok());
        let no_auth = Config::from_flags(["mcp-daemon", "--allowed-hosts", "*"]);
        assert!(
            no_auth.validate().is_ok(),
            "auth off: a warning at start-up"
        );
        assert!(no_auth.any_host_sets_the_issuer());
    }

    #[test]
    fn check_config_subcommand_parses() {
        let c = Config::from_flags(["mcp-daemon", "check-config"]);
        assert_eq!(c.command, Some(Command::CheckConfig));
    }
}
