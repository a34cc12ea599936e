//! The `Bus` over Redis pub/sub: every node subscribed to a topic gets every message published
//! on any node (at most once, like the memory bus).

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use super::conn::Redis;
use super::keys::Keys;
use super::pubsub::{Hub, Note};
use crate::state::{Bus, StateResult, topic_capacity};

pub struct RedisBus {
    redis: Redis,
    hub: Hub,
    keys: Keys,
}

impl RedisBus {
    pub fn new(redis: Redis, hub: Hub, keys: Keys) -> Self {
        Self { redis, hub, keys }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, topic: &str, message: Value) -> StateResult<()> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys.topic_channel(topic))
            .arg(message.to_string());
        let _receivers: u64 = self.redis.query(&cmd).await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> StateResult<BoxStream<'static, Value>> {
        let channel = self.keys.topic_channel(topic);
        let sub = self.hub.subscribe(&channel, topic_capacity(topic)).await?;
        Ok(sub
            .filter_map(|note| async move {
                match note {
                    Note::Message(text) => serde_json::from_str(&text).ok(),
                    // At most once: what was missed is gone, but readers that cache what the
                    // bus announces (catalogs) must know to reload.
                    Note::Resync => Some(serde_json::json!({"type": crate::state::BUS_RESYNC})),
                }
            })
            .boxed())
    }

    fn spans_nodes(&self) -> bool {
        true
    }

    fn topic_count(&self) -> usize {
        self.hub.channel_count(&self.keys.topic_channel(""))
    }
}
