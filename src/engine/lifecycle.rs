//! `initialize`: version negotiation (spec 2025-11-25 basic/lifecycle) and the capabilities we
//! advertise — only what is implemented.

use serde_json::{Value, json};

use super::Engine;
use crate::protocol::{ProtocolVersion, RpcError};
use crate::state::{JsonText, SessionRecord};

/// What `initialize` settled, for the transport to store in the session.
pub struct Negotiated {
    pub version: ProtocolVersion,
    pub client_info: Value,
    pub client_capabilities: Value,
    pub result: Value,
}

impl Negotiated {
    /// Records what was negotiated in the session (new, or a legacy SSE session that opened
    /// before `initialize`).
    pub fn apply(&self, session: &mut SessionRecord) {
        session.protocol_version = Some(self.version);
        session.client_info = JsonText::from_value(&self.client_info);
        session.client_capabilities = JsonText::from_value(&self.client_capabilities);
    }
}

impl Engine {
    /// Answers `initialize`: echoes a supported requested version, otherwise offers the latest.
    pub fn negotiate(&self, params: &Value) -> Result<Negotiated, RpcError> {
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::invalid_params("Invalid params: 'protocolVersion' must be a string")
            })?;
        let version = ProtocolVersion::parse(requested).unwrap_or(ProtocolVersion::LATEST);
        let client_capabilities = params
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if !client_capabilities.is_object() {
            return Err(RpcError::invalid_params(
                "Invalid params: 'capabilities' must be an object",
            ));
        }
        let client_info = params.get("clientInfo").cloned().unwrap_or(Value::Null);
        let mut result = json!({
            "protocolVersion": version.as_str(),
            "capabilities": {
                "tools": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {"listChanged": true},
                "logging": {},
                "completions": {},
            },
            "serverInfo": {"name": self.settings.server_name, "version": self.settings.server_version},
        });
        if let Some(text) = &self.catalog().instructions {
            result["instructions"] = json!(text);
        }
        Ok(Negotiated {
            version,
            client_info,
            client_capabilities,
            result,
        })
    }
}
