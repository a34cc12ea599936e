//! One client connection: what phase it is in (waiting between requests, receiving a request
//! head, serving requests) and the deadline each phase has. hyper's own header timeout starts
//! when a connection is ready for its next request, so it cannot tell a slow header from an
//! idle keep-alive; this follows Go's net/http instead: the idle timeout runs until the first
//! byte of a request, then the header timeout until hyper has the whole head. While any
//! request or response body is in progress (an SSE stream included) there is no deadline here.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ServerLimits;

#[derive(Debug)]
struct Phase {
    /// Requests whose response has not ended (HTTP/2 may have many).
    in_flight: usize,
    /// When the first byte of the next request head arrived, while none is in flight.
    head_since: Option<Instant>,
    /// When the connection last had nothing in flight (opened, or its last response ended).
    idle_since: Instant,
}

/// What the connection's deadline is for when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A request head started but did not complete in time (slowloris): drop the connection.
    Head,
    /// Nothing was asked for in time: close the connection gracefully.
    Idle,
}

/// Shared by the connection's I/O, its service and its driver.
#[derive(Debug)]
pub struct ConnWatch {
    phase: Mutex<Phase>,
    /// Wakes the driver when the phase changes, so it can move its deadline.
    changed: Notify,
}

impl ConnWatch {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                head_since: None,
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    /// Bytes came in: with nothing in flight, they start a request head.
    fn bytes_read(&self) {
        let mut p = self.phase.lock();
        if p.in_flight == 0 && p.head_since.is_none() {
            p.head_since = Some(Instant::now());
            drop(p);
            self.changed.notify_one();
        }
    }

    /// hyper parsed a request head and calls the service: the request is in flight until the
    /// returned guard drops (with its response body).
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        let mut p = self.phase.lock();
        p.in_flight += 1;
        p.head_since = None;
        InFlight(self.clone())
    }

    fn end_request(&self) {
        let mut p = self.phase.lock();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.idle_since = Instant::now();
            p.head_since = None;
            drop(p);
            self.changed.notify_one();
        }
    }

    /// The next deadline and what it is for; `None` while a request is in flight.
    pub fn deadline(&self, limits: &ServerLimits) -> Option<(Instant, Expiry)> {
        let p = self.phase.lock();
        if p.in_flight > 0 {
            return None;
        }
        Some(match p.head_since {
            Some(t) => (t + limits.header_read_timeout, Expiry::Head),
            None => (p.idle_since + limits.idle_timeout, Expiry::Idle),
        })
    }

    /// Resolves when the phase changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// One request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<ConnWatch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// The TCP stream, telling the watch when bytes arrive.
pub struct WatchedIo {
    pub stream: TcpStream,
    pub watch: Arc<ConnWatch>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.bytes_read();
        }
        res
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(5),
            max_connections: 4,
            shutdown_grace: Duration::from_secs(1),
        }
    }

    #[test]
    fn phases_move_the_deadline() {
        let w = ConnWatch::new();
        let opened = Instant::now();
        let (at, kind) = w.deadline(&limits()).unwrap();
        assert_eq!(
            kind,
            Expiry::Idle,
            "a new connection waits for its first byte"
        );
        assert!(at <= opened + Duration::from_secs(30));
        w.bytes_read();
        let (at, kind) = w.deadline(&limits()).unwrap();
        assert_eq!(
            kind,
            Expiry::Head,
            "the first byte starts the header timeout"
        );
        assert!(at >= opened + Duration::from_secs(2) && at < opened + Duration::from_secs(30));
        let a = w.start_request();
        let b = w.start_request();
        assert_eq!(w.deadline(&limits()), None, "in flight: no deadline");
        w.bytes_read();
        drop(a);
        assert_eq!(w.deadline(&limits()), None, "one still in flight");
        let before_end = Instant::now();
        drop(b);
        let (at, kind) = w.deadline(&limits()).unwrap();
        assert_eq!(kind, Expiry::Idle, "bytes read while busy start no head");
        assert!(
            at >= before_end + Duration::from_secs(30),
            "idle counts from the last response"
        );
    }
}
