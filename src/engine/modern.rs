//! The stateless era (MCP 2026-07-28): per-request `_meta` instead of a session, the methods it
//! serves, `server/discover`, and the fields every result carries (`resultType`, server info,
//! caching hints).

use serde_json::{Map, Value, json};

use super::Engine;
use crate::protocol::{RpcError, codes};
use crate::state::LogLevel;

/// Stateless-era revisions this server speaks.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// How long clients may cache list results; `list_changed` tells them earlier.
const LIST_TTL_MS: u64 = 60_000;

pub fn is_modern_version(v: &str) -> bool {
    MODERN_VERSIONS.contains(&v)
}

/// Whether a request's params carry stateless-era `_meta`.
pub fn has_modern_meta(params: Option<&Value>) -> bool {
    params
        .and_then(|p| p.get("_meta"))
        .is_some_and(|m| m.get(META_PROTOCOL_VERSION).is_some())
}

/// What a stateless request says about its client, read from `params._meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModernMeta {
    pub version: String,
    pub client_capabilities: Value,
    /// Log notifications are sent only when the request asks for them with a level.
    pub log_level: Option<LogLevel>,
}

impl ModernMeta {
    /// Missing fields are -32602; an unsupported version is -32022 with the supported list.
    pub fn from_params(params: Option<&Value>) -> Result<Self, RpcError> {
        let meta = params.and_then(|p| p.get("_meta")).ok_or_else(|| {
            RpcError::invalid_params(
                "Invalid params: _meta with protocol version and client capabilities is required",
            )
        })?;
        let version = meta
            .get(META_PROTOCOL_VERSION)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "Invalid params: _meta[\"{META_PROTOCOL_VERSION}\"] is required"
                ))
            })?;
        if !is_modern_version(version) {
            return Err(unsupported_version(version));
        }
        let client_capabilities = meta
            .get(META_CLIENT_CAPABILITIES)
            .filter(|c| c.is_object())
            .cloned()
            .ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "Invalid params: _meta[\"{META_CLIENT_CAPABILITIES}\"] must be an object"
                ))
            })?;
        let log_level = match meta.get(META_LOG_LEVEL) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().and_then(LogLevel::parse).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "Invalid params: _meta[\"{META_LOG_LEVEL}\"] is not a log level"
                ))
            })?),
        };
        Ok(Self {
            version: version.to_string(),
            client_capabilities,
            log_level,
        })
    }

    pub fn client_supports(&self, capability: &str) -> bool {
        self.client_capabilities
            .get(capability)
            .is_some_and(|v| !v.is_null())
    }
}

/// The version `_meta` names, once both required `_meta` fields are present (-32602 otherwise).
/// Whether the version is supported is checked later, after the header comparison.
pub fn declared_version(params: Option<&Value>) -> Result<&str, RpcError> {
    let meta = params.and_then(|p| p.get("_meta"));
    let version = meta
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let caps = meta
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
        .filter(|c| c.is_object());
    match (version, caps) {
        (Some(v), Some(_)) => Ok(v),
        (None, _) => Err(RpcError::invalid_params(format!(
            "Invalid params: _meta[\"{META_PROTOCOL_VERSION}\"] is required"
        ))),
        (Some(_), None) => Err(RpcError::invalid_params(format!(
            "Invalid params: _meta[\"{META_CLIENT_CAPABILITIES}\"] must be an object"
        ))),
    }
}

pub fn unsupported_version(requested: &str) -> RpcError {
    RpcError::new(
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        format!("Unsupported protocol version: {requested}"),
    )
    .with_data(json!({"supported": MODERN_VERSIONS, "requested": requested}))
}

/// Methods the stateless era serves (others, including `initialize`, `ping`,
/// `logging/setLevel` and `resources/subscribe`, are -32601 there).
pub fn serves(method: &str) -> bool {
    matches!(
        method,
        "server/discover"
            | "tools/list"
            | "tools/call"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/list"
            | "prompts/get"
            | "completion/complete"
            | "subscriptions/listen"
            | "tasks/get"
            | "tasks/update"
            | "tasks/cancel"
    )
}

impl Engine {
    pub fn server_info(&self) -> Value {
        json!({"name": self.settings.server_name, "version": self.settings.server_version})
    }

    pub(super) fn capabilities(&self) -> Value {
        json!({
            "tools": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "prompts": {"listChanged": true},
            "logging": {},
            "completions": {},
        })
    }

    /// `server/discover` (MCP 2026-07-28 server/discover).
    pub(super) fn discover(&self, catalog: &crate::catalog::Catalog) -> Value {
        let mut capabilities = self.capabilities();
        capabilities["extensions"] = json!({super::tasks::EXTENSION: {}});
        let mut result = json!({
            "supportedVersions": MODERN_VERSIONS,
            "capabilities": capabilities,
        });
        if let Some(text) = &catalog.instructions {
            result["instructions"] = json!(text);
        }
        result
    }

    /// Adds what every stateless-era result carries.
    pub(super) fn decorate(&self, method: &str, result: &mut Value) {
        let Some(obj) = result.as_object_mut() else {
            return;
        };
        obj.entry("resultType").or_insert_with(|| json!("complete"));
        let meta = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(META_SERVER_INFO.into(), self.server_info());
        }
        let cache = match method {
            "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "server/discover" => Some((LIST_TTL_MS, "public")),
            // Contents may depend on the caller: never shared, not reused without asking.
            "resources/read" => Some((0, "private")),
            _ => None,
        };
        if let Some((ttl, scope)) = cache {
            obj.insert("ttlMs".into(), json!(ttl));
            obj.insert("cacheScope".into(), json!(scope));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(meta: Value) -> Value {
        json!({"_meta": meta})
    }

    #[test]
    fn reads_meta_and_reports_what_is_missing() {
        let ok = ModernMeta::from_params(Some(&params(json!({
            META_PROTOCOL_VERSION: "2026-07-28", META_CLIENT_CAPABILITIES: {"sampling": {}}, META_LOG_LEVEL: "info"
        }))))
        .unwrap();
        assert!(ok.client_supports("sampling") && !ok.client_supports("roots"));
        assert_eq!(ok.log_level, Some(LogLevel::Info));
        let e =
            ModernMeta::from_params(Some(&params(json!({META_PROTOCOL_VERSION: "2026-07-28"}))))
                .unwrap_err();
        assert_eq!(e.code, codes::INVALID_PARAMS);
        let e = ModernMeta::from_params(Some(&params(
            json!({META_PROTOCOL_VERSION: "2099-01-01", META_CLIENT_CAPABILITIES: {}}),
        )))
        .unwrap_err();
        assert_eq!(e.code, codes::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(e.data.unwrap()["supported"], json!(["2026-07-28"]));
        assert!(ModernMeta::from_params(None).is_err());
    }
}
