//! `mcp_conformance`: the fixtures the official conformance suite calls (spec digest §3.4).
//! Served only when a config file maps them, e.g. `tests/fixtures/conformance.json`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::conformance_modern as m;
use super::media::{PNG_BASE64, wav_base64};
use super::{Module, func, required_str, str_arg};
use crate::runtime::{Ctx, Function, FunctionError, Output};
use crate::state::LogLevel;

pub const MODULE: &str = "mcp_conformance";

pub struct Conformance;

impl Module for Conformance {
    fn function(&self, name: &str) -> Option<Arc<dyn Function>> {
        Some(match name {
            "test_simple_text" => func(simple_text),
            "test_image_content" => func(image_content),
            "test_audio_content" => func(audio_content),
            "test_embedded_resource" => func(embedded_resource),
            "test_multiple_content_types" => func(multiple_content_types),
            "test_tool_with_logging" => func(tool_with_logging),
            "test_error_handling" => func(error_handling),
            "test_tool_with_progress" => func(tool_with_progress),
            "test_sampling" => func(sampling),
            "test_elicitation" => func(elicitation),
            "test_elicitation_sep1034_defaults" => func(elicitation_defaults),
            "test_elicitation_sep1330_enums" => func(elicitation_enums),
            "test_reconnection" => func(reconnection),
            "test_input_required_result_elicitation" => func(m::elicitation),
            "test_input_required_result_sampling" => func(m::sampling_tool),
            "test_input_required_result_list_roots" => func(m::list_roots),
            "test_input_required_result_request_state" => func(m::request_state),
            "test_input_required_result_multiple_inputs" => func(m::multiple_inputs),
            "test_input_required_result_multi_round" => func(m::multi_round),
            "test_input_required_result_tampered_state" => func(m::tampered_state),
            "test_input_required_result_capabilities" => func(m::capabilities),
            "test_input_required_result_prompt" => func(m::prompt),
            "test_missing_capability" => func(m::missing_capability),
            "test_streaming_elicitation" => func(m::streaming_elicitation),
            "test_logging_tool" => func(m::logging_tool),
            "test_trigger_tool_change" => func(m::trigger_tool_change),
            "test_trigger_prompt_change" => func(m::trigger_prompt_change),
            "test_header_param" => func(m::header_param),
            "greet" => func(m::greet),
            "slow_compute" => func(m::slow_compute),
            "failing_job" => func(m::failing_job),
            "protocol_error_job" => func(m::protocol_error_job),
            "confirm_delete" => func(m::confirm_delete),
            "multi_input" => func(m::multi_input),
            "test_tool_with_task" => func(m::tool_with_task),
            "echo_arguments" => func(echo_arguments),
            "read_resource" => func(read_resource),
            "get_prompt" => func(get_prompt),
            _ => return None,
        })
    }
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn image() -> Value {
    json!({"type": "image", "data": PNG_BASE64, "mimeType": "image/png"})
}

async fn simple_text(_: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    Ok(Output::Text(
        "This is a simple text response for testing.".into(),
    ))
}

async fn image_content(_: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    Ok(Output::Content(vec![image()]))
}

async fn audio_content(_: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    Ok(Output::Content(vec![
        json!({"type": "audio", "data": wav_base64(), "mimeType": "audio/wav"}),
    ]))
}

async fn embedded_resource(_: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    Ok(Output::Content(vec![
        json!({"type": "resource", "resource": {
            "uri": "test://embedded-resource",
            "mimeType": "text/plain",
            "text": "This is an embedded resource content.",
        }}),
    ]))
}

async fn multiple_content_types(_: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    Ok(Output::Content(vec![
        text("Multiple content types test:"),
        image(),
        json!({"type": "resource", "resource": {
            "uri": "test://mixed-content-resource",
            "mimeType": "application/json",
            "text": "{\"test\":\"data\",\"value\":123}",
        }}),
    ]))
}

async fn tool_with_logging(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let steps = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ctx.log(LogLevel::Info, "conformance", json!(step)).await;
    }
    Ok(Output::Text(
        "Tool with logging executed successfully".into(),
    ))
}

async fn error_handling(_: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    Err(FunctionError::Failed(
        "This tool intentionally returns an error for testing".into(),
    ))
}

async fn tool_with_progress(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ctx.progress(p, Some(100.0), None).await;
    }
    Ok(Output::Text("Tool with progress completed".into()))
}

async fn sampling(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let prompt = required_str(&args, "prompt")?;
    let result = ctx
        .request_client(
            "sampling/createMessage",
            json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": 100,
            }),
        )
        .await?;
    let answer = result
        .pointer("/content/text")
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(Output::Text(format!("LLM response: {answer}")))
}

async fn elicit(ctx: &Ctx, message: &str, schema: Value) -> Result<String, FunctionError> {
    let result = ctx
        .request_client(
            "elicitation/create",
            json!({"message": message, "requestedSchema": schema}),
        )
        .await?;
    let action = result
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let content = result.get("content").cloned().unwrap_or(Value::Null);
    Ok(format!("action={action}, content={content}"))
}

async fn elicitation(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let message = required_str(&args, "message")?;
    let schema = json!({
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    });
    Ok(Output::Text(format!(
        "User response: {}",
        elicit(&ctx, &message, schema).await?
    )))
}

async fn elicitation_defaults(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string", "description": "User status",
                "enum": ["active", "inactive", "pending"], "default": "active",
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": true},
        },
    });
    let answer = elicit(
        &ctx,
        "Please review and update the form fields with defaults",
        schema,
    )
    .await?;
    Ok(Output::Text(format!("Elicitation completed: {answer}")))
}

async fn elicitation_enums(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ]},
            "legacyEnum": {
                "type": "string", "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"},
            ]}},
        },
    });
    let answer = elicit(&ctx, "Please select options from the enum fields", schema).await?;
    Ok(Output::Text(format!("Elicitation completed: {answer}")))
}

/// SEP-1699: closes the response stream mid-call; the result must reach the client through
/// `GET` + `Last-Event-ID`.
async fn reconnection(ctx: Arc<Ctx>, _: Value) -> Result<Output, FunctionError> {
    ctx.close_stream().await;
    // Finish after the client has seen the close, so the result lands in the replay buffer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Output::Text("Reconnection test completed".into()))
}

/// Backs tools whose interest is their schema (e.g. `json_schema_2020_12_tool`).
async fn echo_arguments(_: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    Ok(Output::Text(format!("Received arguments: {args}")))
}

async fn read_resource(_: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let uri = required_str(&args, "uri")?;
    let item = |mime: &str, text: &str| json!({"uri": uri, "mimeType": mime, "text": text});
    Ok(Output::Content(vec![match uri.as_str() {
        "test://static-text" => item(
            "text/plain",
            "This is the content of the static text resource.",
        ),
        "test://static-binary" => json!({"uri": uri, "mimeType": "image/png", "blob": PNG_BASE64}),
        "test://watched-resource" => item("text/plain", "Watched resource content"),
        "test://stateless-static-text" => {
            item("text/plain", "Static text content from the stateless path.")
        }
        _ => {
            let Some(id) = args.pointer("/params/id").and_then(Value::as_str) else {
                return Err(FunctionError::Failed(format!("no fixture resource {uri}")));
            };
            let data =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            item("application/json", &data.to_string())
        }
    }]))
}

async fn get_prompt(ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let name = ctx.entry.as_str();
    let user = |content: Value| json!({"role": "user", "content": content});
    let messages = match name {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => {
            let a1 = str_arg(&args, "arg1").unwrap_or("");
            let a2 = str_arg(&args, "arg2").unwrap_or("");
            vec![user(text(&format!(
                "Prompt with arguments: arg1='{a1}', arg2='{a2}'"
            )))]
        }
        "test_prompt_with_embedded_resource" => {
            let uri = required_str(&args, "resourceUri")?;
            vec![
                user(json!({"type": "resource", "resource": {
                    "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing.",
                }})),
                user(text("Please process the embedded resource above.")),
            ]
        }
        "test_prompt_with_image" => {
            vec![user(image()), user(text("Please analyze the image above."))]
        }
        "test_input_required_result_prompt" => return m::prompt(ctx, args).await,
        other => return Err(FunctionError::Failed(format!("no fixture prompt {other}"))),
    };
    Ok(Output::Result(json!({"messages": messages})))
}
