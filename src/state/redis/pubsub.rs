//! One pub/sub connection per node, shared by every reader on the node: a channel is
//! subscribed in Redis while at least one local reader wants it, and each message is fanned
//! out locally. The connection is re-established after Redis restarts; readers then get
//! `Note::Resync` so they can re-read what they may have missed from the replay streams.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::conn::failure;
use crate::state::{StateError, StateErrorKind, StateResult};

/// Messages a local reader of a session's events may fall behind by before it is told to
/// resync (it then re-reads the replay stream, so a small buffer loses nothing). Each open
/// stream has one, so this is most of a GET stream's memory.
pub const EVENTS_CAPACITY: usize = 16;
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_millis(500);

/// What a local reader receives.
#[derive(Debug, Clone)]
pub enum Note {
    Message(Arc<str>),
    /// Messages may have been lost (reconnect or a slow reader): re-read durable state.
    Resync,
}

struct Entry {
    tx: broadcast::Sender<Note>,
    /// True once Redis confirmed the subscription on the current connection.
    ready: watch::Sender<bool>,
}

enum Command {
    Subscribe(String, oneshot::Sender<StateResult<()>>),
    Unsubscribe(String),
}

struct Inner {
    channels: Mutex<HashMap<String, Entry>>,
    commands: mpsc::UnboundedSender<Command>,
    timeout: Duration,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// Starts the connection task; it runs until the hub is dropped.
    pub fn start(client: redis::Client, timeout: Duration) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            channels: Mutex::new(HashMap::new()),
            commands,
            timeout,
        });
        tokio::spawn(drive(client, Arc::downgrade(&inner), rx));
        Self { inner }
    }

    /// Subscribes to `channel`. Returns once Redis confirmed, so nothing published after this
    /// returns is missed.
    pub async fn subscribe(&self, channel: &str, capacity: usize) -> StateResult<Subscription> {
        let (rx, mut ready, first) = {
            let mut channels = self.inner.channels.lock();
            let first = !channels.contains_key(channel);
            let entry = channels
                .entry(channel.to_string())
                .or_insert_with(|| Entry {
                    tx: broadcast::channel(capacity).0,
                    ready: watch::channel(false).0,
                });
            (entry.tx.subscribe(), entry.ready.subscribe(), first)
        };
        // Built before waiting, so a failure below still unsubscribes on drop.
        let sub = Subscription {
            inner: self.inner.clone(),
            channel: channel.to_string(),
            rx: BroadcastStream::new(rx),
        };
        let confirmed = async {
            if first {
                let (ack_tx, ack_rx) = oneshot::channel();
                let _ = self
                    .inner
                    .commands
                    .send(Command::Subscribe(channel.to_string(), ack_tx));
                return ack_rx.await.unwrap_or_else(|_| Err(hub_gone()));
            }
            ready
                .wait_for(|r| *r)
                .await
                .map(|_| ())
                .map_err(|_| hub_gone())
        };
        match tokio::time::timeout(self.inner.timeout, confirmed).await {
            Ok(Ok(())) => Ok(sub),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StateError {
                kind: StateErrorKind::Timeout,
                cause: format!("Redis did not confirm a subscription to {channel}"),
            }),
        }
    }

    /// Channels with a local reader whose name starts with `prefix`.
    pub fn channel_count(&self, prefix: &str) -> usize {
        self.inner
            .channels
            .lock()
            .keys()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

fn hub_gone() -> StateError {
    StateError {
        kind: StateErrorKind::Unavailable,
        cause: "the pub/sub connection task ended".into(),
    }
}

/// A local reader of one channel; unsubscribes in Redis when the channel's last reader drops.
pub struct Subscription {
    inner: Arc<Inner>,
    channel: String,
    rx: BroadcastStream<Note>,
}

impl Stream for Subscription {
    type Item = Note;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Note>> {
        match self.rx.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(note))) => Poll::Ready(Some(note)),
            Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(_)))) => {
                Poll::Ready(Some(Note::Resync))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.inner.channels.lock();
        // This reader's receiver is still alive here, hence 1.
        let last = channels
            .get(&self.channel)
            .is_some_and(|e| e.tx.receiver_count() <= 1);
        if last {
            channels.remove(&self.channel);
            let _ = self
                .inner
                .commands
                .send(Command::Unsubscribe(self.channel.clone()));
        }
    }
}

/// The connection task: (re)connects, (re)subscribes, and fans messages out.
async fn drive(
    client: redis::Client,
    inner: std::sync::Weak<Inner>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let Some(hub) = inner.upgrade() else { return };
        let timeout = hub.timeout;
        drop(hub);
        match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => {
                backoff = RECONNECT_MIN;
                let (mut sink, mut messages) = pubsub.split();
                if serve(&inner, &mut sink, &mut messages, &mut commands)
                    .await
                    .is_none()
                {
                    return;
                }
                tracing::warn!("Redis pub/sub connection lost; reconnecting");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "Redis pub/sub connect failed"),
            Err(_) => tracing::debug!("Redis pub/sub connect timed out"),
        }
        if let Some(hub) = inner.upgrade() {
            for entry in hub.channels.lock().values() {
                entry.ready.send_replace(false);
            }
        }
        // Subscribes asked for meanwhile fail fast instead of waiting for Redis.
        while let Ok(cmd) = commands.try_recv() {
            if let Command::Subscribe(_, ack) = cmd {
                let _ = ack.send(Err(StateError {
                    kind: StateErrorKind::Unavailable,
                    cause: "Redis pub/sub is reconnecting".into(),
                }));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Serves one connection. `None` when the hub is gone (stop), `Some` when the connection is.
async fn serve(
    inner: &std::sync::Weak<Inner>,
    sink: &mut redis::aio::PubSubSink,
    messages: &mut redis::aio::PubSubStream,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Option<()> {
    let names: Vec<String> = inner.upgrade()?.channels.lock().keys().cloned().collect();
    if !names.is_empty() && sink.subscribe(&names).await.is_err() {
        return Some(());
    }
    if let Some(hub) = inner.upgrade() {
        for entry in hub.channels.lock().values() {
            entry.ready.send_replace(true);
            let _ = entry.tx.send(Note::Resync);
        }
    }
    loop {
        tokio::select! {
            cmd = commands.recv() => match cmd? {
                Command::Subscribe(name, ack) => {
                    let result = sink.subscribe(&name).await.map_err(failure);
                    let ok = result.is_ok();
                    if ok && let Some(hub) = inner.upgrade()
                        && let Some(e) = hub.channels.lock().get(&name)
                    {
                        e.ready.send_replace(true);
                    }
                    let _ = ack.send(result);
                    if !ok {
                        return Some(());
                    }
                }
                Command::Unsubscribe(name) => {
                    // Re-subscribed meanwhile: keep it.
                    let wanted = inner.upgrade()?.channels.lock().contains_key(&name);
                    if !wanted && sink.unsubscribe(&name).await.is_err() {
                        return Some(());
                    }
                }
            },
            msg = messages.next() => {
                let Some(msg) = msg else { return Some(()) }; // the connection is gone
                let hub = inner.upgrade()?;
                let channels = hub.channels.lock();
                if let Some(entry) = channels.get(msg.get_channel_name()) {
                    let text: Arc<str> = String::from_utf8_lossy(msg.get_payload_bytes()).into();
                    let _ = entry.tx.send(Note::Message(text));
                }
            }
        }
    }
}
