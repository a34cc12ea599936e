//! Bus topics the engine publishes on and what their messages look like.

/// Catalog-wide events: `{"type": "tools_changed" | "resources_changed" | "prompts_changed"}`,
/// `{"type": "resource_updated", "uri": ...}` and `{"type": "config_reload"}` (every node
/// re-reads its config file, then tells its own clients what changed).
pub const CATALOG: &str = "catalog";

/// Messages for every node: `cancel`, `session_ended`, `get_stream` (see `cluster.rs`).
pub const CONTROL: &str = "control";

/// Notifications for one session's own stream: `{"type": "notify", "message": ...}`.
pub fn session(id: &crate::state::SessionId) -> String {
    format!("session:{id}")
}

/// Messages for one node: answers to the server-to-client requests it sent.
pub fn node(id: &str) -> String {
    format!("node:{id}")
}
