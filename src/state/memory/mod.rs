//! In-memory state for a single node: the embedded default when no Redis is configured.

mod auth_store;
mod bus;
mod event_log;
mod session_store;

pub use auth_store::MemoryAuthStore;
pub use bus::MemoryBus;
pub use event_log::{EventLogLimits, MemoryEventLog};
pub use session_store::MemorySessionStore;
