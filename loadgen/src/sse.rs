//! Server-sent events: splits a byte stream into events and picks out JSON-RPC messages.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Incremental SSE parser: feed chunks, take complete events' `data` (multi-line data joined
/// with `\n`; events without data, such as priming events and comments, are skipped).
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        // Line ends may be CRLF; for finding event boundaries only LF matters.
        self.buf
            .extend(chunk.iter().copied().filter(|b| *b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let mut data: Option<String> = None;
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("data:") {
                    let rest = rest.strip_prefix(' ').unwrap_or(rest);
                    match &mut data {
                        Some(d) => {
                            d.push('\n');
                            d.push_str(rest);
                        }
                        None => data = Some(rest.to_string()),
                    }
                }
            }
            if let Some(d) = data.filter(|d| !d.is_empty()) {
                events.push(d);
            }
        }
        events
    }
}

/// The JSON-RPC response with `id` in a POST's answer, which is either one JSON object or an
/// SSE stream that may carry notifications and requests before the response.
pub fn find_response(content_type: &str, body: &[u8], id: u64) -> Result<Value> {
    if content_type.starts_with("text/event-stream") {
        let mut parser = SseParser::default();
        let mut events = parser.push(body);
        events.extend(parser.push(b"\n\n"));
        for data in events {
            let Ok(msg) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if msg.get("id").and_then(Value::as_u64) == Some(id) && msg.get("method").is_none() {
                return Ok(msg);
            }
        }
        bail!("the event stream has no response with id {id}");
    }
    let msg: Value = serde_json::from_slice(body).context("the response is not JSON")?;
    if msg.get("id").and_then(Value::as_u64) != Some(id) {
        bail!("the response has the wrong id: {}", snippet(body));
    }
    Ok(msg)
}

pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut p = SseParser::default();
        assert!(
            p.push(b"id: 1\r\ndata: \r\n\r\nevent: message\r\ndata: {\"a\"")
                .is_empty()
        );
        assert_eq!(p.push(b":1}\r\n\r\n: comment\n\n"), vec!["{\"a\":1}"]);
        assert_eq!(p.push(b"data: x\ndata: y\n\n"), vec!["x\ny"]);
    }

    #[test]
    fn the_response_is_found_among_notifications() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        let msg = find_response("text/event-stream", body, 7).unwrap();
        assert_eq!(msg["result"], serde_json::json!({}));
        assert!(find_response("text/event-stream", body, 8).is_err());
        let json = br#"{"jsonrpc":"2.0","id":3,"result":{"x":1}}"#;
        assert_eq!(
            find_response("application/json", json, 3).unwrap()["result"]["x"],
            1
        );
    }
}
