//! JSON-RPC 2.0 envelopes: parsing raw bytes into requests, notifications and responses, and
//! serialising responses. Bounded: nesting depth is checked before serde sees the bytes.
//! Strict: an object with the same key twice is a parse error, since two readers (serde keeps
//! the last, others the first) could disagree on what was asked.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::codes;

/// A request id: JSON-RPC allows strings and numbers; MCP forbids `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Num(i64),
    Str(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Num(n) => write!(f, "{n}"),
            RequestId::Str(s) => f.write_str(s),
        }
    }
}

/// A JSON-RPC error object. `data` is optional structured detail (e.g. `{"uri": ...}`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("json-rpc error {code}: {message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(codes::PARSE_ERROR, message)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message)
    }
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message)
    }

    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), json!(self.code));
        obj.insert("message".into(), json!(self.message));
        if let Some(data) = &self.data {
            obj.insert("data".into(), data.clone());
        }
        Value::Object(obj)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Value>,
}

impl Request {
    /// `params._meta.progressToken`, when the caller asked for progress.
    pub fn progress_token(&self) -> Option<Value> {
        self.params
            .as_ref()?
            .get("_meta")?
            .get("progressToken")
            .cloned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

/// A response we send or receive. `id` is `None` only for errors about unparseable input.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Option<RequestId>,
    pub outcome: Result<Value, RpcError>,
}

impl Response {
    pub fn ok(id: RequestId, result: Value) -> Self {
        Self {
            id: Some(id),
            outcome: Ok(result),
        }
    }
    pub fn err(id: Option<RequestId>, error: RpcError) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }

    pub fn to_value(&self) -> Value {
        let id = match &self.id {
            Some(id) => json!(id),
            None => Value::Null,
        };
        match &self.outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_value()}),
        }
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

/// One JSON-RPC message of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

impl Message {
    pub fn request_value(id: &RequestId, method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }
    pub fn notification_value(method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "method": method, "params": params})
    }
}

/// What a POST body held: one message or a batch. Batch items that are not valid messages keep
/// their error (and id, when one could be read) so the batch answer can report each of them.
#[derive(Debug)]
pub enum Incoming {
    Single(Message),
    Batch(Vec<Result<Message, Response>>),
}

/// Parses one body. A body that is not JSON, or nests deeper than `max_depth`, fails whole
/// (-32700); a JSON value that is not a JSON-RPC message fails with -32600.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Incoming, Response> {
    check_depth(bytes, max_depth).map_err(|e| Response::err(None, e))?;
    let value = serde_json::from_slice::<Strict>(bytes)
        .map_err(|e| Response::err(None, RpcError::parse(format!("Parse error: {e}"))))?
        .0;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(Response::err(
                    None,
                    RpcError::invalid_request("Invalid Request: empty batch"),
                ));
            }
            Ok(Incoming::Batch(items.into_iter().map(classify).collect()))
        }
        other => classify(other).map(Incoming::Single),
    }
}

/// Parses one message that must not be a batch (stdio lines, legacy SSE POSTs, plain HTTP).
pub fn parse_single(bytes: &[u8], max_depth: usize) -> Result<Message, Response> {
    match parse(bytes, max_depth)? {
        Incoming::Single(m) => Ok(m),
        Incoming::Batch(_) => Err(Response::err(
            None,
            RpcError::invalid_request("Invalid Request: batches are not supported here"),
        )),
    }
}

fn classify(value: Value) -> Result<Message, Response> {
    let Value::Object(mut obj) = value else {
        return Err(Response::err(
            None,
            RpcError::invalid_request("Invalid Request: expected a JSON object"),
        ));
    };
    let id = match obj.remove("id") {
        None => None,
        Some(Value::Null) => {
            // A null id marks an error reply to something unparseable; nothing else may use it.
            if obj.contains_key("error") {
                None
            } else {
                return Err(Response::err(
                    None,
                    RpcError::invalid_request("Invalid Request: id must not be null"),
                ));
            }
        }
        Some(v) => match serde_json::from_value::<RequestId>(v) {
            Ok(id) => Some(id),
            Err(_) => {
                return Err(Response::err(
                    None,
                    RpcError::invalid_request("Invalid Request: id must be a string or an integer"),
                ));
            }
        },
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Response::err(
            id,
            RpcError::invalid_request("Invalid Request: jsonrpc must be \"2.0\""),
        ));
    }
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(Response::err(
                id,
                RpcError::invalid_request("Invalid Request: method must be a string"),
            ));
        };
        let params = obj.remove("params");
        if let Some(p) = &params
            && !p.is_object()
            && !p.is_array()
        {
            return Err(Response::err(
                id,
                RpcError::invalid_request("Invalid Request: params must be an object"),
            ));
        }
        return Ok(match id {
            Some(id) => Message::Request(Request { id, method, params }),
            None => Message::Notification(Notification { method, params }),
        });
    }
    if let Some(result) = obj.remove("result") {
        return match id {
            Some(id) => Ok(Message::Response(Response::ok(id, result))),
            None => Err(Response::err(
                None,
                RpcError::invalid_request("Invalid Request: response without id"),
            )),
        };
    }
    if let Some(error) = obj.remove("error") {
        let code = error
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or(codes::INTERNAL_ERROR);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let data = error.get("data").cloned();
        return Ok(Message::Response(Response::err(
            id,
            RpcError {
                code,
                message,
                data,
            },
        )));
    }
    Err(Response::err(
        id,
        RpcError::invalid_request("Invalid Request: no method, result or error"),
    ))
}

/// A JSON value whose objects have no key twice. serde_json's own `Value` keeps the last of
/// duplicate keys silently; this builds the same `Value` in one pass and refuses them, at the
/// cost of nothing more than the insert it does anyway.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d).map(|Strict(v)| v)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match obj.entry(key) {
                serde_json::map::Entry::Occupied(o) => {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate key {:?}",
                        o.key()
                    )));
                }
                serde_json::map::Entry::Vacant(v) => {
                    let Strict(value) = map.next_value()?;
                    v.insert(value);
                }
            }
        }
        Ok(Value::Object(obj))
    }
}

/// Rejects input nested deeper than `max_depth` without building it: a cheap byte scan that
/// skips string contents, so a hostile `[[[[...` never reaches the recursive parser.
fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), RpcError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(RpcError::parse(format!(
                        "Parse error: JSON nesting deeper than {max_depth} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(s: &str) -> Result<Message, Response> {
        parse_single(s.as_bytes(), 64)
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Message::Request(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Message::Response(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"x"}}"#),
            Ok(Message::Response(_))
        ));
    }

    #[test]
    fn malformed_json_is_a_parse_error_without_id() {
        let err = single("{not json").unwrap_err();
        assert_eq!(err.id, None);
        assert_eq!(err.outcome.unwrap_err().code, codes::PARSE_ERROR);
    }

    #[test]
    fn null_id_and_bad_version_are_invalid_requests() {
        let e = single(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).unwrap_err();
        assert_eq!(e.outcome.unwrap_err().code, codes::INVALID_REQUEST);
        let e = single(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#).unwrap_err();
        assert_eq!(e.id, Some(RequestId::Num(3)));
        assert_eq!(e.outcome.unwrap_err().code, codes::INVALID_REQUEST);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(deep.as_bytes(), 64).unwrap_err();
        let err = e.outcome.unwrap_err();
        assert_eq!(err.code, codes::PARSE_ERROR);
        assert!(err.message.contains("nesting"));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":"{}"}}}}"#,
            "[".repeat(500)
        );
        assert!(single(&body).is_ok());
    }

    #[test]
    fn batches_keep_per_item_errors() {
        let Incoming::Batch(items) =
            parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}, 5]"#, 64).unwrap()
        else {
            panic!("expected batch")
        };
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
        assert!(parse(b"[]", 64).is_err());
    }

    #[test]
    fn duplicate_keys_are_a_parse_error_at_any_depth() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1,"a":2}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","\u006dethod":"tools/call"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"a","method":"b"}]"#,
        ] {
            let e = parse(body.as_bytes(), 64).unwrap_err();
            assert_eq!(e.id, None, "{body}");
            let err = e.outcome.unwrap_err();
            assert_eq!(err.code, codes::PARSE_ERROR, "{body}");
            assert!(err.message.contains("duplicate key"), "{}", err.message);
        }
    }

    #[test]
    fn strict_parsing_builds_the_same_value_as_serde_json() {
        let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":-1,"b":2.5,"c":18446744073709551615,"d":[true,null,"\u00e9",{}],"e":{"f":[]}}}}"#;
        let Strict(strict) = serde_json::from_str(body).unwrap();
        let plain: Value = serde_json::from_str(body).unwrap();
        assert_eq!(strict, plain);
        assert!(single(body).is_ok());
    }

    #[test]
    fn response_serialises_with_jsonrpc_and_id() {
        let v = Response::ok(RequestId::Str("x".into()), json!({})).to_value();
        assert_eq!(v, json!({"jsonrpc":"2.0","id":"x","result":{}}));
        let v = Response::err(None, RpcError::parse("bad")).to_value();
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["code"], -32700);
    }
}
