//! The connection server under the router: accepts TCP connections (TCP_NODELAY, a cap that
//! sheds the newest connection, never the listener), serves each with hyper (HTTP/1.1 and
//! h2c), applies the header, idle and body deadlines, and drains on shutdown within a grace
//! period. `axum::serve` has none of these limits, which let idle and slow clients hold every
//! file descriptor.

mod body;
mod conn;
pub mod fd_limit;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

pub use body::BodyReadError;
use body::{DeadlineBody, TrackedBody};
use conn::{ConnWatch, Expiry, WatchedIo};

/// The limits the server applies to every connection.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl ServerLimits {
    pub fn from_config(l: &crate::config::HttpLimits) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(l.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
            body_read_timeout: Duration::from_secs(l.body_read_timeout_secs),
            max_connections: l
                .max_connections
                .unwrap_or_else(fd_limit::default_max_connections),
            shutdown_grace: Duration::from_secs(l.shutdown_grace_secs),
        }
    }
}

/// What a shed connection reads before it is closed.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
content-type: text/plain\r\ncontent-length: 38\r\nretry-after: 1\r\n\r\n\
too many connections: try again later\n";

/// Longest pause after an accept error that is about resources (EMFILE, ENFILE, ENOBUFS).
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in progress
/// finish for `limits.shutdown_grace` and closes what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let draining = CancellationToken::new();
    let closing = CancellationToken::new();
    let tracker = TaskTracker::new();
    let shed_log = LogEvery::new(Duration::from_secs(10));
    let accept_log = LogEvery::new(Duration::from_secs(10));
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(c) => {
                backoff = Duration::ZERO;
                c
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // EMFILE and friends: the pending connection stays queued, so accepting again at
                // once would spin. Pause, then go on: the listener must outlive the shortage.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_BACKOFF);
                accept_log
                    .warn(|n| tracing::warn!(error = %e, times = n, "accept failed; pausing"));
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shed(&stream);
            shed_log.warn(|n| {
                tracing::warn!(
                    max = limits.max_connections,
                    shed = n,
                    "connection limit reached: new connections are answered 503"
                )
            });
            continue;
        };
        // Without TCP_NODELAY every small response waits for the peer's delayed ACK (~40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        tracker.spawn(connection(
            stream,
            remote,
            Served {
                router: router.clone(),
                builder: builder.clone(),
                limits: limits.clone(),
                draining: draining.clone(),
                closing: closing.clone(),
                _permit: permit,
            },
        ));
    }
    drop(listener);
    draining.cancel();
    tracker.close();
    if tokio::time::timeout(limits.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "shutdown grace period over: closing the remaining connections"
        );
        closing.cancel();
        tracker.wait().await;
    }
    Ok(())
}

/// What each connection task holds; the permit returns to the cap when the task ends.
struct Served {
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<ServerLimits>,
    /// Shutdown began: finish what is in flight, take nothing new.
    draining: CancellationToken,
    /// The grace period is over: drop the connection.
    closing: CancellationToken,
    _permit: OwnedSemaphorePermit,
}

async fn connection(stream: TcpStream, remote: SocketAddr, s: Served) {
    let watch = ConnWatch::new();
    let io = TokioIo::new(WatchedIo {
        stream,
        watch: watch.clone(),
    });
    let body_timeout = s.limits.body_read_timeout;
    let service_watch = watch.clone();
    let router = s.router.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = service_watch.start_request();
        let mut req = req.map(|b| DeadlineBody::new(b, body_timeout));
        req.extensions_mut().insert(ConnectInfo(remote));
        let mut router = router.clone();
        async move {
            let resp = router.call(req).await?;
            Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, in_flight)))
        }
    });
    let conn = s.builder.serve_connection(io, service);
    tokio::pin!(conn);
    let timer = tokio::time::sleep(s.limits.idle_timeout);
    tokio::pin!(timer);
    // Once closing gracefully (idle, or shutdown) the deadlines are done: hyper closes an idle
    // HTTP/1 connection at once, an HTTP/2 one after its GOAWAY, and shutdown has its grace.
    let mut graceful = false;
    loop {
        let next = if graceful {
            None
        } else {
            watch.deadline(&s.limits)
        };
        if let Some((at, _)) = next {
            timer.as_mut().reset(at);
        }
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return;
            }
            _ = watch.changed() => {}
            _ = &mut timer, if next.is_some() => {
                match watch.deadline(&s.limits) {
                    Some((at, Expiry::Head)) if at <= Instant::now() => {
                        tracing::debug!(%remote, "request head not received in time: closing");
                        return;
                    }
                    Some((at, Expiry::Idle)) if at <= Instant::now() => {
                        conn.as_mut().graceful_shutdown();
                        graceful = true;
                    }
                    _ => {}
                }
            }
            _ = s.draining.cancelled(), if !graceful => {
                conn.as_mut().graceful_shutdown();
                graceful = true;
            }
            _ = s.closing.cancelled() => return,
        }
    }
}

/// Answers 503 without reading the request and closes: cheaper than serving, and the client
/// learns why. A write that would block is skipped; the close alone also tells it.
fn shed(stream: &TcpStream) {
    let _ = stream.try_write(SHED_RESPONSE);
}

/// Errors about one connection (it went away while queued); the next accept is unaffected.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// A warning that a flood could repeat thousands of times a second, written at most once per
/// `every` with the count since the last one.
struct LogEvery {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogEvery {
    fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    fn warn(&self, log: impl FnOnce(u64)) {
        let mut s = self.state.lock();
        s.1 += 1;
        let now = Instant::now();
        if s.0.is_none_or(|last| now >= last + self.every) {
            let n = s.1;
            *s = (Some(now), 0);
            drop(s);
            log(n);
        }
    }
}
