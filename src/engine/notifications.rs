//! Server-initiated notifications of a session (not tied to a request): list changes and
//! updates of subscribed resources, derived from bus events.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use serde_json::{Value, json};

use super::{Engine, topics};
use crate::protocol::Message;
use crate::state::{SessionId, StateError, StreamKey};

impl Engine {
    /// A stream of the notifications `session` should receive from now on.
    pub async fn session_notifications(
        self: &Arc<Self>,
        session: SessionId,
    ) -> Result<BoxStream<'static, Value>, StateError> {
        let catalog = self.catalog_events();
        let own = self
            .backends
            .bus
            .subscribe(&topics::session(&session))
            .await?;
        let events = futures::stream::select(catalog, own);
        let engine = Arc::downgrade(self);
        Ok(events
            .filter_map(move |event| {
                let engine = engine.clone();
                let session = session.clone();
                async move { engine.upgrade()?.notification_for(&session, &event).await }
            })
            .boxed())
    }

    async fn notification_for(&self, session: &SessionId, event: &Value) -> Option<Value> {
        let method = match event.get("type").and_then(Value::as_str)? {
            "notify" => return event.get("message").cloned(),
            "tools_changed" => "notifications/tools/list_changed",
            "resources_changed" => "notifications/resources/list_changed",
            "prompts_changed" => "notifications/prompts/list_changed",
            "resource_updated" => {
                let uri = event.get("uri").and_then(Value::as_str)?;
                let record = self.backends.sessions.peek(session).await.ok()??;
                if !record.subscriptions.contains(uri) {
                    return None;
                }
                return Some(Message::notification_value(
                    "notifications/resources/updated",
                    json!({"uri": uri}),
                ));
            }
            _ => return None,
        };
        Some(Message::notification_value(method, json!({})))
    }

    /// Starts (once per session) the task that writes the session's notifications into
    /// `stream`'s replay buffer, where the session's GET or SSE stream picks them up.
    pub async fn ensure_notification_pump(
        self: &Arc<Self>,
        key: StreamKey,
    ) -> Result<(), StateError> {
        if self.pumps.lock().contains_key(&key.session) {
            return Ok(());
        }
        self.backends.events.open(&key).await?;
        let mut notes = self.session_notifications(key.session.clone()).await?;
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
