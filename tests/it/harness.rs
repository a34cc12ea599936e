//! Starts servers and speaks MCP to them over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mcp_daemon::app;
use mcp_daemon::clock::{Clock, ManualClock, SystemClock};
use mcp_daemon::config::Config;
use mcp_daemon::engine::Engine;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const INTEGRATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/integration.json"
);

/// An in-process server on a loopback port; speaks MCP through its `McpHttp` (deref).
pub struct TestServer {
    pub engine: Arc<Engine>,
    client: McpHttp,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::ops::Deref for TestServer {
    type Target = McpHttp;
    fn deref(&self) -> &McpHttp {
        &self.client
    }
}

/// Speaks MCP over HTTP to one server at `base` (in-process or a separate daemon process).
#[derive(Clone)]
pub struct McpHttp {
    pub base: String,
    pub http: reqwest::Client,
}

/// A reqwest builder for tests. reqwest's TLS uses the process-wide rustls provider that the
/// daemon installs; a test that builds a client before any server started needs it too.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

impl McpHttp {
    pub fn new(base: String) -> Self {
        let http = http_client().pool_max_idle_per_host(0).build().unwrap();
        Self { base, http }
    }

    /// GET `url` and parse the body as JSON.
    pub async fn get_json(&self, url: impl reqwest::IntoUrl) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The same server, every request carrying `Authorization: Bearer <token>`.
    pub fn with_token(&self, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let http = http_client()
            .pool_max_idle_per_host(0)
            .default_headers(headers)
            .build()
            .unwrap();
        Self {
            base: self.base.clone(),
            http,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn integration_config() -> Config {
    let mut c = Config::for_test();
    c.config_file = Some(INTEGRATION.into());
    c
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(integration_config(), Arc::new(SystemClock)).await
    }

    pub async fn start_with(config: Config, clock: Arc<dyn Clock>) -> Self {
        let engine = app::build_engine(&config, clock)
            .await
            .expect("config loads");
        let state = app::http_state(&config, engine.clone()).expect("auth builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app::serve(listener, state, async move {
            let _ = rx.await;
        }));
        Self {
            engine,
            client: McpHttp::new(base),
            shutdown: Some(tx),
        }
    }

    pub async fn with_manual_clock(config: Config) -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        (Self::start_with(config, clock.clone()).await, clock)
    }
}

impl McpHttp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Raw POST to /mcp with the standard headers plus `extra`.
    pub async fn post_raw(
        &self,
        session: Option<&str>,
        body: impl Into<reqwest::Body>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.body(body).send().await.unwrap()
    }

    pub async fn post(&self, session: Option<&str>, body: &Value) -> reqwest::Response {
        self.post_raw(session, body.to_string(), &[]).await
    }

    /// `initialize` + `notifications/initialized`; returns the session id.
    pub async fn initialize(&self, version: &str, capabilities: Value) -> String {
        let resp = self
            .post(
                None,
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": capabilities,
                "clientInfo": {"name": "it", "version": "1"}}}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        let sid = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], version);
        let n = self
            .post(
                Some(&sid),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(n.status(), 202);
        sid
    }

    /// A request expected to come back as plain JSON.
    pub async fn request(&self, session: &str, id: i64, method: &str, params: Value) -> Value {
        let resp = self
            .post(
                Some(session),
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{method}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{method} should answer as JSON"
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["id"], id);
        v
    }

    pub async fn call_tool(&self, session: &str, name: &str, args: Value) -> Value {
        self.request(
            session,
            1,
            "tools/call",
            json!({"name": name, "arguments": args}),
        )
        .await["result"]
            .clone()
    }

    /// `DELETE /mcp` of a session (ends it).
    pub async fn delete_session(&self, session: &str) -> reqwest::Response {
        self.http
            .delete(self.url("/mcp"))
            .header("mcp-session-id", session)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_stream(
        &self,
        session: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url("/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        req.send().await.unwrap()
    }
}

/// One parsed SSE frame.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Reads SSE frames from a response incrementally (comments are skipped).
pub struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            stream: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event, or `None` when the stream ends; panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        tokio::time::timeout(timeout, self.next_inner())
            .await
            .expect("SSE event in time")
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent::default();
                let mut data_lines = Vec::new();
                let mut any = false;
                for line in frame.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    any = true;
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    match k {
                        "id" => ev.id = Some(v.to_string()),
                        "event" => ev.event = Some(v.to_string()),
                        "data" => data_lines.push(v.to_string()),
                        "retry" => ev.retry = v.parse().ok(),
                        _ => {}
                    }
                }
                if !any {
                    continue;
                }
                ev.data = data_lines.join("\n");
                return Some(ev);
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next event with data (priming events skipped), or `None` when nothing comes within
    /// `wait` or the stream ends. Unlike `next`, a quiet stream is an answer, not a failure.
    pub async fn next_message(&mut self, wait: Duration) -> Option<SseEvent> {
        loop {
            let ev = tokio::time::timeout(wait, self.next(Duration::from_secs(60)))
                .await
                .ok()??;
            if !ev.data.is_empty() {
                return Some(ev);
            }
        }
    }

    /// Reads until a message with this `method` (e.g. a server-to-client request) and returns it.
    pub async fn until_method(&mut self, method: &str) -> Value {
        while let Some(ev) = self.next(SECS5).await {
            if ev.json()["method"] == method {
                return ev.json();
            }
        }
        panic!("stream ended before a {method} message");
    }

    /// Reads until an event whose JSON has `id` == `id` (a response); returns every event read.
    pub async fn until_response(&mut self, id: &Value, timeout: Duration) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        while let Some(ev) = self.next(timeout).await {
            let done = ev.json().get("id") == Some(id) && ev.json().get("method").is_none();
            seen.push(ev);
            if done {
                return seen;
            }
        }
        panic!("stream ended before response {id}: {seen:?}");
    }
}

pub const SECS5: Duration = Duration::from_secs(5);

/// How long a test waits for something that must happen. Generous: on a loaded 2-core CI a
/// slow answer is not a wrong one; a hang still fails (and nextest ends the test after 3 min).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` every 10 ms until it holds; panics naming `what` after `PATIENCE`.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {PATIENCE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
