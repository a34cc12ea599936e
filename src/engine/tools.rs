//! `tools/list` and `tools/call` (spec server/tools): argument validation against the input
//! schema, cancellation, and shaping a function's output into a `CallToolResult`.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Call, Engine, pagination, str_param};
use crate::catalog::{Catalog, ToolDef};
use crate::protocol::{ProtocolVersion, Request, RpcError};
use crate::runtime::{FunctionError, Output};

pub fn list(
    catalog: &Catalog,
    params: &Value,
    page_size: usize,
    version: Option<ProtocolVersion>,
) -> Result<Value, RpcError> {
    let structured = version.is_none_or(ProtocolVersion::has_structured_output);
    let items: Vec<Value> = catalog
        .tools
        .iter()
        .map(|t| {
            let mut listing = t.listing.clone();
            if !structured && let Some(obj) = listing.as_object_mut() {
                // Older revisions have no outputSchema/title in their Tool schema.
                obj.remove("outputSchema");
                obj.remove("title");
            }
            listing
        })
        .collect();
    pagination::page(&items, params, page_size, "tools")
}

pub async fn call(
    engine: &Engine,
    catalog: &Catalog,
    call: &Call,
    req: &Request,
    params: &Value,
    cancel: &CancellationToken,
) -> Result<Value, RpcError> {
    let name = str_param(params, "name")?;
    let tool = catalog
        .tool(name)
        .ok_or_else(|| RpcError::invalid_params(format!("Unknown tool: {name}")))?;
    let args = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "Invalid params: 'arguments' must be an object",
            ));
        }
    };
    if let Some(problems) = validate(tool, &args) {
        return Ok(error_result(&format!(
            "Invalid arguments for tool {name}: {problems}"
        )));
    }
    let ctx = engine.ctx(call, req, cancel, name, &tool.setting)?;
    let output = tool.function.call(ctx.clone(), args).await;
    if let Some(outcome) = engine.client_outcome(call, req, name, &ctx, &output) {
        return outcome;
    }
    Ok(shape(tool, output))
}

/// All schema violations as one readable line, or `None` when the arguments are valid.
fn validate(tool: &ToolDef, args: &Value) -> Option<String> {
    let validator = tool.validator.as_ref()?;
    let problems: Vec<String> = validator
        .iter_errors(args)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

fn shape(tool: &ToolDef, output: Result<Output, FunctionError>) -> Value {
    let result = match output {
        Err(e) => return error_result(&e.to_string()),
        Ok(Output::Text(t)) => json!({"content": [{"type": "text", "text": t}]}),
        Ok(Output::Content(items)) => json!({"content": items}),
        Ok(Output::Json(v)) => {
            json!({"content": [{"type": "text", "text": v.to_string()}], "structuredContent": v})
        }
        Ok(Output::Result(v)) => v,
    };
    let Some(validator) = &tool.output_validator else {
        return result;
    };
    // The spec requires structured results to conform to the declared outputSchema.
    match result.get("structuredContent") {
        Some(sc) if result.get("isError") != Some(&Value::Bool(true)) => {
            if validator.is_valid(sc) {
                result
            } else {
                tracing::error!(tool = %tool.name, "tool output does not match its outputSchema");
                error_result(&format!(
                    "tool {} produced output that does not match its outputSchema",
                    tool.name
                ))
            }
        }
        Some(_) => result,
        None if result.get("isError") == Some(&Value::Bool(true)) => result,
        None => error_result(&format!(
            "tool {} declares an outputSchema but returned no structured content",
            tool.name
        )),
    }
}
