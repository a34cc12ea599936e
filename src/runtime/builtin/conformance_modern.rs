//! Fixtures of the conformance suite's 2026-07-28 scenarios. Each asks for client input through
//! `Ctx::ask`, so the same function runs in both eras: server-to-client requests in the legacy
//! era, input-required results with a sealed `requestState` in the stateless one.

use std::sync::Arc;

use serde_json::{Value, json};

use super::str_arg;
use crate::runtime::{Ctx, FunctionError, Output};
use crate::state::LogLevel;

fn ask_text(message: &str, field: &str) -> Value {
    json!({"message": message, "requestedSchema": {
        "type": "object", "properties": {field: {"type": "string"}}, "required": [field]}})
}

/// A yes/no confirmation form (`ok: boolean`).
fn ok_schema() -> Value {
    json!({"message": "Please confirm", "requestedSchema": {
        "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}})
}

fn sampling(text: &str, max_tokens: u64) -> Value {
    json!({"messages": [{"role": "user", "content": {"type": "text", "text": text}}], "maxTokens": max_tokens})
}

fn content_field(answer: &Value, field: &str) -> String {
    answer
        .pointer(&format!("/content/{field}"))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default()
}

fn sampled_text(answer: &Value) -> String {
    answer
        .pointer("/content/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub async fn elicitation(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let answer = ctx
        .ask(
            "user_name",
            "elicitation/create",
            ask_text("What is your name?", "name"),
        )
        .await?;
    Ok(Output::Text(format!(
        "Hello, {}!",
        content_field(&answer, "name")
    )))
}

pub async fn sampling_tool(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let answer = ctx
        .ask(
            "capital_question",
            "sampling/createMessage",
            sampling("What is the capital of France?", 100),
        )
        .await?;
    Ok(Output::Text(format!("LLM said: {}", sampled_text(&answer))))
}

pub async fn list_roots(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let answer = ctx.ask("client_roots", "roots/list", json!({})).await?;
    let n = answer
        .get("roots")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(Output::Text(format!(
        "Client has {n} root(s): {}",
        answer["roots"]
    )))
}

pub async fn request_state(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.set_request_state(json!({"phase": "confirm"}));
    let schema = ok_schema();
    let answer = ctx.ask("confirm", "elicitation/create", schema).await?;
    let state_ok = match ctx.request_state() {
        Some(s) => s.get("phase").and_then(Value::as_str) == Some("confirm"),
        None => ctx.input().is_none(), // the legacy era keeps its state in the running function
    };
    let verdict = if state_ok {
        "state-ok"
    } else {
        "state-missing"
    };
    Ok(Output::Text(format!(
        "{verdict}: confirmed={}",
        content_field(&answer, "ok")
    )))
}

pub async fn multiple_inputs(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.set_request_state(json!({"asked": ["user_name", "greeting", "client_roots"]}));
    let answers = ctx
        .ask_all(vec![
            (
                "user_name",
                "elicitation/create",
                ask_text("What is your name?", "name"),
            ),
            (
                "greeting",
                "sampling/createMessage",
                sampling("Generate a greeting", 50),
            ),
            ("client_roots", "roots/list", json!({})),
        ])
        .await?;
    Ok(Output::Text(format!(
        "name={}, greeting={}, roots={}",
        content_field(&answers[0], "name"),
        sampled_text(&answers[1]),
        answers[2]["roots"]
    )))
}

pub async fn multi_round(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    // The name from round one travels in the sealed state, so round three needs only step2.
    let name = match ctx
        .request_state()
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
    {
        Some(n) => n.to_string(),
        None => {
            ctx.set_request_state(json!({"step": 1}));
            let a = ctx
                .ask(
                    "step1",
                    "elicitation/create",
                    ask_text("What is your name?", "name"),
                )
                .await?;
            content_field(&a, "name")
        }
    };
    ctx.set_request_state(json!({"step": 2, "name": name}));
    let a = ctx
        .ask(
            "step2",
            "elicitation/create",
            ask_text("What is your favorite color?", "color"),
        )
        .await?;
    Ok(Output::Text(format!(
        "{name} likes {}",
        content_field(&a, "color")
    )))
}

pub async fn tampered_state(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.set_request_state(json!({"integrity": "sealed"}));
    let schema = ok_schema();
    let answer = ctx.ask("confirm", "elicitation/create", schema).await?;
    Ok(Output::Text(format!(
        "state verified: confirmed={}",
        content_field(&answer, "ok")
    )))
}

/// Asks only for what the client declared it can answer.
pub async fn capabilities(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let mut asks = Vec::new();
    if ctx.client_supports("elicitation") {
        asks.push((
            "user_name",
            "elicitation/create",
            ask_text("What is your name?", "name"),
        ));
    }
    if ctx.client_supports("sampling") {
        asks.push((
            "greeting",
            "sampling/createMessage",
            sampling("Generate a greeting", 50),
        ));
    }
    if ctx.client_supports("roots") {
        asks.push(("client_roots", "roots/list", json!({})));
    }
    let n = asks.len();
    ctx.ask_all(asks).await?;
    Ok(Output::Text(format!("received {n} answer(s)")))
}

pub async fn prompt(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let answer = ctx
        .ask(
            "user_context",
            "elicitation/create",
            ask_text("What context should the prompt use?", "context"),
        )
        .await?;
    Ok(Output::Text(format!(
        "Use this context: {}",
        content_field(&answer, "context")
    )))
}

pub async fn missing_capability(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.require("sampling")?;
    let answer = ctx
        .ask(
            "completion",
            "sampling/createMessage",
            sampling("Say hi", 20),
        )
        .await?;
    Ok(Output::Text(sampled_text(&answer)))
}

pub async fn streaming_elicitation(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.progress(0.0, Some(1.0), Some("asking for confirmation"))
        .await;
    let answer = ctx
        .ask(
            "confirmation",
            "elicitation/create",
            ask_text("Continue?", "answer"),
        )
        .await?;
    Ok(Output::Text(format!(
        "Streaming complete: {}",
        content_field(&answer, "answer")
    )))
}

pub async fn logging_tool(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    for step in ["evaluating", "evaluated"] {
        ctx.log(LogLevel::Info, "conformance", json!(step)).await;
    }
    Ok(Output::Text("Logging evaluated".into()))
}

pub async fn trigger_tool_change(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.list_changed(crate::runtime::List::Tools).await;
    Ok(Output::Text("Mutation triggered".into()))
}

pub async fn trigger_prompt_change(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.list_changed(crate::runtime::List::Prompts).await;
    Ok(Output::Text("Mutation triggered".into()))
}

/// A tool whose `region` parameter is mirrored in the `Mcp-Param-Region` header.
pub async fn header_param(_: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    Ok(Output::Text(format!(
        "Region: {}",
        str_arg(&args, "region").unwrap_or("")
    )))
}

// Tasks extension fixtures (`io.modelcontextprotocol/tasks`).

pub async fn greet(_: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    Ok(Output::Text(format!(
        "Hello, {}!",
        str_arg(&args, "name").unwrap_or("World")
    )))
}

/// Works for `seconds`; any real work becomes a task when the client allows it.
pub async fn slow_compute(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let seconds = args
        .get("seconds")
        .and_then(Value::as_f64)
        .unwrap_or(1.0)
        .clamp(0.0, 600.0);
    if seconds > 0.0 {
        ctx.begin_task();
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
    }
    let label = str_arg(&args, "label").unwrap_or("compute");
    Ok(Output::Text(format!("{label}: computed for {seconds} s")))
}

pub async fn failing_job(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.begin_task();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Err(FunctionError::Failed("The job failed on purpose".into()))
}

pub async fn protocol_error_job(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.begin_task();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    Err(FunctionError::Rpc(crate::protocol::RpcError::internal(
        "The job hit an internal error on purpose",
    )))
}

fn confirm_schema(message: &str) -> Value {
    json!({"message": message, "requestedSchema": {
        "type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}})
}

pub async fn confirm_delete(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let file = str_arg(&args, "filename").unwrap_or("file").to_string();
    ctx.begin_task();
    let answer = ctx
        .ask(
            "confirm",
            "elicitation/create",
            confirm_schema(&format!("Delete {file}?")),
        )
        .await?;
    let yes = answer
        .pointer("/content/confirm")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Output::Text(if yes {
        format!("Deleted {file}")
    } else {
        format!("Kept {file}")
    }))
}

pub async fn multi_input(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.begin_task();
    let answers = ctx
        .ask_all(vec![
            (
                "name",
                "elicitation/create",
                ask_text("What is your name?", "name"),
            ),
            ("confirm", "elicitation/create", confirm_schema("Proceed?")),
        ])
        .await?;
    Ok(Output::Text(format!(
        "name={}, confirm={}",
        content_field(&answers[0], "name"),
        content_field(&answers[1], "confirm")
    )))
}

/// Asks for a name through an input-required result first, then runs as a task.
pub async fn tool_with_task(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let answer = ctx
        .ask(
            "user_name",
            "elicitation/create",
            ask_text("What is your name?", "name"),
        )
        .await?;
    ctx.begin_task();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(Output::Text(format!(
        "Hello, {}!",
        content_field(&answer, "name")
    )))
}
