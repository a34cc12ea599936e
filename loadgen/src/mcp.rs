//! An MCP session over streamable HTTP: `initialize`, `notifications/initialized`, requests,
//! the standalone GET stream and `DELETE`. A session is not bound to a connection, so one
//! session can send its requests to several nodes in turn.

use anyhow::{Context, Result, bail};
use http::header::CONTENT_TYPE;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::http::{ACCEPT_BOTH, Conn, empty_body, json_body};
use crate::sse::{find_response, snippet};

pub const PROTOCOL_VERSION: &str = "2025-11-25";

pub struct Session {
    /// `None` when the server runs without sessions.
    pub id: Option<String>,
    /// The version the server chose in `initialize`, sent as `MCP-Protocol-Version`.
    pub version: String,
    next_id: u64,
}

impl Session {
    /// `initialize` followed by `notifications/initialized`.
    pub async fn open(conn: &mut Conn) -> Result<Self> {
        let mut session = Self {
            id: None,
            version: PROTOCOL_VERSION.to_string(),
            next_id: 1,
        };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "loadgen", "version": env!("CARGO_PKG_VERSION")},
        });
        let (result, headers) = session.call(conn, "initialize", params, false).await?;
        session.id = headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
            session.version = v.to_string();
        }
        session
            .notify(conn, "notifications/initialized", json!({}))
            .await?;
        Ok(session)
    }

    /// Sends a request and returns its `result` (a JSON-RPC error is an `Err`).
    pub async fn request(&mut self, conn: &mut Conn, method: &str, params: Value) -> Result<Value> {
        Ok(self.call(conn, method, params, true).await?.0)
    }

    async fn call(
        &mut self,
        conn: &mut Conn,
        method: &str,
        params: Value,
        with_headers: bool,
    ) -> Result<(Value, http::HeaderMap)> {
        let id = self.next_id;
        self.next_id += 1;
        let body = serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params,
        }))?;
        let (session, version) = if with_headers {
            (self.id.as_deref(), Some(self.version.as_str()))
        } else {
            (None, None)
        };
        let request = conn
            .request(Method::POST, ACCEPT_BOTH, session, version)
            .header(CONTENT_TYPE, "application/json")
            .body(json_body(body))?;
        let reply = conn.exchange(request).await?;
        if reply.status != StatusCode::OK {
            bail!(
                "{method}: HTTP {}: {}",
                reply.status.as_u16(),
                snippet(&reply.body)
            );
        }
        let msg = find_response(reply.content_type(), &reply.body, id)
            .with_context(|| format!("{method}: bad response"))?;
        if let Some(error) = msg.get("error") {
            bail!("{method}: JSON-RPC error {error}");
        }
        let result = msg
            .get("result")
            .cloned()
            .with_context(|| format!("{method}: no result in {msg}"))?;
        Ok((result, reply.headers))
    }

    pub async fn notify(&self, conn: &mut Conn, method: &str, params: Value) -> Result<()> {
        let body =
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": method, "params": params}))?;
        let request = conn
            .request(
                Method::POST,
                ACCEPT_BOTH,
                self.id.as_deref(),
                Some(&self.version),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(json_body(body))?;
        let reply = conn.exchange(request).await?;
        if !reply.status.is_success() {
            bail!(
                "{method}: HTTP {}: {}",
                reply.status.as_u16(),
                snippet(&reply.body)
            );
        }
        Ok(())
    }

    /// Opens the standalone GET stream; the caller reads the body.
    pub async fn listen(&self, conn: &mut Conn) -> Result<hyper::Response<Incoming>> {
        let request = conn
            .request(
                Method::GET,
                "text/event-stream",
                self.id.as_deref(),
                Some(&self.version),
            )
            .body(empty_body())?;
        let response = conn.send(request).await?;
        if response.status() != StatusCode::OK {
            bail!("GET stream: HTTP {}", response.status().as_u16());
        }
        Ok(response)
    }

    /// Ends the session (`DELETE`); servers without sessions answer 405, which is fine.
    pub async fn close(&self, conn: &mut Conn) -> Result<()> {
        let Some(id) = self.id.as_deref() else {
            return Ok(());
        };
        let request = conn
            .request(Method::DELETE, ACCEPT_BOTH, Some(id), Some(&self.version))
            .body(empty_body())?;
        let reply = conn.exchange(request).await?;
        if !reply.status.is_success() && reply.status != StatusCode::METHOD_NOT_ALLOWED {
            bail!("DELETE: HTTP {}", reply.status.as_u16());
        }
        Ok(())
    }
}

/// The text of a tool result's first content item; a result with `isError` is an `Err`.
pub fn tool_text(result: &Value) -> Result<&str> {
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        bail!("tool error: {result}");
    }
    result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .with_context(|| format!("no text content in {result}"))
}
