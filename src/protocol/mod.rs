//! The wire: JSON-RPC 2.0 envelopes, MCP protocol versions and the error codes the spec names.
//! Nothing here knows about HTTP, sessions or functions.

pub mod codes;
pub mod jsonrpc;
pub mod version;

pub use jsonrpc::{Incoming, Message, Notification, Request, RequestId, Response, RpcError};
pub use version::ProtocolVersion;
