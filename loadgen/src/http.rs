//! One HTTP/1.1 keep-alive connection to one server URL, with TCP_NODELAY (small requests
//! would otherwise wait for delayed ACKs), reopened when the server closes it.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// Where a server listens: `http://host:port/path`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`, for both the socket and the `Host` header.
    pub authority: String,
    pub path: String,
    /// `Authorization` sent with every request (a bearer token), if any.
    pub authorization: Option<String>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Arc<Self>> {
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported: {url}");
        }
        let host = uri.host().context("the URL has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        Ok(Arc::new(Self {
            authority: format!("{host}:{port}"),
            path,
            authorization: None,
        }))
    }

    /// The same target with `Authorization: Bearer <token>` on every request.
    pub fn with_bearer(url: &str, token: &str) -> Result<Arc<Self>> {
        let mut target = Arc::unwrap_or_clone(Self::parse(url)?);
        let value = format!("Bearer {}", token.trim());
        http::HeaderValue::from_str(&value).context("the bearer token is not a header value")?;
        target.authorization = Some(value);
        Ok(Arc::new(target))
    }
}

/// A complete (buffered) response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub struct Conn {
    pub target: Arc<Target>,
    sender: Option<http1::SendRequest<Body>>,
}

impl Conn {
    pub async fn open(target: Arc<Target>) -> Result<Self> {
        let mut conn = Self {
            target,
            sender: None,
        };
        conn.connect().await?;
        Ok(conn)
    }

    async fn connect(&mut self) -> Result<()> {
        let tcp = TcpStream::connect(&self.target.authority)
            .await
            .with_context(|| format!("cannot connect to {}", self.target.authority))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            // Ends when either side closes; errors then show up on the next request.
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// A request to this connection's URL with the MCP headers every request carries.
    pub fn request(
        &self,
        method: Method,
        accept: &str,
        session: Option<&str>,
        version: Option<&str>,
    ) -> http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(self.target.path.as_str())
            .header(HOST, self.target.authority.as_str())
            .header(ACCEPT, accept);
        if let Some(s) = session {
            builder = builder.header("mcp-session-id", s);
        }
        if let Some(v) = version {
            builder = builder.header("mcp-protocol-version", v);
        }
        if let Some(a) = &self.target.authorization {
            builder = builder.header(http::header::AUTHORIZATION, a.as_str());
        }
        builder
    }

    /// Sends a request and returns the response head with its body still streaming.
    pub async fn send(&mut self, request: Request<Body>) -> Result<Response<Incoming>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().context("not connected")?;
        if let Err(e) = sender.ready().await {
            self.sender = None;
            return Err(e).context("the connection closed");
        }
        match sender.send_request(request).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.sender = None;
                Err(e).context("the request failed")
            }
        }
    }

    /// Sends a request and reads the whole response body.
    pub async fn exchange(&mut self, request: Request<Body>) -> Result<Reply> {
        let response = self.send(request).await?;
        let (head, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok(Reply {
            status: head.status,
            headers: head.headers,
            body,
        })
    }
}

pub fn json_body(body: Vec<u8>) -> Body {
    Full::new(Bytes::from(body)).boxed()
}

pub fn empty_body() -> Body {
    Empty::new().boxed()
}
