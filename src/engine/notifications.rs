//! Server-initiated notifications of a session (not tied to a request): list changes and
//! updates of subscribed resources, derived from bus events of the session's partition.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use serde_json::{Value, json};

use super::Engine;
use super::topics::{self, CatalogEvent, SessionEvent};
use crate::catalog::CatalogChanges;
use crate::protocol::{Message, PartitionKey};
use crate::state::{SessionId, StateError, StreamKey};

/// What a session hears: catalog events of its partition, and messages for its own stream.
enum Heard {
    Catalog(CatalogEvent),
    Own(SessionEvent),
}

/// The list-changed notifications for `lists`, in a fixed order.
pub fn list_notifications(lists: &CatalogChanges) -> impl Iterator<Item = &'static str> {
    [
        (lists.tools, "notifications/tools/list_changed"),
        (lists.resources, "notifications/resources/list_changed"),
        (lists.prompts, "notifications/prompts/list_changed"),
    ]
    .into_iter()
    .filter_map(|(on, method)| on.then_some(method))
}

impl Engine {
    /// A stream of the notifications `session` (of `partition`) should receive from now on.
    pub async fn session_notifications(
        self: &Arc<Self>,
        session: SessionId,
        partition: PartitionKey,
    ) -> Result<BoxStream<'static, Value>, StateError> {
        let catalog = self.catalog_events().map(Heard::Catalog);
        let topic = topics::session(&session);
        let own = self
            .backends
            .bus
            .subscribe(&topic)
            .await?
            .filter_map(move |m| {
                futures::future::ready(topics::decode::<SessionEvent>(&topic, m).map(Heard::Own))
            });
        let events = futures::stream::select(catalog, own);
        let engine = Arc::downgrade(self);
        Ok(events
            .filter_map(move |heard| {
                let engine = engine.clone();
                let (session, partition) = (session.clone(), partition.clone());
                async move {
                    let notes = engine
                        .upgrade()?
                        .notifications_for(&session, &partition, heard)
                        .await;
                    Some(futures::stream::iter(notes))
                }
            })
            .flatten()
            .boxed())
    }

    async fn notifications_for(
        &self,
        session: &SessionId,
        partition: &PartitionKey,
        heard: Heard,
    ) -> Vec<Value> {
        let event = match heard {
            Heard::Own(SessionEvent::Notify { message }) => return vec![message],
            Heard::Catalog(event) => event,
        };
        match event {
            CatalogEvent::ListsChanged {
                partition: p,
                lists,
            } if p == *partition => list_notifications(&lists)
                .map(|m| Message::notification_value(m, json!({})))
                .collect(),
            CatalogEvent::ResourceUpdated { partition: p, uri } if p == *partition => {
                let Ok(Some(record)) = self.backends.sessions.peek(session).await else {
                    return Vec::new();
                };
                if !record.subscriptions.contains(&uri) {
                    return Vec::new();
                }
                vec![Message::notification_value(
                    "notifications/resources/updated",
                    json!({"uri": uri}),
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Starts (once per session) the task that writes the session's notifications into
    /// `stream`'s replay buffer, where the session's GET or SSE stream picks them up.
    pub async fn ensure_notification_pump(
        self: &Arc<Self>,
        key: StreamKey,
        partition: PartitionKey,
    ) -> Result<(), StateError> {
        if self.pumps.lock().contains_key(&key.session) {
            return Ok(());
        }
        self.backends.events.open(&key).await?;
        let mut notes = self
            .session_notifications(key.session.clone(), partition)
            .await?;
        let events = self.backends.events.clone();
        let task_key = key.clone();
        let task = tokio::spawn(async move {
            while let Some(note) = notes.next().await {
                match events
                    .append(&task_key, note.to_string().into(), false)
                    .await
                {
                    Ok(Some(_)) => {}
                    Ok(None) => break, // the session ended
                    Err(e) => {
                        tracing::warn!(session = %task_key.session, error = %e, "could not buffer a notification")
                    }
                }
            }
        });
        match self.pumps.lock().entry(key.session.clone()) {
            // Lost a race with another opener: one pump per session.
            std::collections::hash_map::Entry::Occupied(_) => task.abort(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(task);
                // A pump another node still runs for this session stops: one writer.
                self.announce_get_stream(&key.session);
            }
        }
        Ok(())
    }
}
