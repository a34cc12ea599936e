//! Admin endpoints: the original daemon's cache routes (`cache.rs`); the GraphQL admin API
//! joins them here. Every handler answers 403 to callers who are not admins.

pub mod cache;
