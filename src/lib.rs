//! mcp-daemon: a Model Context Protocol server.
//!
//! Layout (data flows top to bottom; nothing calls upward):
//! - `admin` — admin endpoints: the cache routes of the original daemon.
//! - `transport` — streamable HTTP, legacy HTTP+SSE, plain HTTP and stdio: bytes <-> messages.
//! - `auth` — who is calling (`Principal`).
//! - `engine` — MCP semantics: lifecycle, tools, resources, prompts, completion, logging,
//!   progress, cancellation, server-to-client requests.
//! - `catalog` — which tools/resources/prompts exist per partition, from the config file,
//!   cached per partition and purged when definitions change on any node.
//! - `runtime` — how one function runs (`Function`); builtin Rust modules.
//! - `state` — `SessionStore`, `EventLog`, `Bus` and their in-memory implementations.
//! - `store` — `CatalogStore`: functions, modules, settings, call history, versions and audit
//!   per partition, in SQLite (embedded default) or DynamoDB.
//! - `ops` — Host/Origin checks, health, telemetry.
//! - `config`, `clock`, `app` — configuration, time, and the wiring that builds the server.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod blob;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod engine;
pub mod ops;
pub mod protocol;
pub mod runtime;
pub mod state;
pub mod store;
pub mod transport;
