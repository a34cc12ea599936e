//! Streamable HTTP (spec 2025-03-26 … 2025-11-25 basic/transports): one endpoint, POST for
//! client messages, GET for the session's own stream, DELETE to end the session.

mod delete;
mod exchange;
mod get;
mod listen;
mod modern;
mod post;

pub use delete::mcp_delete;
pub use get::mcp_get;
pub use post::mcp_post;
