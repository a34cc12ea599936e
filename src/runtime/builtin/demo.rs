//! `mcp_function_demo`: the Python daemon's demo module, so its example config runs unchanged.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Module, func, required_str, str_arg};
use crate::runtime::{Ctx, Function, FunctionError, Output};

pub const MODULE: &str = "mcp_function_demo";

pub struct Demo;

impl Module for Demo {
    fn function(&self, name: &str) -> Option<Arc<dyn Function>> {
        Some(match name {
            "hello" => func(hello),
            "add_numbers" => func(add_numbers),
            "read_resource" => func(read_resource),
            "get_prompt" => func(get_prompt),
            _ => return None,
        })
    }
}

async fn hello(_ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let name = str_arg(&args, "name").unwrap_or("World");
    Ok(Output::Text(format!("Hello, {name}!")))
}

async fn add_numbers(_ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    sum_text(&args).map(Output::Text)
}

/// The sum of the numbers `a` and `b` of `args` as text; shared with `mcp_bench`'s `add`.
pub(super) fn sum_text(args: &Value) -> Result<String, FunctionError> {
    let number = |k: &str| {
        args.get(k)
            .filter(|v| v.is_number())
            .ok_or_else(|| FunctionError::InvalidArguments(format!("'{k}' must be a number")))
    };
    let (a, b) = (number("a")?, number("b")?);
    // Integers stay integers ("5", not "5.0"), as Python's `a + b` prints them.
    Ok(match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => match x.checked_add(y) {
            Some(sum) => sum.to_string(),
            None => ((x as i128) + (y as i128)).to_string(),
        },
        _ => {
            let sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
            json!(sum).to_string()
        }
    })
}

async fn read_resource(_ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    match str_arg(&args, "uri") {
        Some("status://server") => Ok(Output::Json(json!({
            "status": "ok",
            "server": "mcp-daemon",
            "version": env!("CARGO_PKG_VERSION"),
        }))),
        Some(other) => Err(FunctionError::Failed(format!(
            "the demo module has no resource {other}"
        ))),
        None => Err(FunctionError::InvalidArguments("'uri' is missing".into())),
    }
}

async fn get_prompt(_ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    let arg1 = required_str(&args, "arg1")?;
    Ok(Output::Text(format!(
        "This is an example prompt with arg1: {arg1}"
    )))
}
