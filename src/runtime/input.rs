//! Client input in the stateless era (MCP 2026-07-28 MRTR): instead of sending a request to the
//! client and waiting, a function asks for input by key; when the request does not carry the
//! answer yet, the call ends with an `input_required` result listing what it needs, and the
//! client retries with `inputResponses` (and the sealed `requestState`). A function is written
//! once: `Ctx::ask` does a server-to-client request in the legacy era and this in the modern one.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

/// The input side of one modern-era call.
#[derive(Debug, Default)]
pub struct InputRound {
    /// `params.inputResponses`: answers from the client, by key.
    responses: Map<String, Value>,
    /// The opened (verified) `requestState` of this round, if the client sent one.
    state: Option<Value>,
    /// What the function asked for and the request did not answer: key -> `{method, params}`.
    asked: Mutex<Map<String, Value>>,
    /// State the function wants back in the next round.
    next_state: Mutex<Option<Value>>,
    /// Keys for functions that ask without naming a key (`input_1`, `input_2`, … by call
    /// order, which is stable because every round re-runs the function from the start).
    auto_key: AtomicUsize,
}

impl InputRound {
    pub fn new(responses: Map<String, Value>, state: Option<Value>) -> Self {
        Self {
            responses,
            state,
            ..Default::default()
        }
    }

    pub fn next_auto_key(&self) -> String {
        format!(
            "input_{}",
            self.auto_key.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    /// The client's answer for `key`, or records the request for the `input_required` result.
    /// An answer that is not a result of `method` (e.g. a bare number for an elicitation)
    /// counts as missing: the client is asked again rather than the function fed garbage.
    pub fn answer_or_ask(&self, key: &str, method: &str, params: &Value) -> Option<Value> {
        if let Some(answer) = self.responses.get(key).filter(|a| is_result_of(method, a)) {
            return Some(answer.clone());
        }
        self.asked
            .lock()
            .insert(key.to_string(), json!({"method": method, "params": params}));
        None
    }

    pub fn state(&self) -> Option<&Value> {
        self.state.as_ref()
    }

    pub fn set_next_state(&self, state: Value) {
        *self.next_state.lock() = Some(state);
    }

    /// What the `input_required` result carries: the open requests and the state to seal
    /// (the new one if the function set it, otherwise the one it got).
    pub fn outcome(&self) -> (Map<String, Value>, Option<Value>) {
        let asked = self.asked.lock().clone();
        let state = self
            .next_state
            .lock()
            .clone()
            .or_else(|| self.state.clone());
        (asked, state)
    }
}

/// Whether `answer` has the shape of a client result for `method`.
fn is_result_of(method: &str, answer: &Value) -> bool {
    match method {
        "elicitation/create" => answer.get("action").is_some_and(Value::is_string),
        "sampling/createMessage" => answer
            .get("content")
            .is_some_and(|c| c.is_object() || c.is_array()),
        "roots/list" => answer.get("roots").is_some_and(Value::is_array),
        _ => answer.is_object(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_from_responses_and_missing_ones_are_recorded() {
        let mut responses = Map::new();
        responses.insert(
            "name".into(),
            json!({"action": "accept", "content": {"name": "Ada"}}),
        );
        let round = InputRound::new(responses, None);
        assert_eq!(
            round
                .answer_or_ask("name", "elicitation/create", &json!({}))
                .unwrap()["content"]["name"],
            "Ada"
        );
        assert!(
            round
                .answer_or_ask("color", "elicitation/create", &json!({"m": 1}))
                .is_none()
        );
        let (asked, state) = round.outcome();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked["color"]["method"], "elicitation/create");
        assert!(state.is_none());
        round.set_next_state(json!({"step": 2}));
        assert_eq!(round.outcome().1, Some(json!({"step": 2})));
        assert_eq!(round.next_auto_key(), "input_1");
        assert_eq!(round.next_auto_key(), "input_2");
    }

    #[test]
    fn answers_of_the_wrong_shape_are_asked_again() {
        let mut responses = Map::new();
        responses.insert("user_name".into(), json!(12345));
        let round = InputRound::new(responses, None);
        assert!(
            round
                .answer_or_ask("user_name", "elicitation/create", &json!({}))
                .is_none()
        );
        assert!(round.outcome().0.contains_key("user_name"));
    }
}
