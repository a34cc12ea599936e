//! `mcp_bench`: the two tools every benchmark peer exposes (`add`, `echo`), so the load
//! generator compares servers doing the same work (see `bench/config.json`).

use std::sync::Arc;

use serde_json::Value;

use super::{Module, demo, func, required_str};
use crate::runtime::{Ctx, Function, FunctionError, Output};

pub const MODULE: &str = "mcp_bench";

pub struct Bench;

impl Module for Bench {
    fn function(&self, name: &str) -> Option<Arc<dyn Function>> {
        Some(match name {
            "add" => func(add),
            "echo" => func(echo),
            _ => return None,
        })
    }
}

/// `add(a, b)`: the sum as text, with the demo module's number rules (integers stay integers).
async fn add(_ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    demo::sum_text(&args).map(Output::Text)
}

/// `echo(message)`: the message, unchanged.
async fn echo(_ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
    required_str(&args, "message").map(Output::Text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn exposes_add_and_echo_only() {
        assert!(Bench.function("add").is_some());
        assert!(Bench.function("echo").is_some());
        assert!(Bench.function("add_numbers").is_none());
        assert!(super::super::module(MODULE).is_some());
    }

    #[test]
    fn add_keeps_integers_and_rejects_non_numbers() {
        assert_eq!(demo::sum_text(&json!({"a": 2, "b": 3})).unwrap(), "5");
        assert_eq!(demo::sum_text(&json!({"a": -7, "b": 3})).unwrap(), "-4");
        assert_eq!(demo::sum_text(&json!({"a": 1.5, "b": 1})).unwrap(), "2.5");
        assert!(matches!(
            demo::sum_text(&json!({"a": "2", "b": 3})),
            Err(FunctionError::InvalidArguments(_))
        ));
    }

    #[test]
    fn echo_requires_a_string_message() {
        assert_eq!(
            required_str(&json!({"message": "hi"}), "message").unwrap(),
            "hi"
        );
        assert!(required_str(&json!({"message": 1}), "message").is_err());
    }
}
