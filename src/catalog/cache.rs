//! The catalogs of every partition this node serves: loaded on first use from a
//! `CatalogSource`, cached, purged per partition (or all) when definitions change anywhere in
//! the cluster, and reloaded after a TTL as the last line of defence against a missed purge.
//! Readers get a cheap snapshot (`Arc<Catalog>`); a reload swaps it whole and reports which
//! lists changed, so the engine tells exactly that partition's clients.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{Catalog, CatalogChanges, CatalogError};
use crate::clock::Clock;
use crate::protocol::PartitionKey;
use crate::runtime::Runtimes;

/// Where the definitions of a partition come from.
#[async_trait]
pub trait CatalogSource: Send + Sync {
    /// The catalog `partition` serves now. Called on a cache miss, so it may be slow (a store
    /// read); a failure leaves the cache as it was.
    async fn load(&self, partition: &PartitionKey) -> Result<Arc<Catalog>, CatalogError>;

    /// Definitions changed (`None`: all partitions): forget what the source itself keeps, so
    /// the next `load` reads the new ones. A failure keeps the previous definitions.
    async fn refresh(&self, partition: Option<&PartitionKey>) -> Result<(), CatalogError>;
}

/// The config file as the source of every partition (today's behaviour: one list for all).
/// It re-reads the file on `refresh` (SIGHUP, a cache refresh, a missed event); a file that
/// does not load keeps the previous catalog.
pub struct FileSource {
    /// `None`: the embedded demo configuration.
    path: Option<PathBuf>,
    /// Binds the file's functions (the same runtimes on every reload, so worker pools live on).
    runtimes: Runtimes,
    current: RwLock<Arc<Catalog>>,
}

impl FileSource {
    /// Loads `path` once; start-up fails on a bad file rather than serving nothing.
    pub async fn open(path: Option<PathBuf>, runtimes: Runtimes) -> Result<Self, CatalogError> {
        let catalog = Catalog::load(path.as_deref(), &runtimes).await?;
        Ok(Self::with_catalog(path, runtimes, catalog))
    }

    /// A source that starts from an already built catalog.
    pub fn with_catalog(path: Option<PathBuf>, runtimes: Runtimes, catalog: Catalog) -> Self {
        Self {
            path,
            runtimes,
            current: RwLock::new(Arc::new(catalog)),
        }
    }

    /// The runtimes the file's functions are bound through (stopped once at shutdown).
    pub fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    /// Serves `next` from now on (tests and embedders that build a catalog themselves).
    pub fn install(&self, next: Catalog) {
        *self.current.write() = Arc::new(next);
    }
}

#[async_trait]
impl CatalogSource for FileSource {
    async fn load(&self, _partition: &PartitionKey) -> Result<Arc<Catalog>, CatalogError> {
        Ok(self.current.read().clone())
    }

    async fn refresh(&self, _partition: Option<&PartitionKey>) -> Result<(), CatalogError> {
        let next = Catalog::load(self.path.as_deref(), &self.runtimes).await?;
        self.install(next);
        Ok(())
    }
}

/// One cached catalog and when it was loaded.
struct Entry {
    catalog: Arc<Catalog>,
    loaded_ms: u64,
}

/// What `Catalogs::status` reports for one cached partition (the original's `cache_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheCounts {
    pub tools_count: usize,
    /// Resources and resource templates.
    pub resources_count: usize,
    pub prompts_count: usize,
    /// Distinct modules the definitions are bound to.
    pub modules_count: usize,
    /// Definitions bound to a module (every definition is one link).
    pub module_links_count: usize,
}

impl CacheCounts {
    pub fn of(c: &Catalog) -> Self {
        let modules: std::collections::BTreeSet<&str> = c
            .tools
            .iter()
            .map(|t| &t.binding)
            .chain(c.resources.iter().map(|r| &r.binding))
            .chain(c.templates.iter().map(|t| &t.binding))
            .chain(c.prompts.iter().map(|p| &p.binding))
            .map(|b| b.module.as_str())
            .collect();
        Self {
            tools_count: c.tools.len(),
            resources_count: c.resources.len() + c.templates.len(),
            prompts_count: c.prompts.len(),
            modules_count: modules.len(),
            module_links_count: c.tools.len()
                + c.resources.len()
                + c.templates.len()
                + c.prompts.len(),
        }
    }
}

/// Partitions cached at most: any caller can name a new partition (`/{anything}/mcp`), so the
/// cache must not grow with them; past it the longest-loaded entry goes (and is loaded again
/// when asked for).
pub const MAX_CACHED_PARTITIONS: usize = 4096;

/// The per-partition catalog cache of this node.
pub struct Catalogs {
    source: Arc<dyn CatalogSource>,
    /// At most this many partitions are kept (`MAX_CACHED_PARTITIONS` in production).
    capacity: usize,
    /// How long a loaded catalog is served before it is loaded again, purge or not.
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
    entries: RwLock<HashMap<PartitionKey, Entry>>,
    /// Bumped by every purge, so a load that started before it cannot put back what it read.
    generation: AtomicU64,
}

impl Catalogs {
    pub fn new(source: Arc<dyn CatalogSource>, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(source, ttl, clock, MAX_CACHED_PARTITIONS)
    }

    pub fn with_capacity(
        source: Arc<dyn CatalogSource>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> Self {
        Self {
            source,
            capacity: capacity.max(1),
            ttl_ms: ttl.as_millis() as u64,
            clock,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The catalog of `partition`: cached, or loaded now. When the source fails, a stale
    /// cached catalog is served rather than none.
    pub async fn get(&self, partition: &PartitionKey) -> Result<Arc<Catalog>, CatalogError> {
        let now = self.clock.now_ms();
        let stale = {
            let entries = self.entries.read();
            match entries.get(partition) {
                Some(e) if now.saturating_sub(e.loaded_ms) < self.ttl_ms => {
                    return Ok(e.catalog.clone());
                }
                Some(e) => Some(e.catalog.clone()),
                None => None,
            }
        };
        let generation = self.generation.load(Ordering::Acquire);
        match self.source.load(partition).await {
            Ok(catalog) => {
                let mut entries = self.entries.write();
                if self.generation.load(Ordering::Acquire) == generation {
                    if !entries.contains_key(partition) && entries.len() >= self.capacity {
                        let oldest = entries
                            .iter()
                            .min_by_key(|(_, e)| e.loaded_ms)
                            .map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            entries.remove(&k);
                        }
                    }
                    entries.insert(
                        partition.clone(),
                        Entry {
                            catalog: catalog.clone(),
                            loaded_ms: now,
                        },
                    );
                }
                Ok(catalog)
            }
            Err(e) => match stale {
                Some(c) => {
                    tracing::warn!(%partition, error = %e, "catalog reload failed; serving the cached one");
                    Ok(c)
                }
                None => Err(e),
            },
        }
    }

    /// The partitions cached on this node.
    pub fn cached(&self) -> Vec<PartitionKey> {
        let mut out: Vec<PartitionKey> = self.entries.read().keys().cloned().collect();
        out.sort();
        out
    }

    /// What is cached for `partition`, if anything.
    pub fn status(&self, partition: &PartitionKey) -> Option<CacheCounts> {
        self.entries
            .read()
            .get(partition)
            .map(|e| CacheCounts::of(&e.catalog))
    }

    /// Definitions of `partition` (`None`: every partition) changed: the source refreshes,
    /// the cache forgets them, and every partition that was cached is loaded again at once,
    /// so its clients are told only once the new lists are served. Returns, per reloaded
    /// partition, which lists differ from what was served before.
    pub async fn purge(
        &self,
        partition: Option<&PartitionKey>,
    ) -> Vec<(PartitionKey, CatalogChanges)> {
        if let Err(e) = self.source.refresh(partition).await {
            tracing::error!(error = %e, "catalog refresh failed; keeping the previous definitions");
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        let before: Vec<(PartitionKey, Arc<Catalog>)> = {
            let mut entries = self.entries.write();
            let keys: Vec<PartitionKey> = match partition {
                Some(p) => entries.keys().filter(|k| *k == p).cloned().collect(),
                None => entries.keys().cloned().collect(),
            };
            keys.into_iter()
                .filter_map(|k| entries.remove(&k).map(|e| (k, e.catalog)))
                .collect()
        };
        let mut out = Vec::with_capacity(before.len());
        for (key, old) in before {
            match self.get(&key).await {
                Ok(new) => out.push((key, new.changes_from(&old))),
                Err(e) => tracing::error!(partition = %key, error = %e, "catalog reload failed"),
            }
        }
        out
    }

    /// Installs `next` as `partition`'s catalog and reports what changed (tests, embedders).
    pub fn replace(&self, partition: &PartitionKey, next: Arc<Catalog>) -> CatalogChanges {
        let mut entries = self.entries.write();
        let changes = match entries.get(partition) {
            Some(e) => next.changes_from(&e.catalog),
            None => CatalogChanges::all(),
        };
        entries.insert(
            partition.clone(),
            Entry {
                catalog: next,
                loaded_ms: self.clock.now_ms(),
            },
        );
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// Counts loads and serves the demo catalog or the empty one, as told.
    struct Counting {
        loads: AtomicU64,
        empty: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl CatalogSource for Counting {
        async fn load(&self, _p: &PartitionKey) -> Result<Arc<Catalog>, CatalogError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if self.empty.load(Ordering::SeqCst) {
                return Ok(Arc::new(Catalog::default()));
            }
            Ok(Arc::new(
                Catalog::load(None, &Runtimes::builtin_only()).await?,
            ))
        }
        async fn refresh(&self, _p: Option<&PartitionKey>) -> Result<(), CatalogError> {
            Ok(())
        }
    }

    fn key(k: &str) -> PartitionKey {
        PartitionKey::parse(k).unwrap()
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_its_capacity_of_partitions() {
        let source = Arc::new(Counting {
            loads: AtomicU64::new(0),
            empty: true.into(),
        });
        let clock = Arc::new(ManualClock::new(1_000));
        let cats = Catalogs::with_capacity(source, Duration::from_secs(300), clock.clone(), 2);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            clock.advance_ms(i as u64 + 1);
            cats.get(&key(k)).await.unwrap();
        }
        assert_eq!(cats.cached(), vec![key("b"), key("c")], "the oldest went");
    }

    #[tokio::test]
    async fn loads_once_per_partition_until_the_ttl_or_a_purge() {
        let source = Arc::new(Counting {
            loads: AtomicU64::new(0),
            empty: false.into(),
        });
        let clock = Arc::new(ManualClock::new(1_000));
        let cats = Catalogs::new(source.clone(), Duration::from_secs(300), clock.clone());
        cats.get(&key("a")).await.unwrap();
        cats.get(&key("a")).await.unwrap();
        cats.get(&key("b")).await.unwrap();
        assert_eq!(
            source.loads.load(Ordering::SeqCst),
            2,
            "one load per partition"
        );
        assert_eq!(cats.cached(), vec![key("a"), key("b")]);
        clock.advance_ms(300_000);
        cats.get(&key("a")).await.unwrap();
        assert_eq!(source.loads.load(Ordering::SeqCst), 3, "the TTL reloads");
        source.empty.store(true, Ordering::SeqCst);
        let changed = cats.purge(Some(&key("b"))).await;
        assert_eq!(changed.len(), 1, "only b is purged and reloaded");
        assert_eq!(changed[0].0, key("b"));
        assert!(changed[0].1.tools, "b's tools changed");
        assert_eq!(cats.status(&key("b")).unwrap().tools_count, 0);
        assert!(
            cats.status(&key("a")).unwrap().tools_count > 0,
            "a untouched"
        );
        let all = cats.purge(None).await;
        assert_eq!(all.len(), 2);
        assert!(all.iter().any(|(k, c)| *k == key("a") && c.tools));
        assert!(all.iter().any(|(k, c)| *k == key("b") && !c.tools));
    }
}
