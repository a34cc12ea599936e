//! One node-wide reader of the catalog topic (started on every node, with the memory bus too).
//! A `DefinitionsChanged` from another node purges this node's cache of that partition (or of
//! all), reloads it, and only then tells this node's clients of that partition which lists
//! changed, so a client that re-lists right after the notice gets the new list. The node that
//! made the change applied it before publishing and skips its own event: one change, one
//! notice per client, from whichever node holds the client's stream. A bus that may have lost
//! messages (`Resync`: Redis came back) purges everything.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::Engine;
use super::topics::{self, CatalogEvent};
use crate::catalog::{Catalog, CatalogChanges};
use crate::protocol::PartitionKey;
use crate::runtime::Runtimes;
use crate::state::StateError;

/// Catalog events a slow local reader may fall behind by; past it the oldest are dropped
/// (list changes are hints, and the bus delivers them at most once anyway).
const LOCAL_CAPACITY: usize = 64;

/// Who on this node hears about catalog changes, and what runs the catalogs' functions.
pub struct CatalogEvents {
    /// What binds every catalog's functions (stopped once, at shutdown).
    runtimes: Runtimes,
    /// `ListsChanged` and `ResourceUpdated` for this node's pumps and listen streams.
    local: broadcast::Sender<CatalogEvent>,
}

impl CatalogEvents {
    pub fn new(runtimes: Runtimes) -> Self {
        Self {
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
            while let Some(message) = events.next().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let Some(event) = topics::decode::<CatalogEvent>(topics::CATALOG, message) else {
                    continue;
                };
                match event {
                    CatalogEvent::DefinitionsChanged {
                        partition,
                        lists,
                        origin,
                    } => {
                        if origin != *engine.id_prefix {
                            engine.apply_definitions(partition.as_ref(), lists).await;
                        }
                    }
                    CatalogEvent::Resync => {
                        tracing::info!(
                            "the bus may have lost catalog events: reloading every catalog"
                        );
                        engine
                            .apply_definitions(None, CatalogChanges::default())
                            .await;
                    }
                    local => {
                        let _ = engine.catalog_events.local.send(local);
                    }
                }
            }
        });
        Ok(())
    }

    /// The catalog events of this node from now on: list changes (after this node's catalog
    /// changed) and resource updates, each naming its partition.
    pub fn catalog_events(&self) -> BoxStream<'static, CatalogEvent> {
        BroadcastStream::new(self.catalog_events.local.subscribe())
            .filter_map(|r| futures::future::ready(r.ok()))
            .boxed()
    }

    /// Stops what the runtimes run (worker processes): once, when the server stops.
    pub async fn shutdown_functions(&self) {
        self.catalog_events.runtimes.shutdown().await;
    }

    /// Definitions of `partition` (`None`: all) changed, through this node: applies the change
    /// here (purge, reload, tell this node's clients), then tells every other node. `lists`
    /// says what the writer changed, for partitions a node has not cached. Returns what
    /// changed here, per reloaded partition.
    pub async fn definitions_changed(
        &self,
        partition: Option<&PartitionKey>,
        lists: CatalogChanges,
    ) -> Result<Vec<(PartitionKey, CatalogChanges)>, StateError> {
        let changed = self.apply_definitions(partition, lists).await;
        let event = CatalogEvent::DefinitionsChanged {
            partition: partition.cloned(),
            lists,
            origin: self.id_prefix.to_string(),
        };
        topics::publish(&*self.backends.bus, topics::CATALOG, &event).await?;
        Ok(changed)
    }

    /// What SIGHUP does: this node re-reads its config file and every node serves it (every
    /// partition the file serves, which is all of them).
    pub async fn reload_config_everywhere(&self) -> Result<(), StateError> {
        let changed = self
            .definitions_changed(None, CatalogChanges::default())
            .await?;
        tracing::info!(partitions = changed.len(), "config reloaded");
        Ok(())
    }

    /// Purges and reloads here, then tells this partition's clients on this node.
    async fn apply_definitions(
        &self,
        partition: Option<&PartitionKey>,
        lists: CatalogChanges,
    ) -> Vec<(PartitionKey, CatalogChanges)> {
        let reloaded = self.catalogs.purge(partition).await;
        for (key, changes) in &reloaded {
            self.tell_local(key, *changes);
        }
        // Not cached here: nothing to compare, so this node's clients of it (if it has any)
        // hear what the writer says changed.
        if let Some(p) = partition
            && !reloaded.iter().any(|(k, _)| k == p)
        {
            self.tell_local(p, lists);
        }
        reloaded
    }

    fn tell_local(&self, partition: &PartitionKey, lists: CatalogChanges) {
        if lists.any() {
            let _ = self.catalog_events.local.send(CatalogEvent::ListsChanged {
                partition: partition.clone(),
                lists,
            });
        }
    }

    /// Installs `next` as the default partition's catalog on this node and tells every
    /// node's clients of that partition what changed (tests and embedders).
    pub async fn replace_catalog(&self, next: Catalog) {
        let partition = PartitionKey::default();
        let lists = self.catalogs.replace(&partition, Arc::new(next));
        let event = CatalogEvent::ListsChanged { partition, lists };
        if let Err(e) = topics::publish(&*self.backends.bus, topics::CATALOG, &event).await {
            tracing::warn!(error = %e, "could not publish a catalog change");
        }
    }
}
