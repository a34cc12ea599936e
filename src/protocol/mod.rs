//! The wire: JSON-RPC 2.0 envelopes, MCP protocol versions, the error codes the spec names, and
//! the partition key a request belongs to, and the URL layout that names both. Nothing here knows about HTTP, sessions or functions.

pub mod codes;
pub mod endpoint;
pub mod jsonrpc;
pub mod partition;
pub mod version;

pub use endpoint::{Endpoint, PathKind};
pub use jsonrpc::{Incoming, Message, Notification, Request, RequestId, Response, RpcError};
pub use partition::{PartitionError, PartitionKey};
pub use version::ProtocolVersion;
