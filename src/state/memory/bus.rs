//! Pub/sub inside one process: a broadcast channel per topic, dropped when nobody listens.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::state::{Bus, StateResult, topic_capacity};

#[derive(Default)]
pub struct MemoryBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Value>>>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, message: Value) -> StateResult<()> {
        let mut topics = self.topics.lock();
        // Every subscriber gone: forget the topic so idle topics cost nothing.
        if let Some(tx) = topics.get(topic)
            && tx.send(message).is_err()
        {
            topics.remove(topic);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> StateResult<BoxStream<'static, Value>> {
        let rx = {
            let mut topics = self.topics.lock();
            let tx = topics
                .entry(topic.to_string())
                .or_insert_with(|| broadcast::channel(topic_capacity(topic)).0);
            tx.subscribe()
        };
        // A lagged subscriber skips what it missed rather than ending.
        Ok(BroadcastStream::new(rx)
            .filter_map(|m| async move { m.ok() })
            .boxed())
    }

    fn spans_nodes(&self) -> bool {
        false
    }

    fn topic_count(&self) -> usize {
        let mut topics = self.topics.lock();
        topics.retain(|_, tx| tx.receiver_count() > 0);
        topics.len()
    }
}
