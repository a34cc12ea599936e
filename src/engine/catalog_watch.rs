//! One node-wide reader of the catalog topic. It forwards catalog events to this node's
//! session pumps and listen streams through a local channel, and it answers a cluster-wide
//! `config_reload` by re-reading this node's own config file before telling its own clients:
//! every node reloads (a SIGHUP on one node reaches all), and a client hears of a change only
//! from a node that already serves the new list.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{Engine, topics};
use crate::catalog::Catalog;
use crate::runtime::Runtimes;
use crate::state::StateError;

/// Catalog events a slow local reader may fall behind by; past it the oldest are dropped
/// (list changes are hints, and the bus delivers them at most once anyway).
const LOCAL_CAPACITY: usize = 64;

/// Where this node's catalog comes from and who hears about its changes.
pub struct CatalogEvents {
    /// The node's own config file (`None`: the embedded demo), re-read on `config_reload`.
    file: Option<PathBuf>,
    /// What binds the reloaded file's functions (the same runtimes, so worker pools survive).
    runtimes: Runtimes,
    local: broadcast::Sender<Value>,
}

impl CatalogEvents {
    pub fn new(file: Option<PathBuf>, runtimes: Runtimes) -> Self {
        Self {
            file,
            runtimes,
            local: broadcast::channel(LOCAL_CAPACITY).0,
        }
    }
}

impl Engine {
    /// Subscribes this node to the catalog topic and serves it until the engine is dropped.
    pub(super) async fn start_catalog_watch(self: &Arc<Self>) -> Result<(), StateError> {
        let mut events = self.backends.bus.subscribe(topics::CATALOG).await?;
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if event.get("type").and_then(Value::as_str) == Some("config_reload") {
                    engine.reload_own_config().await;
                } else {
                    let _ = engine.catalog_events.local.send(event);
                }
            }
        });
        Ok(())
    }

    /// The catalog events of this node from now on: list changes (after this node's catalog
    /// changed) and resource updates.
    pub fn catalog_events(&self) -> BoxStream<'static, Value> {
        BroadcastStream::new(self.catalog_events.local.subscribe())
            .filter_map(|r| futures::future::ready(r.ok()))
            .boxed()
    }

    /// Stops what the runtimes run (worker processes): once, when the server stops.
    pub async fn shutdown_functions(&self) {
        self.catalog_events.runtimes.shutdown().await;
    }

    /// Asks every node (this one included) to re-read its config file: what SIGHUP does.
    pub async fn reload_config_everywhere(&self) -> Result<(), StateError> {
        self.backends
            .bus
            .publish(topics::CATALOG, json!({"type": "config_reload"}))
            .await
    }

    /// Re-reads this node's config file; on success swaps it in and tells this node's clients
    /// which lists changed. A file that does not load keeps the previous catalog.
    async fn reload_own_config(&self) {
        let events = &self.catalog_events;
        match Catalog::load(events.file.as_deref(), &events.runtimes).await {
            Ok(next) => {
                let changes = self.catalog.replace(next);
                tracing::info!(
                    tools = changes.tools,
                    resources = changes.resources,
                    prompts = changes.prompts,
                    "config reloaded"
                );
                for kind in changes.kinds() {
                    let _ = self.catalog_events.local.send(json!({"type": kind}));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; keeping the previous catalog")
            }
        }
    }
}
