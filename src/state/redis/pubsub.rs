//! One pub/sub connection per node, shared by every reader on the node: a channel is
//! subscribed in Redis while at least one local reader wants it, and each message is fanned
//! out locally. The connection is re-established after Redis restarts; readers then get
//! `Note::Resync` so they can re-read what they may have missed from the replay streams.
//! In a Redis Cluster a message published on any node reaches every node, so the connection
//! may go to any of them; when it is lost, the next one goes to a node the cluster reports
//! alive (a promoted replica included), not back to the seed that failed.

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

use super::conn::{Redis, failure};
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

/// Where the pub/sub connection may go.
pub enum Endpoints {
    /// The one Redis.
    Single(redis::Client),
    /// A cluster: any node it reports alive through `commands`, else one of the seed `urls`.
    Cluster { urls: Vec<String>, commands: Redis },
}

impl Endpoints {
    /// The clients to try, in order, for the `attempt`-th connection: the cluster's live
    /// nodes first (rotated, so a node that keeps failing is not always first), then the seeds.
    async fn candidates(&self, attempt: usize) -> Vec<redis::Client> {
        let (urls, commands) = match self {
            Self::Single(client) => return vec![client.clone()],
            Self::Cluster { urls, commands } => (urls, commands),
        };
        let mut live = match commands
            .query::<String>(redis::cmd("CLUSTER").arg("NODES"))
            .await
        {
            Ok(nodes) => live_node_urls(&nodes, urls.first().map(String::as_str).unwrap_or("")),
            Err(e) => {
                tracing::debug!(error = %e, "CLUSTER NODES failed; trying the seed nodes");
                Vec::new()
            }
        };
        if !live.is_empty() {
            let n = live.len();
            live.rotate_left(attempt % n);
        }
        live.iter()
            .chain(urls)
            .filter_map(|u| redis::Client::open(u.as_str()).ok())
            .collect()
    }
}

/// The URLs of the nodes `CLUSTER NODES` reports connected and not failing, built on `seed`
/// (its scheme, credentials and database) with each node's address.
fn live_node_urls(nodes: &str, seed: &str) -> Vec<String> {
    let Ok(base) = url::Url::parse(seed) else {
        return Vec::new();
    };
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr = fields.nth(1)?;
            let flags = fields.next()?;
            let link = line.split_whitespace().nth(7)?;
            let down = flags
                .split(',')
                .any(|f| matches!(f, "fail" | "fail?" | "handshake" | "noaddr"));
            if down || link != "connected" {
                return None;
            }
            // `ip:port@cport[,hostname]`
            let host_port = addr.split(['@', ',']).next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            let host = host.trim_matches(['[', ']']);
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            let mut u = base.clone();
            u.set_host(Some(&host)).ok()?;
            u.set_port(Some(port.parse().ok()?)).ok()?;
            Some(u.to_string())
        })
        .collect()
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// Starts the connection task; it runs until the hub is dropped.
    pub fn start(endpoints: Endpoints, timeout: Duration) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            channels: Mutex::new(HashMap::new()),
            commands,
            timeout,
        });
        tokio::spawn(drive(endpoints, Arc::downgrade(&inner), rx));
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
    endpoints: Endpoints,
    inner: std::sync::Weak<Inner>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = RECONNECT_MIN;
    // Readers hear `Resync` only when a connection they may have missed messages on ended;
    // on the first one nothing was missed.
    let mut reconnect = false;
    for attempt in 0usize.. {
        let Some(hub) = inner.upgrade() else { return };
        let timeout = hub.timeout;
        drop(hub);
        if let Some(pubsub) = connect_any(&endpoints, attempt, timeout).await {
            backoff = RECONNECT_MIN;
            let (mut sink, mut messages) = pubsub.split();
            if serve(&inner, &mut sink, &mut messages, &mut commands, reconnect)
                .await
                .is_none()
            {
                return;
            }
            reconnect = true;
            tracing::warn!("Redis pub/sub connection lost; reconnecting");
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

/// The first of the candidates that accepts a pub/sub connection within `timeout`.
async fn connect_any(
    endpoints: &Endpoints,
    attempt: usize,
    timeout: Duration,
) -> Option<redis::aio::PubSub> {
    for client in endpoints.candidates(attempt).await {
        match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => return Some(pubsub),
            Ok(Err(e)) => tracing::debug!(error = %e, "Redis pub/sub connect failed"),
            Err(_) => tracing::debug!("Redis pub/sub connect timed out"),
        }
    }
    None
}

/// Serves one connection. `None` when the hub is gone (stop), `Some` when the connection is.
async fn serve(
    inner: &std::sync::Weak<Inner>,
    sink: &mut redis::aio::PubSubSink,
    messages: &mut redis::aio::PubSubStream,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    reconnect: bool,
) -> Option<()> {
    let names: Vec<String> = inner.upgrade()?.channels.lock().keys().cloned().collect();
    if !names.is_empty() && sink.subscribe(&names).await.is_err() {
        return Some(());
    }
    if let Some(hub) = inner.upgrade() {
        for entry in hub.channels.lock().values() {
            entry.ready.send_replace(true);
            if reconnect {
                let _ = entry.tx.send(Note::Resync);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connected_nodes_that_are_not_failing_are_candidates() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master,fail - 0 0 2 disconnected 5461-10922
c3 127.0.0.1:7003@17003,redis-c master - 0 0 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave,fail? c3 0 0 3 connected
e5 ::1:7005@17005 slave a1 0 0 1 connected
f6 :0@0 master,noaddr - 0 0 0 disconnected
";
        let urls = live_node_urls(nodes, "redis://:secret@10.0.0.1:6379/0");
        assert_eq!(
            urls,
            [
                "redis://:secret@127.0.0.1:7001/0",
                "redis://:secret@127.0.0.1:7003/0",
                "redis://:secret@[::1]:7005/0",
            ]
        );
        assert!(live_node_urls(nodes, "not a url").is_empty());
    }
}
