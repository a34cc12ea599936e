//! JSON-RPC and MCP error codes, named once so every module uses the same numbers.

/// Invalid JSON was received (JSON-RPC 2.0).
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object (JSON-RPC 2.0).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available (JSON-RPC 2.0).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters; MCP also uses it for unknown tools and prompts.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error (JSON-RPC 2.0); the message never carries internals.
pub const INTERNAL_ERROR: i64 = -32603;
/// Transport-level failure that is not about a session (de-facto, TS SDK: "Bad Request").
pub const SERVER_ERROR: i64 = -32000;
/// Unknown or expired `Mcp-Session-Id` (de-facto body of the 404 the spec requires).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// Legacy-era "resource not found" (MCP 2025-11-25 server/resources).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// The request was cancelled before it finished.
pub const REQUEST_CANCELLED: i64 = -32800;
/// Stateless era: a header disagrees with the body (MCP 2026-07-28).
pub const HEADER_MISMATCH: i64 = -32020;
/// Stateless era: the request needs a client capability it did not declare.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// Stateless era: the requested protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
