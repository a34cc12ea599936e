//! Replay buffers in memory: per session, a capped deque of events per stream, with a watch
//! channel that wakes live subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::state::{Event, EventLog, ReplayFrom, SessionId, StateResult, StreamKey};

/// How much history a node keeps, so a chatty or abandoned session cannot grow without bound.
#[derive(Debug, Clone, Copy)]
pub struct EventLogLimits {
    /// Events kept per stream; older ones are dropped (a resume from before them gets the rest).
    pub events_per_stream: usize,
    /// Streams kept per session; the oldest finished stream goes first.
    pub streams_per_session: usize,
    /// Bytes of event data kept per stream; the oldest events go first, but the newest event
    /// is always kept (a live reader must get it), so a stream holds at most this plus one
    /// event.
    pub bytes_per_stream: usize,
}

impl EventLogLimits {
    /// Whether a stream of `events` events and `bytes` bytes must drop its oldest event.
    pub fn over(&self, events: usize, bytes: usize) -> bool {
        events > 1 && (events > self.events_per_stream || bytes > self.bytes_per_stream)
    }
}

impl Default for EventLogLimits {
    fn default() -> Self {
        Self {
            events_per_stream: 1000,
            streams_per_session: 32,
            bytes_per_stream: 256 * 1024,
        }
    }
}

struct Buffer {
    events: VecDeque<Event>,
    next_seq: u64,
    /// The last event was appended, or the stream was removed: subscribers end when drained.
    finished: bool,
    bytes: usize,
}

struct Stream {
    buf: Mutex<Buffer>,
    /// Bumped on every append so live subscribers wake.
    wake: watch::Sender<u64>,
    /// Insertion order within the session, for eviction.
    order: u64,
}

impl Stream {
    fn finish(&self) {
        self.buf.lock().finished = true;
        self.wake.send_modify(|v| *v += 1);
    }
}

#[derive(Default)]
struct SessionStreams {
    streams: HashMap<String, Arc<Stream>>,
    next_order: u64,
}

pub struct MemoryEventLog {
    sessions: Mutex<HashMap<SessionId, SessionStreams>>,
    limits: EventLogLimits,
}

impl MemoryEventLog {
    pub fn new(limits: EventLogLimits) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn find(&self, key: &StreamKey) -> Option<Arc<Stream>> {
        let sessions = self.sessions.lock();
        sessions
            .get(&key.session)
            .and_then(|s| s.streams.get(&key.stream))
            .cloned()
    }

    fn create(&self, key: &StreamKey) -> Arc<Stream> {
        let mut sessions = self.sessions.lock();
        let session = sessions.entry(key.session.clone()).or_default();
        if let Some(s) = session.streams.get(&key.stream) {
            return s.clone();
        }
        if session.streams.len() >= self.limits.streams_per_session {
            evict_one(session);
        }
        session.next_order += 1;
        let stream = Arc::new(Stream {
            buf: Mutex::new(Buffer {
                events: VecDeque::new(),
                next_seq: 1,
                finished: false,
                bytes: 0,
            }),
            wake: watch::channel(0).0,
            order: session.next_order,
        });
        session.streams.insert(key.stream.clone(), stream.clone());
        stream
    }
}

/// Drops the oldest finished stream, or the oldest stream when none has finished.
fn evict_one(session: &mut SessionStreams) {
    let victim = session
        .streams
        .iter()
        .min_by_key(|(_, s)| (!s.buf.lock().finished, s.order))
        .map(|(name, _)| name.clone());
    if let Some(name) = victim
        && let Some(s) = session.streams.remove(&name)
    {
        s.finish();
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn open(&self, key: &StreamKey) -> StateResult<()> {
        self.create(key);
        Ok(())
    }

    async fn append(
        &self,
        key: &StreamKey,
        data: Arc<str>,
        last: bool,
    ) -> StateResult<Option<u64>> {
        let Some(stream) = self.find(key) else {
            return Ok(None);
        };
        let seq = {
            let mut buf = stream.buf.lock();
            let seq = buf.next_seq;
            buf.next_seq += 1;
            buf.bytes += data.len();
            buf.events.push_back(Event { seq, data, last });
            while self.limits.over(buf.events.len(), buf.bytes) {
                let Some(old) = buf.events.pop_front() else {
                    break;
                };
                buf.bytes -= old.data.len();
            }
            if last {
                buf.finished = true;
            }
            seq
        };
        stream.wake.send_modify(|v| *v = seq);
        Ok(Some(seq))
    }

    async fn subscribe(
        &self,
        key: &StreamKey,
        from: ReplayFrom,
    ) -> StateResult<Option<BoxStream<'static, Event>>> {
        let Some(stream) = self.find(key) else {
            return Ok(None);
        };
        let rx = stream.wake.subscribe();
        let cursor = match from {
            ReplayFrom::Start => 0,
            ReplayFrom::After(seq) => seq,
            ReplayFrom::Live => stream.buf.lock().next_seq - 1,
        };
        let state = (stream, rx, cursor, false);
        let events = stream::unfold(state, |(stream, mut rx, cursor, done)| async move {
            if done {
                return None;
            }
            loop {
                let (next, finished) = {
                    let buf = stream.buf.lock();
                    (
                        buf.events.iter().find(|e| e.seq > cursor).cloned(),
                        buf.finished,
                    )
                };
                if let Some(ev) = next {
                    let seq = ev.seq;
                    let last = ev.last;
                    return Some((ev, (stream, rx, seq, last)));
                }
                if finished {
                    return None;
                }
                rx.borrow_and_update();
                // Re-check after marking seen: an append between the check and here must wake us.
                let appended = stream
                    .buf
                    .lock()
                    .events
                    .back()
                    .is_some_and(|e| e.seq > cursor);
                if !appended && rx.changed().await.is_err() {
                    return None;
                }
            }
        });
        Ok(Some(events.boxed()))
    }

    async fn remove_session(&self, session: &SessionId) -> StateResult<()> {
        let removed = self.sessions.lock().remove(session);
        if let Some(streams) = removed {
            for s in streams.streams.values() {
                s.finish();
            }
        }
        Ok(())
    }

    fn footprint(&self) -> (usize, usize, usize) {
        let sessions = self.sessions.lock();
        let mut streams = 0;
        let mut events = 0;
        let mut bytes = 0;
        for s in sessions.values() {
            for st in s.streams.values() {
                let buf = st.buf.lock();
                streams += 1;
                events += buf.events.len();
                bytes += buf.bytes;
            }
        }
        (streams, events, bytes)
    }
}
