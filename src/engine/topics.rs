//! Bus topics the engine publishes on and what their messages look like.

/// Catalog-wide events: `{"type": "tools_changed" | "resources_changed" | "prompts_changed"}`
/// and `{"type": "resource_updated", "uri": ...}`.
pub const CATALOG: &str = "catalog";
