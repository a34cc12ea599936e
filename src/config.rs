//! Configuration from flags and environment variables (every setting has both, and a default).
//! `Config::validate` refuses combinations that cannot work; `Config::for_test` is what tests
//! start servers with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
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

    /// Authentication provider (local|cognito). Not in this build yet: setting it stops
    /// start-up rather than serving unauthenticated.
    #[arg(long, env = "AUTH_PROVIDER")]
    pub auth_provider: Option<String>,

    /// Signing key for local JWTs. Not in this build yet: setting it stops start-up.
    #[arg(long, env = "JWT_SECRET_KEY")]
    #[serde(serialize_with = "mask")]
    pub jwt_secret_key: Option<String>,

    /// Static admin bearer token. Not in this build yet: setting it stops start-up.
    #[arg(long, env = "ADMIN_STATIC_TOKEN")]
    #[serde(serialize_with = "mask")]
    pub admin_static_token: Option<String>,
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
    #[error("{0} is set, but {1}; unset it to start")]
    NotAvailable(&'static str, &'static str),
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
        // Settings of features this build lacks: an operator who sets them expects
        // authentication, so running without would be worse than not running.
        let unavailable = [
            (
                "AUTH_PROVIDER",
                self.auth_provider.is_some(),
                "this build has no authentication yet and would serve everyone",
            ),
            (
                "JWT_SECRET_KEY",
                self.jwt_secret_key.is_some(),
                "this build has no authentication yet and would serve everyone",
            ),
            (
                "ADMIN_STATIC_TOKEN",
                self.admin_static_token.is_some(),
                "this build has no admin API yet",
            ),
        ];
        if let Some((name, _, why)) = unavailable.iter().find(|(_, set, _)| *set) {
            return Err(ConfigError::NotAvailable(name, why));
        }
        Ok(())
    }

    /// A config for tests: loopback, port 0, the embedded demo catalog, quiet.
    pub fn for_test() -> Self {
        // Parsing an empty command line yields every documented default.
        let mut c = Config::parse_from(["mcp-daemon"]);
        c.port = 0;
        c.host = IpAddr::from([127, 0, 0, 1]);
        c.config_file = None;
        c.allowed_hosts = Vec::new();
        c.allowed_origins = Vec::new();
        c.log_level = "warn".into();
        c.redis_url = None;
        c.request_state_key = None;
        c.auth_provider = None;
        c.jwt_secret_key = None;
        c.admin_static_token = None;
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
        let c = Config::parse_from(["mcp-daemon"]);
        assert_eq!(c.host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.port, 8000);
        assert_eq!(c.session_ttl_secs, 3600);
        assert_eq!(c.transport, TransportMode::Http);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn flags_parse_and_validation_refuses_zeroes() {
        let c = Config::parse_from([
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
    fn unavailable_features_stop_start_up_and_secrets_are_masked() {
        let c = Config::parse_from([
            "mcp-daemon",
            "--auth-provider",
            "local",
            "--jwt-secret-key",
            "hunter2",
        ]);
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("AUTH_PROVIDER") && err.contains("would serve everyone"),
            "{err}"
        );
        let shown = c.effective().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(c.effective()["jwt_secret_key"], "***");
        let c = Config::parse_from(["mcp-daemon", "--redis-url", "redis://10.0.0.1"]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("REQUEST_STATE_KEY"), "{err}");
        let key = "k".repeat(32);
        let ok = Config::parse_from([
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
    fn check_config_subcommand_parses() {
        let c = Config::parse_from(["mcp-daemon", "check-config"]);
        assert_eq!(c.command, Some(Command::CheckConfig));
    }
}
