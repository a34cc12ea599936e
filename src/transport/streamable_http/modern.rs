//! The stateless era on the same endpoint (MCP 2026-07-28 basic/transports/streamable-http):
//! no session; the headers `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`
//! must agree with the body; answers are JSON, or SSE carrying only notifications related to
//! the request; closing the response cancels the work; `subscriptions/listen` is a long-lived
//! stream fed from the bus.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::auth::Principal;
use crate::catalog::Catalog;
use crate::engine::modern::{self, ModernMeta};
use crate::engine::{Call, Outgoing};
use crate::protocol::{Message, PartitionKey, Request, Response as RpcResponse, RpcError, codes};
use crate::transport::HttpState;
use crate::transport::http::{VERSION_HEADER, accepted, header_str, json_response};
use crate::transport::http_error::HttpError;
use crate::transport::sse;

const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

/// Whether a POST without a session belongs to the stateless era: its body carries modern
/// `_meta`, or its version header names something that is not a legacy revision.
pub fn is_modern(headers: &HeaderMap, message: &Message) -> bool {
    let params = match message {
        Message::Request(r) => r.params.as_ref(),
        Message::Notification(n) => n.params.as_ref(),
        Message::Response(_) => None,
    };
    let header_is_modern = header_str(headers, VERSION_HEADER)
        .is_some_and(|v| crate::protocol::ProtocolVersion::parse(v).is_none());
    modern::has_modern_meta(params) || header_is_modern
}

fn mismatch(id: Option<&Request>, message: String) -> HttpError {
    let mut e = HttpError::new(StatusCode::BAD_REQUEST, codes::HEADER_MISMATCH, message);
    e.id = id.map(|r| r.id.clone());
    e
}

fn rpc_error(status: StatusCode, req: &Request, error: RpcError) -> HttpError {
    HttpError {
        status,
        error,
        id: Some(req.id.clone()),
        challenge: None,
    }
}

/// Decodes `=?base64?…?=` header values (strict base64); anything else is literal.
fn decode_header(raw: &str) -> Result<String, ()> {
    let v = raw.trim();
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(()),
        None => Ok(v.to_string()),
    }
}

pub async fn handle(
    state: &HttpState,
    principal: Principal,
    partition: PartitionKey,
    headers: &HeaderMap,
    message: Message,
) -> Result<Response, HttpError> {
    let req = match message {
        Message::Request(r) => r,
        // Notifications need no answer; clients must not send responses in this era.
        Message::Notification(_) => return Ok(accepted()),
        Message::Response(_) => {
            return Err(HttpError::invalid_request(
                "the stateless protocol has no server-to-client requests to answer",
            ));
        }
    };
    let catalog = state
        .engine
        .catalog(&partition)
        .await
        .map_err(|e| rpc_error(StatusCode::INTERNAL_SERVER_ERROR, &req, e))?;
    let meta = check(&catalog, headers, &req)?;
    if !modern::serves(&req.method) {
        return Err(rpc_error(
            StatusCode::NOT_FOUND,
            &req,
            RpcError::method_not_found(&req.method),
        ));
    }
    if req.method == "subscriptions/listen" {
        return super::listen::listen(state, &partition, &req).await;
    }
    run(state, principal, partition, meta, req).await
}

/// Validates `_meta` and the headers against the body, in the order the spec's errors need:
/// missing `_meta` (-32602), header/body disagreement (-32020), unsupported version (-32022).
fn check(catalog: &Catalog, headers: &HeaderMap, req: &Request) -> Result<ModernMeta, HttpError> {
    let params = req.params.as_ref();
    let meta_version =
        modern::declared_version(params).map_err(|e| rpc_error(StatusCode::BAD_REQUEST, req, e))?;
    match header_str(headers, VERSION_HEADER).map(str::trim) {
        None => {
            return Err(mismatch(
                Some(req),
                "MCP-Protocol-Version header is required".into(),
            ));
        }
        Some(h) if h != meta_version => {
            return Err(mismatch(
                Some(req),
                format!(
                    "MCP-Protocol-Version header '{h}' does not match _meta protocol version '{meta_version}'"
                ),
            ));
        }
        Some(_) => {}
    }
    let meta =
        ModernMeta::from_params(params).map_err(|e| rpc_error(StatusCode::BAD_REQUEST, req, e))?;

    let method = header_str(headers, METHOD_HEADER).map(decode_header);
    match method {
        Some(Ok(m)) if m == req.method => {}
        Some(Ok(m)) => {
            return Err(mismatch(
                Some(req),
                format!(
                    "Mcp-Method header '{m}' does not match the body method '{}'",
                    req.method
                ),
            ));
        }
        Some(Err(())) => {
            return Err(mismatch(
                Some(req),
                "Mcp-Method header is not valid base64".into(),
            ));
        }
        None => return Err(mismatch(Some(req), "Mcp-Method header is required".into())),
    }
    let name_field = match req.method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body = params
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match header_str(headers, NAME_HEADER).map(decode_header) {
            Some(Ok(n)) if n == body => {}
            Some(Ok(n)) => {
                return Err(mismatch(
                    Some(req),
                    format!("Mcp-Name header '{n}' does not match the body {field} '{body}'"),
                ));
            }
            Some(Err(())) => {
                return Err(mismatch(
                    Some(req),
                    "Mcp-Name header is not valid base64".into(),
                ));
            }
            None => return Err(mismatch(Some(req), "Mcp-Name header is required".into())),
        }
    }
    if req.method == "tools/call" {
        check_param_headers(catalog, headers, req)?;
    }
    Ok(meta)
}

/// Tool parameters marked `x-mcp-header: H` travel also as `Mcp-Param-H`; the two must agree.
fn check_param_headers(
    catalog: &Catalog,
    headers: &HeaderMap,
    req: &Request,
) -> Result<(), HttpError> {
    let params = req.params.as_ref();
    let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(tool) = catalog.tool(name) else {
        return Ok(());
    };
    let Some(props) = tool
        .listing
        .pointer("/inputSchema/properties")
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    let args = params.and_then(|p| p.get("arguments"));
    for (prop, schema) in props {
        let Some(header) = schema.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let header_name = format!("mcp-param-{}", header.to_ascii_lowercase());
        let body = args.and_then(|a| a.get(prop));
        let sent = header_str(headers, &header_name).map(decode_header);
        match (body, sent) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(mismatch(
                    Some(req),
                    format!("Mcp-Param-{header} header is required for '{prop}'"),
                ));
            }
            (None, Some(_)) => {
                return Err(mismatch(
                    Some(req),
                    format!(
                        "Mcp-Param-{header} header is set but '{prop}' is not in the arguments"
                    ),
                ));
            }
            (_, Some(Err(()))) => {
                return Err(mismatch(
                    Some(req),
                    format!("Mcp-Param-{header} header is not valid base64"),
                ));
            }
            (Some(b), Some(Ok(h))) => {
                let equal = match b {
                    Value::String(s) => *s == h,
                    Value::Number(n) => h.parse::<f64>().ok() == n.as_f64(),
                    Value::Bool(v) => h == v.to_string(),
                    _ => false,
                };
                if !equal {
                    return Err(mismatch(
                        Some(req),
                        format!("Mcp-Param-{header} header does not match argument '{prop}'"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Runs one stateless request. Plain JSON when nothing is sent before the result; otherwise
/// SSE carrying the request's notifications and then the result. Dropping the response (the
/// client closed it) cancels the work.
async fn run(
    state: &HttpState,
    principal: Principal,
    partition: PartitionKey,
    meta: ModernMeta,
    req: Request,
) -> Result<Response, HttpError> {
    let cancel = CancellationToken::new();
    let guard = cancel.clone().drop_guard();
    let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(64);
    let call = Call {
        principal,
        partition,
        session: None,
        out: Some(out_tx),
        modern: Some(meta),
        cancel: Some(cancel),
    };
    let engine = state.engine.clone();
    let mut work = tokio::spawn(async move { engine.handle_request(call, req).await });
    let mut messages_open = true;
    let first = loop {
        tokio::select! {
            biased;
            m = out_rx.recv(), if messages_open => match m {
                Some(Outgoing::Message(m)) => break m,
                Some(Outgoing::CloseStream) => continue, // nothing to resume in this era
                None => messages_open = false,
            },
            done = &mut work => {
                let resp = done.map_err(|_| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL_ERROR, "Internal error"))?;
                if let Ok(Outgoing::Message(m)) = out_rx.try_recv() {
                    return Ok(stream_response(vec![m], out_rx, Work::Done(resp), guard));
                }
                return Ok(json_answer(resp));
            }
        }
    };
    Ok(stream_response(
        vec![first],
        out_rx,
        Work::Running(work),
        guard,
    ))
}

/// HTTP status of a stateless-era error result (spec: capability errors are 400).
fn json_answer(resp: Option<RpcResponse>) -> Response {
    let Some(resp) = resp else { return accepted() };
    let status = match &resp.outcome {
        Err(e) if e.code == codes::MISSING_REQUIRED_CLIENT_CAPABILITY => StatusCode::BAD_REQUEST,
        Err(e) if e.code == codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    let mut r = json_response(&resp.to_value(), None);
    *r.status_mut() = status;
    r
}

/// The request's state when the answer switches to SSE.
enum Work {
    Running(tokio::task::JoinHandle<Option<RpcResponse>>),
    Done(Option<RpcResponse>),
}

fn stream_response(
    first: Vec<Value>,
    mut out_rx: mpsc::Receiver<Outgoing>,
    work: Work,
    guard: DropGuard,
) -> Response {
    let frames = async_stream(first, move |tx| async move {
        let response = match work {
            Work::Done(r) => r,
            Work::Running(mut handle) => {
                let mut messages_open = true;
                loop {
                    tokio::select! {
                        biased;
                        m = out_rx.recv(), if messages_open => match m {
                            Some(Outgoing::Message(m)) => {
                                if tx.send(m).await.is_err() {
                                    return;
                                }
                            }
                            Some(Outgoing::CloseStream) => {}
                            None => messages_open = false,
                        },
                        r = &mut handle => break r.ok().flatten(),
                    }
                }
            }
        };
        while let Ok(Outgoing::Message(m)) = out_rx.try_recv() {
            let _ = tx.send(m).await;
        }
        if let Some(resp) = response {
            let _ = tx.send(resp.to_value()).await;
        }
    });
    // The guard lives as long as the body: a client that hangs up cancels the request.
    let body = frames.map(move |v| {
        let _keep = &guard;
        Ok::<_, Infallible>(sse::frame(None, None, &v.to_string(), None))
    });
    sse::response_from_body(Body::from_stream(body))
}

/// A stream fed by a task: the first values, then whatever `producer` sends.
fn async_stream<F, Fut>(
    first: Vec<Value>,
    producer: F,
) -> futures::stream::BoxStream<'static, Value>
where
    F: FnOnce(mpsc::Sender<Value>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Value>(64);
    let task = tokio::spawn(producer(tx));
    let rest = tokio_stream::wrappers::ReceiverStream::new(rx);
    // Abort the producer when the body goes away.
    let abort = AbortOnDrop(task);
    futures::stream::iter(first)
        .chain(rest)
        .map(move |v| {
            let _keep = &abort;
            v
        })
        .boxed()
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
