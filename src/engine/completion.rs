//! `completion/complete` (spec server/utilities/completion): prompt arguments complete from
//! the values the config lists for them, filtered by the typed prefix.

use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::protocol::RpcError;

/// The spec caps one completion answer at 100 values.
const MAX_VALUES: usize = 100;

pub fn complete(catalog: &Catalog, params: &Value) -> Result<Value, RpcError> {
    let reference = params
        .get("ref")
        .ok_or_else(|| RpcError::invalid_params("Invalid params: 'ref' is required"))?;
    let arg_name = params
        .pointer("/argument/name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RpcError::invalid_params("Invalid params: 'argument.name' must be a string")
        })?;
    let prefix = params
        .pointer("/argument/value")
        .and_then(Value::as_str)
        .unwrap_or("");
    let candidates: Vec<&String> = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
            let prompt = catalog
                .prompt(name)
                .ok_or_else(|| RpcError::invalid_params(format!("Unknown prompt: {name}")))?;
            let arg = prompt
                .arguments
                .iter()
                .find(|a| a.name == arg_name)
                .ok_or_else(|| {
                    RpcError::invalid_params(format!("Prompt {name} has no argument '{arg_name}'"))
                })?;
            arg.completions
                .iter()
                .filter(|v| v.starts_with(prefix))
                .collect()
        }
        Some("ref/resource") => {
            let uri = reference.get("uri").and_then(Value::as_str).unwrap_or("");
            let known = catalog
                .templates
                .iter()
                .any(|t| t.listing.get("uriTemplate").and_then(Value::as_str) == Some(uri))
                || catalog.resource(uri).is_some();
            if !known {
                return Err(RpcError::invalid_params(format!(
                    "Unknown resource template: {uri}"
                )));
            }
            Vec::new()
        }
        _ => {
            return Err(RpcError::invalid_params(
                "Invalid params: 'ref.type' must be ref/prompt or ref/resource",
            ));
        }
    };
    let total = candidates.len();
    let values: Vec<&String> = candidates.into_iter().take(MAX_VALUES).collect();
    Ok(json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_VALUES}}))
}
