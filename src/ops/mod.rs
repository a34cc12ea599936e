//! Operational concerns around the MCP traffic: Host/Origin validation (DNS-rebinding
//! protection), health, and logging set-up.

pub mod origin;
pub mod telemetry;
