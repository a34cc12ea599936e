//! `prompts/list` and `prompts/get` (spec server/prompts): unknown names and missing required
//! arguments are -32602.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::invoke::Invocation;
use super::{Call, Engine, pagination, str_param};
use crate::catalog::Catalog;
use crate::protocol::{Request, RpcError};
use crate::runtime::{FunctionError, Output};

pub fn list(catalog: &Catalog, params: &Value, page_size: usize) -> Result<Value, RpcError> {
    let items: Vec<Value> = catalog.prompts.iter().map(|p| p.listing.clone()).collect();
    pagination::page(&items, params, page_size, "prompts")
}

pub async fn get(
    engine: &Engine,
    catalog: &Catalog,
    call: &Call,
    req: &Request,
    params: &Value,
    cancel: &CancellationToken,
) -> Result<Value, RpcError> {
    let name = str_param(params, "name")?;
    let prompt = catalog
        .prompt(name)
        .ok_or_else(|| RpcError::invalid_params(format!("Unknown prompt: {name}")))?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Value::Object(m.clone()),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "Invalid params: 'arguments' must map names to strings",
            ));
        }
    };
    if let Some(missing) = prompt
        .arguments
        .iter()
        .find(|a| a.required && args.get(&a.name).is_none())
    {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: missing required argument '{}' for prompt {name}",
            missing.name
        )));
    }
    let inv = Invocation { call, req, cancel };
    let output = match engine.invoke(&inv, name, &prompt.binding, args).await {
        Ok(output) => output,
        Err(answer) => return answer,
    };
    let output = output.map_err(|e| match e {
        FunctionError::Rpc(e) => e,
        e => RpcError::internal(format!("Prompt {name} failed: {e}")),
    })?;
    let user = |content: Value| json!({"role": "user", "content": content});
    let mut result = match output {
        Output::Text(t) => json!({"messages": [user(json!({"type": "text", "text": t}))]}),
        Output::Json(v) => {
            json!({"messages": [user(json!({"type": "text", "text": v.to_string()}))]})
        }
        Output::Content(items) => {
            json!({"messages": items.into_iter().map(user).collect::<Vec<_>>()})
        }
        Output::Result(v) => v,
    };
    if result.get("description").is_none()
        && let Some(d) = prompt.listing.get("description")
    {
        result["description"] = d.clone();
    }
    Ok(result)
}
