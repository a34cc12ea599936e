//! Opaque cursors for `*/list` (spec basic/utilities/pagination): base64 of an offset. A cursor
//! we did not mint is -32602.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::protocol::RpcError;

/// Returns `{<key>: page, nextCursor?}` for the page `params.cursor` points at.
pub fn page(
    items: &[Value],
    params: &Value,
    page_size: usize,
    key: &str,
) -> Result<Value, RpcError> {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => decode(c)
            .filter(|&o| o <= items.len())
            .ok_or_else(invalid)?,
        Some(_) => return Err(invalid()),
    };
    let end = (start + page_size.max(1)).min(items.len());
    let mut result = json!({ key: &items[start..end] });
    if end < items.len() {
        result["nextCursor"] = json!(encode(end));
    }
    Ok(result)
}

fn invalid() -> RpcError {
    RpcError::invalid_params("Invalid params: unknown cursor")
}

fn encode(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_pages_and_rejects_foreign_cursors() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let p1 = page(&items, &json!({}), 2, "tools").unwrap();
        assert_eq!(p1["tools"], json!([0, 1]));
        let c = p1["nextCursor"].as_str().unwrap().to_string();
        let p2 = page(&items, &json!({"cursor": c}), 2, "tools").unwrap();
        assert_eq!(p2["tools"], json!([2, 3]));
        let p3 = page(&items, &json!({"cursor": p2["nextCursor"]}), 2, "tools").unwrap();
        assert_eq!(p3["tools"], json!([4]));
        assert!(p3.get("nextCursor").is_none());
        assert!(page(&items, &json!({"cursor": "garbage"}), 2, "tools").is_err());
        assert!(page(&items, &json!({"cursor": encode(99)}), 2, "tools").is_err());
        assert!(page(&items, &json!({"cursor": 3}), 2, "tools").is_err());
    }
}
