//! Replay buffers as Redis Streams, one per SSE stream of a session, capped (events and bytes,
//! exactly: `redis/scripts/append_event.lua`) and expiring with the session. A Redis entry id `<ms>-<n>` is the event's sequence number `ms << 16 | n`, so
//! `Last-Event-ID` resumes on any node and ids keep increasing even if a buffer expires and is
//! recreated. Live readers follow the session's pub/sub channel; after a reconnect they re-read
//! the stream from their cursor, so nothing that reached the buffer is missed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use redis::Script;
use redis::streams::StreamRangeReply;

use super::conn::Redis;
use super::keys::Keys;
use super::pubsub::{EVENTS_CAPACITY, Hub, Note, Subscription};
use crate::state::memory::EventLogLimits;
use crate::state::{
    Event, EventLog, ReplayFrom, SessionId, StateError, StateErrorKind, StateResult, StreamKey,
};

static OPEN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/open_stream.lua")));
static APPEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../../redis/scripts/append_event.lua")));
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(include_str!(
        "../../../redis/scripts/remove_session_streams.lua"
    ))
});

/// Entries read per `XRANGE` while replaying.
const REPLAY_PAGE: usize = 256;
/// How often, and how far apart, a live reader retries a failed replay before it gives up.
const REPLAY_RETRIES: u32 = 20;
const REPLAY_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

pub struct RedisEventLog {
    redis: Redis,
    hub: Hub,
    keys: Keys,
    ttl_ms: u64,
    limits: EventLogLimits,
}

impl RedisEventLog {
    pub fn new(redis: Redis, hub: Hub, keys: Keys, ttl_ms: u64, limits: EventLogLimits) -> Self {
        Self {
            redis,
            hub,
            keys,
            ttl_ms,
            limits,
        }
    }
}

/// `<ms>-<n>` -> `ms << 16 | n`.
fn seq_of(id: &str) -> StateResult<u64> {
    let bad = || StateError {
        kind: StateErrorKind::Internal,
        cause: format!("unexpected stream entry id {id}"),
    };
    let (ms, n) = id.split_once('-').ok_or_else(bad)?;
    let ms: u64 = ms.parse().map_err(|_| bad())?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    if n >= 1 << 16 || ms >= 1 << 47 {
        return Err(bad());
    }
    Ok(ms << 16 | n)
}

/// `seq` -> `<ms>-<n>`.
fn id_of(seq: u64) -> String {
    format!("{}-{}", seq >> 16, seq & 0xffff)
}

#[async_trait]
impl EventLog for RedisEventLog {
    async fn open(&self, key: &StreamKey) -> StateResult<()> {
        let mut call = OPEN.prepare_invoke();
        call.key(self.keys.stream_index(&key.session))
            .key(self.keys.stream(key))
            .key(self.keys.stream_bytes(&key.session))
            .arg(&key.stream)
            .arg(self.ttl_ms)
            .arg(self.limits.streams_per_session.max(1))
            .arg(self.keys.stream_prefix(&key.session))
            .arg(self.keys.events_channel(&key.session));
        let _created: i64 = self.redis.script(call).await?;
        Ok(())
    }

    async fn append(
        &self,
        key: &StreamKey,
        data: Arc<str>,
        last: bool,
    ) -> StateResult<Option<u64>> {
        let lives_with_session =
            key.stream == StreamKey::GET_STREAM || key.stream == StreamKey::LEGACY_SSE_STREAM;
        let mut call = APPEND.prepare_invoke();
        call.key(self.keys.stream_index(&key.session))
            .key(self.keys.stream(key))
            .key(self.keys.session(&key.session))
            .key(self.keys.stream_bytes(&key.session))
            .arg(&key.stream)
            .arg(&*data)
            .arg(if last { "1" } else { "0" })
            .arg(self.ttl_ms)
            .arg(self.limits.events_per_stream.max(1))
            .arg(self.keys.events_channel(&key.session))
            .arg(if lives_with_session { "1" } else { "0" })
            .arg(self.limits.bytes_per_stream.max(1));
        let id: Option<String> = self.redis.script(call).await?;
        id.map(|id| seq_of(&id)).transpose()
    }

    async fn subscribe(
        &self,
        key: &StreamKey,
        from: ReplayFrom,
    ) -> StateResult<Option<BoxStream<'static, Event>>> {
        // Subscribe first: whatever is appended from here on reaches us live or by replay.
        let live = self
            .hub
            .subscribe(&self.keys.events_channel(&key.session), EVENTS_CAPACITY)
            .await?;
        let stream_key = self.keys.stream(key);
        let exists: bool = self
            .redis
            .query(redis::cmd("EXISTS").arg(&stream_key))
            .await?;
        if !exists {
            return Ok(None);
        }
        let (cursor, replay) = match from {
            ReplayFrom::Start => (0, true),
            ReplayFrom::After(seq) => (seq, true),
            ReplayFrom::Live => {
                let newest: StreamRangeReply = self
                    .redis
                    .query(
                        redis::cmd("XREVRANGE")
                            .arg(&stream_key)
                            .arg("+")
                            .arg("-")
                            .arg("COUNT")
                            .arg(1),
                    )
                    .await?;
                let cursor = match newest.ids.first() {
                    Some(e) => seq_of(&e.id)?,
                    None => 0,
                };
                (cursor, false)
            }
        };
        let reader = Reader {
            redis: self.redis.clone(),
            stream_key,
            name: key.stream.clone(),
            live,
            cursor,
            replay,
            pending: VecDeque::new(),
            done: false,
        };
        Ok(Some(
            stream::unfold(reader, |mut r| async move {
                let ev = r.next().await?;
                Some((ev, r))
            })
            .boxed(),
        ))
    }

    async fn remove_session(&self, session: &SessionId) -> StateResult<()> {
        let mut call = REMOVE.prepare_invoke();
        call.key(self.keys.stream_index(session))
            .key(self.keys.stream_bytes(session))
            .arg(self.keys.stream_prefix(session))
            .arg(self.keys.events_channel(session));
        let _removed: i64 = self.redis.script(call).await?;
        Ok(())
    }

    /// Buffers live in Redis: this node holds none.
    fn footprint(&self) -> (usize, usize, usize) {
        (0, 0, 0)
    }
}

/// One reader of one stream: replays from its cursor when asked to (start, resume, resync),
/// otherwise follows the session's channel, skipping what it already delivered.
struct Reader {
    redis: Redis,
    stream_key: String,
    name: String,
    live: Subscription,
    /// The last sequence number delivered (or the position a reader starts after).
    cursor: u64,
    replay: bool,
    pending: VecDeque<Event>,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                if ev.seq <= self.cursor {
                    continue;
                }
                self.cursor = ev.seq;
                self.done = ev.last;
                return Some(ev);
            }
            if self.done {
                return None;
            }
            if self.replay {
                self.replay_page().await?;
                continue;
            }
            match self.live.next().await? {
                Note::Resync => self.replay = true,
                Note::Message(text) => match parse(&text, &self.name) {
                    Live::Event(ev) => self.pending.push_back(ev),
                    Live::End => return None,
                    Live::Other => {}
                },
            }
        }
    }

    /// Reads the next page, retrying while Redis comes back (a resync right after a restart
    /// can race the command connection's reconnect). `None` after `REPLAY_RETRIES` failures:
    /// the stream ends and its client resumes with `Last-Event-ID`.
    async fn replay_page(&mut self) -> Option<()> {
        for attempt in 0..REPLAY_RETRIES {
            match self.read_page().await {
                Ok(()) => return Some(()),
                Err(e) => {
                    tracing::debug!(stream = %self.stream_key, attempt, error = %e, "replay failed; retrying");
                    tokio::time::sleep(REPLAY_RETRY_PAUSE).await;
                }
            }
        }
        None
    }

    async fn read_page(&mut self) -> StateResult<()> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&self.stream_key)
            .arg(format!("({}", id_of(self.cursor)))
            .arg("+")
            .arg("COUNT")
            .arg(REPLAY_PAGE);
        let page: StreamRangeReply = self.redis.query(&cmd).await?;
        if page.ids.len() < REPLAY_PAGE {
            self.replay = false;
        }
        if page.ids.is_empty() {
            let exists: bool = self
                .redis
                .query(redis::cmd("EXISTS").arg(&self.stream_key))
                .await?;
            self.done = !exists; // removed while we were not listening
        }
        for entry in page.ids {
            let Some(data) = entry.get::<String>("d") else {
                continue; // the marker that created the stream
            };
            let last = entry.get::<String>("l").is_some_and(|l| l == "1");
            self.pending.push_back(Event {
                seq: seq_of(&entry.id)?,
                data: data.into(),
                last,
            });
        }
        Ok(())
    }
}

enum Live {
    Event(Event),
    End,
    Other,
}

/// A message on a session's channel: `<stream>\n<id>\n<last>\n<data>`, `!end\n<stream>` or
/// `!endall`.
fn parse(text: &str, mine: &str) -> Live {
    if text == "!endall" {
        return Live::End;
    }
    if let Some(name) = text.strip_prefix("!end\n") {
        return if name == mine { Live::End } else { Live::Other };
    }
    let mut parts = text.splitn(4, '\n');
    let (Some(name), Some(id), Some(last), Some(data)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Live::Other;
    };
    if name != mine {
        return Live::Other;
    }
    match seq_of(id) {
        Ok(seq) => Live::Event(Event {
            seq,
            data: data.into(),
            last: last == "1",
        }),
        Err(_) => Live::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_and_sequence_numbers_round_trip() {
        let seq = seq_of("1795313582822-3").unwrap();
        assert_eq!(id_of(seq), "1795313582822-3");
        assert!(seq_of("1795313582822-4").unwrap() > seq);
        assert!(seq_of("1795313582823-0").unwrap() > seq_of("1795313582822-65535").unwrap());
        assert!(seq_of("1-65536").is_err());
        assert!(seq_of("nope").is_err());
    }

    #[test]
    fn channel_messages_are_filtered_by_stream() {
        assert!(
            matches!(parse("g\n5-0\n0\n{\"a\":1}", "g"), Live::Event(e) if e.seq == 5 << 16 && &*e.data == "{\"a\":1}")
        );
        assert!(matches!(parse("p1\n5-0\n0\nx", "g"), Live::Other));
        assert!(matches!(parse("!end\ng", "g"), Live::End));
        assert!(matches!(parse("!end\np1", "g"), Live::Other));
        assert!(matches!(parse("!endall", "g"), Live::End));
        assert!(matches!(parse("garbage", "g"), Live::Other));
    }
}
