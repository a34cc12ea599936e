//! `initialize`: version negotiation (spec 2025-11-25 basic/lifecycle) and the capabilities we
//! advertise — only what is implemented.

use serde_json::{Value, json};

use super::Engine;
use crate::auth::Principal;
use crate::catalog::Catalog;
use crate::protocol::{PartitionKey, ProtocolVersion, RpcError, codes};
use crate::state::{JsonText, SessionRecord, StateError, TransportKind};

/// What `initialize` settled, for the transport to store in the session.
pub struct Negotiated {
    pub version: ProtocolVersion,
    /// As declared, compact and within `SessionLimits::max_client_metadata_bytes`.
    pub client_info: JsonText,
    pub client_capabilities: JsonText,
    pub result: Value,
}

impl Negotiated {
    /// Records what was negotiated in the session (new, or a legacy SSE session that opened
    /// before `initialize`).
    pub fn apply(&self, session: &mut SessionRecord) {
        session.protocol_version = Some(self.version);
        session.client_info = self.client_info.clone();
        session.client_capabilities = self.client_capabilities.clone();
    }
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OpenSessionError {
    /// The caller holds as many sessions as it may (`MAX_SESSIONS_PER_USER`, or
    /// `MAX_ANONYMOUS_SESSIONS` for unauthenticated callers together).
    #[error(transparent)]
    TooMany(RpcError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl Engine {
    /// Answers `initialize` in `partition` (its catalog's instructions): echoes a supported
    /// requested version, otherwise offers the latest.
    pub async fn negotiate(
        &self,
        partition: &PartitionKey,
        params: &Value,
    ) -> Result<Negotiated, RpcError> {
        let catalog = self.catalog(partition).await?;
        self.negotiate_in(&catalog, params)
    }

    pub(super) fn negotiate_in(
        &self,
        catalog: &Catalog,
        params: &Value,
    ) -> Result<Negotiated, RpcError> {
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
        let limit = self.settings.limits.max_client_metadata_bytes;
        let client_capabilities = bounded_json("capabilities", &client_capabilities, limit)?;
        let client_info = bounded_json(
            "clientInfo",
            params.get("clientInfo").unwrap_or(&Value::Null),
            limit,
        )?;
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
        if let Some(text) = &catalog.instructions {
            result["instructions"] = json!(text);
        }
        Ok(Negotiated {
            version,
            client_info,
            client_capabilities,
            result,
        })
    }

    /// Creates and stores a session for `principal` in `partition`, with what `initialize` settled when it
    /// came first (a legacy SSE session opens before it). Refused when the caller already holds
    /// its cap of live sessions: per user when authenticated; unauthenticated callers share one
    /// cap, since without a user the only other key would be a source address, which a proxy
    /// hides and loopback shares.
    pub async fn open_session(
        &self,
        principal: &Principal,
        partition: &PartitionKey,
        transport: TransportKind,
        negotiated: Option<&Negotiated>,
    ) -> Result<SessionRecord, OpenSessionError> {
        let mut record =
            SessionRecord::new(&principal.subject, transport, self.backends.clock.now_ms());
        record.partition = partition.clone();
        if let Some(n) = negotiated {
            n.apply(&mut record);
        }
        let limits = &self.settings.limits;
        let (limit, setting) = if principal.authenticated {
            (limits.max_sessions_per_user, "MAX_SESSIONS_PER_USER")
        } else {
            (limits.max_anonymous_sessions, "MAX_ANONYMOUS_SESSIONS")
        };
        if !self.backends.sessions.create(record.clone(), limit).await? {
            let who = if principal.authenticated {
                "this user holds"
            } else {
                "unauthenticated clients hold"
            };
            return Err(OpenSessionError::TooMany(RpcError::new(
                codes::SERVER_ERROR,
                format!(
                    "Too many sessions: {who} {limit} live sessions, the limit ({setting}); \
                     end one with DELETE or wait for one to expire"
                ),
            )));
        }
        Ok(record)
    }
}

/// `value` as compact JSON text, refused (-32602, naming the limit) when longer than `limit`
/// bytes: it is kept with the session for the session's whole life.
fn bounded_json(name: &str, value: &Value, limit: usize) -> Result<JsonText, RpcError> {
    let text = JsonText::from_value(value);
    if text.len() > limit {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: '{name}' is {} bytes of JSON, more than the limit of {limit} \
             (MAX_CLIENT_METADATA_BYTES)",
            text.len()
        )));
    }
    Ok(text)
}
