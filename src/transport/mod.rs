//! Transports: bytes and headers in, engine calls, bytes out. Thin by design; MCP semantics
//! live in `engine`.
//!
//! - `streamable_http` — `/mcp` (POST/GET/DELETE, sessions, SSE, Last-Event-ID replay)
//! - `legacy_sse` — `/sse` + `/messages` (2024-11-05 HTTP+SSE)
//! - `plain_http` — `/http` (one JSON-RPC message in, one JSON response out)
//! - `stdio` — newline-delimited JSON-RPC on stdin/stdout
//! - `server` — the connection server under them all (deadlines, connection cap, shutdown)

pub mod http;
pub mod http_error;
pub mod legacy_sse;
pub mod plain_http;
pub mod server;
pub mod sse;
pub mod stdio;
pub mod streamable_http;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::oauth::AuthServer;
use crate::engine::Engine;
use crate::ops::origin::OriginPolicy;

/// Limits and timings the HTTP transports apply.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    pub sse_keepalive: Duration,
    pub sse_retry_ms: u64,
    pub origin_policy: OriginPolicy,
    /// Connection limits and deadlines of the server under the router.
    pub server: server::ServerLimits,
}

/// What every HTTP handler gets: cheap to clone, `Arc`s only.
#[derive(Clone)]
pub struct HttpState {
    pub engine: Arc<Engine>,
    pub settings: Arc<HttpSettings>,
    /// Authentication: the bearer guard and the built-in authorization server.
    pub auth: Arc<AuthServer>,
}
