//! Server-Sent Events framing and responses: `id:`/`event:`/`data:` frames, a `retry:` hint,
//! keep-alive comments, and the headers that stop proxies from buffering or compressing.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::oneshot;

use crate::state::{Event, StreamKey};

/// How events of one stream are written.
#[derive(Debug, Clone)]
pub struct SseOptions {
    pub keepalive: Duration,
    pub retry_ms: u64,
    /// Empty-data events are priming events; older clients crash on them, so they are skipped
    /// unless the negotiated version is >= 2025-11-25.
    pub priming: bool,
    /// `event:` name on every data frame (`message` for the legacy HTTP+SSE transport).
    pub event_name: Option<&'static str>,
}

pub fn frame(id: Option<&str>, event: Option<&str>, data: &str, retry_ms: Option<u64>) -> Bytes {
    let mut out = String::with_capacity(data.len() + 48);
    if let Some(r) = retry_ms {
        out.push_str(&format!("retry: {r}\n"));
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    // JSON text has no raw newlines, but split anyway so a frame can never be broken.
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// Turns a stream of buffered events into SSE bytes, with keep-alives while it is quiet.
/// `prelude` goes first (e.g. the legacy `endpoint` event); when `close` fires, the body ends
/// early after the events already available (the stream itself goes on in the replay buffer);
/// `guard` lives as long as the response body, so dropping the connection runs its `Drop`.
pub fn body<G: Send + 'static>(
    key: StreamKey,
    events: BoxStream<'static, Event>,
    opts: SseOptions,
    prelude: Option<Bytes>,
    close: Option<oneshot::Receiver<()>>,
    guard: G,
) -> BoxStream<'static, Bytes> {
    struct State<G> {
        key: StreamKey,
        events: BoxStream<'static, Event>,
        opts: SseOptions,
        ticker: tokio::time::Interval,
        retry_sent: bool,
        close: Option<oneshot::Receiver<()>>,
        _guard: G,
    }
    let mut ticker = tokio::time::interval(opts.keepalive);
    ticker.reset(); // first tick after one period, not at once
    let state = State {
        key,
        events,
        opts,
        ticker,
        retry_sent: false,
        close,
        _guard: guard,
    };
    let frames = futures::stream::unfold(state, |mut st| async move {
        loop {
            let closing = async {
                match st.close.as_mut() {
                    Some(rx) => rx.await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                ev = st.events.next() => {
                    let ev = ev?;
                    if ev.data.is_empty() && !st.opts.priming {
                        continue;
                    }
                    let retry = (!st.retry_sent).then_some(st.opts.retry_ms);
                    st.retry_sent = true;
                    let id = st.key.event_id(ev.seq);
                    let name = if ev.data.is_empty() { None } else { st.opts.event_name };
                    let bytes = frame(Some(&id), name, &ev.data, retry);
                    return Some((bytes, st));
                }
                closed = closing => {
                    if closed {
                        return None;
                    }
                    st.close = None; // the sender went away without asking to close
                }
                _ = st.ticker.tick() => return Some((Bytes::from_static(KEEPALIVE), st)),
            }
        }
    });
    match prelude {
        Some(p) => futures::stream::once(async move { p })
            .chain(frames)
            .boxed(),
        None => frames.boxed(),
    }
}

pub fn response(frames: BoxStream<'static, Bytes>) -> Response {
    response_from_body(Body::from_stream(frames.map(Ok::<_, Infallible>)))
}

/// An SSE response around any body: the stream headers that keep proxies from buffering.
pub fn response_from_body(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_retry_id_event_and_data() {
        let f = frame(Some("p1-2"), Some("message"), "{\"a\":1}", Some(1000));
        assert_eq!(
            &f[..],
            b"retry: 1000\nid: p1-2\nevent: message\ndata: {\"a\":1}\n\n"
        );
        let f = frame(None, None, "a\nb", None);
        assert_eq!(&f[..], b"data: a\ndata: b\n\n");
    }
}
