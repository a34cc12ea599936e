//! `tools/list` and `tools/call` (spec server/tools): argument validation against the input
//! schema, cancellation, and shaping a function's output into a `CallToolResult`.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::invoke::Invocation;
use super::{Call, Engine, pagination, str_param};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::tasks;
use crate::auth::Principal;
use crate::catalog::{Catalog, TaskSupport, ToolDef};
use crate::protocol::{ProtocolVersion, Request, RpcError};
use crate::runtime::{ClientRequestError, TaskLink};
use crate::runtime::{FunctionError, Output};

pub fn list(
    catalog: &Catalog,
    principal: &Principal,
    params: &Value,
    page_size: usize,
    version: Option<ProtocolVersion>,
) -> Result<Value, RpcError> {
    let structured = version.is_none_or(ProtocolVersion::has_structured_output);
    let items: Vec<Value> = catalog
        .tools
        .iter()
        .filter(|t| principal.may_use(&t.access))
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
    // A tool the caller may not use does not exist for them (the HTTP transports answer a
    // missing scope with 403 before getting here, so the client can ask for it).
    let tool = catalog
        .tool(name)
        .filter(|t| call.principal.may_use(&t.access))
        .ok_or_else(|| RpcError::invalid_params(format!("Unknown tool: {name}")))?;
    let mut args = match params.get("arguments") {
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
    // As the Python daemon does: a property left out gets its schema default before the call.
    if let Some(schema) = tool.listing.get("inputSchema") {
        apply_defaults(schema, &mut args);
    }
    let as_task = call.modern.as_ref().map(tasks::declared);
    match (tool.task_support, as_task) {
        (TaskSupport::Required, Some(false)) => return Err(tasks::missing_extension()),
        (TaskSupport::Optional | TaskSupport::Required, Some(true)) => {
            return call_as_task(engine, tool, call, req, args).await;
        }
        _ => {}
    }
    let inv = Invocation { call, req, cancel };
    match engine.invoke(&inv, name, &tool.binding, args).await {
        Ok(output) => finish(tool, output),
        Err(answer) => answer,
    }
}

fn finish(tool: &ToolDef, output: Result<Output, FunctionError>) -> Result<Value, RpcError> {
    if let Err(FunctionError::Rpc(e)) = output {
        return Err(e);
    }
    Ok(shape(tool, output))
}

/// Inserts each absent property's `default` (a copy), into nested objects and the objects of
/// arrays too, as the Python daemon's `_apply_defaults` does. Present values are left alone.
fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (key, prop) in props {
                match obj.get_mut(key) {
                    Some(v) => apply_defaults(prop, v),
                    None => {
                        if let Some(d) = prop.get("default") {
                            obj.insert(key.clone(), d.clone());
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// Runs a call that may become a task: it answers like a plain call unless the function calls
/// `Ctx::begin_task`, in which case the answer is the new task and the function runs on, its
/// outcome stored for `tasks/get`.
async fn call_as_task(
    engine: &Engine,
    tool: &Arc<ToolDef>,
    call: &Call,
    req: &Request,
    args: Value,
) -> Result<Value, RpcError> {
    let (task, begun) = tasks::Task::new(
        &call.principal.subject,
        engine.node_id(),
        engine.backends.clock.clone(),
    );
    let link: Arc<dyn TaskLink> = task.clone();
    let ctx = engine.ctx_with_task(
        call,
        req,
        &task.cancel,
        &tool.name,
        &tool.binding.setting,
        Some(link),
    )?;
    let (done_tx, done_rx) = oneshot::channel();
    let (run_task, run_tool, run_ctx) = (task.clone(), tool.clone(), ctx.clone());
    tokio::spawn(async move {
        let output = tokio::select! {
            o = run_tool.binding.function.call(run_ctx, args) => o,
            _ = run_task.cancel.cancelled() => return,
        };
        if !run_task.started() {
            let _ = done_tx.send(output);
            return;
        }
        match output {
            Err(FunctionError::Rpc(e)) => run_task.fail(e),
            Err(FunctionError::Client(ClientRequestError::Cancelled)) => {}
            other => run_task.complete(shape(&run_tool, other)),
        }
    });
    tokio::select! {
        Ok(()) = begun => {
            engine.tasks.insert(task.clone());
            Ok(task.created_result())
        }
        Ok(output) = done_rx => match engine.client_outcome(call, req, &tool.name, &ctx, &output) {
            Some(answer) => answer,
            None => finish(tool, output),
        },
        else => Err(RpcError::internal("Internal error: the call ended without an answer")),
    }
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

/// The scopes a `tools/call` needs when the caller's token lacks some of them (every scope of
/// the tool plus the base scope, for one 403 challenge), else `None` — including for tools
/// hidden by role, which answer "Unknown tool" like tools that do not exist.
pub fn scope_challenge(
    catalog: &Catalog,
    principal: &Principal,
    req: &Request,
) -> Option<Vec<String>> {
    if req.method != "tools/call" || !principal.authenticated || principal.is_admin() {
        return None;
    }
    let name = req.params.as_ref()?.get("name")?.as_str()?;
    let tool = catalog.tool(name)?;
    match tool.access.missing(principal)? {
        crate::auth::scope::Missing::Scopes(_) => {
            let mut needed = vec![crate::auth::scope::BASE_SCOPE.to_string()];
            needed.extend(tool.access.scopes.iter().cloned());
            Some(needed)
        }
        crate::auth::scope::Missing::Role => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_absent_properties_only_and_reach_nested_objects() {
        let schema = json!({"type": "object", "properties": {
            "warehouse": {"type": "string", "default": "main"},
            "sku": {"type": "string"},
            "opts": {"type": "object", "properties": {"limit": {"default": 10}}},
            "lines": {"type": "array", "items": {"type": "object",
                      "properties": {"qty": {"default": 1}}}}
        }});
        let mut args =
            json!({"sku": "a", "warehouse": "east", "opts": {}, "lines": [{}, {"qty": 5}]});
        apply_defaults(&schema, &mut args);
        assert_eq!(
            args,
            json!({"sku": "a", "warehouse": "east", "opts": {"limit": 10},
                   "lines": [{"qty": 1}, {"qty": 5}]})
        );
        let mut empty = json!({});
        apply_defaults(&schema, &mut empty);
        assert_eq!(empty, json!({"warehouse": "main"}));
    }
}
