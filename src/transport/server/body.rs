//! Body wrappers of the connection server: a request body that must arrive by a deadline
//! (slow-body clients), and a response body that tells its connection when it is done (so a
//! connection streaming a response, such as SSE, is never idle).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::conn::InFlight;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("the request body was not received within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("reading the request body failed")]
    Transport(#[source] hyper::Error),
}

impl BodyReadError {
    /// Whether `e`, or an error it wraps, is a body deadline (handlers see our error inside
    /// axum's and http-body-util's wrappers).
    pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if matches!(err.downcast_ref::<Self>(), Some(Self::Timeout(_))) {
                return true;
            }
            cur = err.source();
        }
        false
    }
}

/// A request body that fails once `deadline` passes before its end. The timer is created only
/// when a read would wait, so bodies that arrive with their head (most of them) cost none.
pub struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Instant,
    allowed: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    pub fn new(inner: hyper::body::Incoming, allowed: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + allowed,
            allowed,
            timer: None,
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyReadError::Transport)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyReadError::Timeout(this.allowed))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding its request's place in the connection's in-flight count until the
/// body ends or is dropped.
pub struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> TrackedBody<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
