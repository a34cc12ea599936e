//! Call history off the hot path. A call on a non-default partition hands its record to the
//! recorder twice (`initial` when it starts, `completed` or `failed` when it ends) with a
//! non-blocking `try_send` into a bounded queue; one writer task drains it in batches
//! (`CatalogStore::put_calls`: one SQLite transaction, DynamoDB `BatchWriteItem`s), keeping
//! only the last state of a call seen twice in one batch, so a quick call costs one write.
//!
//! Nothing here ever blocks or fails a call: a full queue drops the record, a store outage is
//! retried for a while and then drops the batch, a record the store refuses is dropped alone,
//! and each of those is counted (`RecorderStats`) and logged at most every 10 s. Content over
//! the inline limit goes to the blob store at `mcp_content/{uuid}.json` (the original's key:
//! the body is the content as a JSON string, as the original writes it) with `content_in_s3`
//! set, and the row is written after the object (the original forgot that write).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::blob::BlobStore;
use crate::store::{CallRecord, CatalogStore, StoreErrorKind};

/// How the recorder queues, batches and retries.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Records waiting at most; past it new ones are dropped (and counted).
    pub queue: usize,
    /// Records per write at most.
    pub batch: usize,
    /// How long the writer waits for more records before it writes a batch that is not full.
    pub linger: Duration,
    /// How long a batch is retried while the store is unavailable before it is dropped.
    pub retry_for: Duration,
    /// Content longer than this (bytes) goes to the blob store; DynamoDB's item limit is
    /// 400 KB, and the arguments share the item.
    pub inline_limit: usize,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        Self {
            queue: 10_000,
            batch: 256,
            linger: Duration::from_millis(20),
            retry_for: Duration::from_secs(30),
            inline_limit: 300 * 1024,
        }
    }
}

/// What the recorder did since start (for `/metrics` and the logs).
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Records handed in.
    pub recorded: AtomicU64,
    /// Rows written (a call's initial and final state written together count once).
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped_full: AtomicU64,
    /// Records dropped because the store stayed unavailable past `retry_for`.
    pub dropped_unavailable: AtomicU64,
    /// Records the store refused (too large, bad shape).
    pub dropped_refused: AtomicU64,
    /// Contents written to the blob store instead of the row.
    pub offloaded: AtomicU64,
}

enum Msg {
    Record(Box<CallRecord>),
    /// Acknowledged once everything queued before it was written or dropped.
    Flush(oneshot::Sender<()>),
}

/// The handle calls record through. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    stats: Arc<RecorderStats>,
    warned: Arc<Warn>,
}

impl Recorder {
    /// Starts the writer task (on the current tokio runtime); it ends when every handle is
    /// dropped, after writing what was queued.
    pub fn start(
        store: Arc<dyn CatalogStore>,
        blobs: Arc<dyn BlobStore>,
        settings: RecorderSettings,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let stats = Arc::new(RecorderStats::default());
        let warned = Arc::new(Warn::default());
        let writer = Writer {
            store,
            blobs,
            settings,
            stats: stats.clone(),
            warned: warned.clone(),
        };
        tokio::spawn(writer.run(rx));
        Self { tx, stats, warned }
    }

    /// Queues one state of a call. Never waits: a full queue drops it (counted, logged).
    pub fn record(&self, record: CallRecord) {
        self.stats.recorded.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(Msg::Record(Box::new(record))).is_err() {
            let n = self.stats.dropped_full.fetch_add(1, Ordering::Relaxed) + 1;
            self.warned.maybe(|| {
                tracing::warn!(
                    dropped_so_far = n,
                    "call history: the recorder's queue is full; records are dropped"
                )
            });
        }
    }

    /// Waits until everything recorded before this call was written or dropped (shutdown,
    /// tests, and a re-poll of an async call that must see its own row).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }
}

/// At most one warning per 10 s of a kind (drops come in floods).
#[derive(Default)]
struct Warn(Mutex<Option<tokio::time::Instant>>);

impl Warn {
    fn maybe(&self, log: impl FnOnce()) {
        let now = tokio::time::Instant::now();
        let mut last = self.0.lock();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
            *last = Some(now);
            drop(last);
            log();
        }
    }
}

struct Writer {
    store: Arc<dyn CatalogStore>,
    blobs: Arc<dyn BlobStore>,
    settings: RecorderSettings,
    stats: Arc<RecorderStats>,
    warned: Arc<Warn>,
}

/// One batch being gathered: the last state of each call, in arrival order.
#[derive(Default)]
struct Batch {
    records: Vec<CallRecord>,
    index: HashMap<(String, String), usize>,
    acks: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn add(&mut self, record: CallRecord) {
        let key = (
            record.partition_key.as_str().to_string(),
            record.mcp_function_call_uuid.clone(),
        );
        match self.index.get(&key) {
            Some(&i) => self.records[i] = record,
            None => {
                self.index.insert(key, self.records.len());
                self.records.push(record);
            }
        }
    }
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(first) = rx.recv().await {
            let mut batch = Batch::default();
            let mut closed = false;
            self.take(&mut batch, first);
            let deadline = tokio::time::Instant::now() + self.settings.linger;
            while batch.records.len() < self.settings.batch && batch.acks.is_empty() {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(m) => self.take(&mut batch, m),
                        None => { closed = true; break; }
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.write(&mut batch.records).await;
            for ack in batch.acks {
                let _ = ack.send(());
            }
            if closed {
                break;
            }
        }
    }

    fn take(&self, batch: &mut Batch, m: Msg) {
        match m {
            Msg::Record(r) => batch.add(*r),
            Msg::Flush(ack) => batch.acks.push(ack),
        }
    }

    async fn write(&self, records: &mut [CallRecord]) {
        if records.is_empty() {
            return;
        }
        for record in records.iter_mut() {
            self.offload(record).await;
        }
        let started = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            match self.store.put_calls(records).await {
                Ok(report) => {
                    self.stats
                        .written
                        .fetch_add(report.written as u64, Ordering::Relaxed);
                    if !report.refused.is_empty() {
                        let n = report.refused.len() as u64;
                        self.stats.dropped_refused.fetch_add(n, Ordering::Relaxed);
                        for (uuid, why) in &report.refused {
                            tracing::warn!(call = %uuid, "call history: a record was refused: {why}");
                        }
                    }
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind,
                        StoreErrorKind::Unavailable | StoreErrorKind::Timeout
                    ) && started.elapsed() + wait < self.settings.retry_for =>
                {
                    self.warned.maybe(|| {
                        tracing::warn!(
                            "call history: the store is unavailable ({e}); retrying for up to {}s",
                            self.settings.retry_for.as_secs()
                        )
                    });
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    let n = records.len() as u64;
                    self.stats
                        .dropped_unavailable
                        .fetch_add(n, Ordering::Relaxed);
                    tracing::error!(records = n, "call history: a batch was dropped: {e}");
                    return;
                }
            }
        }
    }

    /// Moves content over the inline limit into the blob store. A failed upload keeps the
    /// content inline, cut to the limit with a note, so the row still says what happened.
    async fn offload(&self, record: &mut CallRecord) {
        let limit = self.settings.inline_limit;
        let Some(content) = record.content.as_ref().filter(|c| c.len() > limit) else {
            return;
        };
        let key = format!("mcp_content/{}.json", record.mcp_function_call_uuid);
        let body = Value::String(content.clone()).to_string();
        match self.blobs.put(&key, Bytes::from(body)).await {
            Ok(_) => {
                record.content = None;
                record.content_in_s3 = true;
                self.stats.offloaded.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(call = %record.mcp_function_call_uuid, "call history: content kept inline, cut to {limit} bytes: cannot write {}: {e}", self.blobs.location(&key));
                let mut cut = limit;
                while !content.is_char_boundary(cut) {
                    cut -= 1;
                }
                record.content = Some(format!(
                    "{}… [cut: {} bytes]",
                    &content[..cut],
                    content.len()
                ));
            }
        }
    }
}

/// The text a call's row keeps (the Python daemon 2's `_extract_audit_text`): a tool result's
/// first content item's `text`, else a resource's first `contents[].text`, else a prompt's
/// first message's text, else the result as JSON.
pub fn audit_text(result: &Value) -> String {
    let first_text = |list: &str| -> Option<&str> {
        result.get(list)?.as_array()?.first()?.get("text")?.as_str()
    };
    first_text("content")
        .or_else(|| first_text("contents"))
        .or_else(|| {
            result
                .get("messages")?
                .as_array()?
                .first()?
                .get("content")?
                .get("text")?
                .as_str()
        })
        .map(str::to_string)
        .unwrap_or_else(|| result.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::FsBlobStore;
    use crate::clock::SystemClock;
    use crate::protocol::PartitionKey;
    use crate::store::{CallFilter, CallStatus, McpType, Page, SqliteStore, TableNames, Timestamp};
    use serde_json::json;

    struct Rig {
        _dir: tempfile::TempDir,
        store: Arc<SqliteStore>,
        blobs: Arc<FsBlobStore>,
    }

    async fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &dir.path().join("catalog.sqlite3"),
            &TableNames::default(),
            Arc::new(SystemClock),
        )
        .await
        .unwrap();
        let blobs = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
        Rig {
            _dir: dir,
            store: Arc::new(store),
            blobs: Arc::new(blobs),
        }
    }

    fn call(
        pk: &PartitionKey,
        uuid: &str,
        status: CallStatus,
        content: Option<&str>,
    ) -> CallRecord {
        CallRecord {
            partition_key: pk.clone(),
            mcp_function_call_uuid: uuid.into(),
            name: "add".into(),
            mcp_type: McpType::Tool,
            arguments: json!({"a": 2, "b": 3}),
            content: content.map(str::to_string),
            content_in_s3: false,
            status,
            notes: None,
            time_spent: (status == CallStatus::Completed).then_some(7),
            updated_by: "mcp_daemon_engine".into(),
            created_at: Timestamp::from_micros(1_000_000),
            updated_at: Timestamp::from_micros(2_000_000),
        }
    }

    #[tokio::test]
    async fn a_calls_states_coalesce_into_one_row_and_large_content_goes_to_the_blob_store() {
        let r = rig().await;
        let rec = Recorder::start(
            r.store.clone(),
            r.blobs.clone(),
            RecorderSettings::default(),
        );
        let pk = PartitionKey::parse("acme#t1").unwrap();
        for i in 0..100 {
            let uuid = format!("{i:020}");
            rec.record(call(&pk, &uuid, CallStatus::Initial, None));
            rec.record(call(&pk, &uuid, CallStatus::Completed, Some("5")));
        }
        let big = "x".repeat(400 * 1024);
        rec.record(call(&pk, "big", CallStatus::Completed, Some(&big)));
        rec.flush().await;
        let page = Page {
            number: 1,
            limit: 1000,
        };
        let rows = r
            .store
            .list_calls(&pk, &CallFilter::default(), page)
            .await
            .unwrap();
        assert_eq!(rows.total, 101);
        let small: Vec<_> = rows
            .items
            .iter()
            .filter(|c| c.mcp_function_call_uuid != "big")
            .collect();
        assert!(
            small
                .iter()
                .all(|c| c.status == CallStatus::Completed && c.content.as_deref() == Some("5"))
        );
        let s = rec.stats();
        assert_eq!(s.recorded.load(Ordering::Relaxed), 201);
        assert!(
            s.written.load(Ordering::Relaxed) <= 101,
            "a call's two states written once when they share a batch: {}",
            s.written.load(Ordering::Relaxed)
        );
        let row = r.store.get_call(&pk, "big").await.unwrap().unwrap();
        assert_eq!((row.content, row.content_in_s3), (None, true));
        let (body, _) = r
            .blobs
            .get("mcp_content/big.json", u64::MAX)
            .await
            .unwrap()
            .unwrap();
        let text: String = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            text, big,
            "the body is the content as a JSON string, as the original writes it"
        );
        assert_eq!(s.offloaded.load(Ordering::Relaxed), 1);
        let other = PartitionKey::parse("other").unwrap();
        let none = r
            .store
            .list_calls(&other, &CallFilter::default(), page)
            .await
            .unwrap();
        assert_eq!(none.total, 0, "nothing in another partition");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let r = rig().await;
        let settings = RecorderSettings {
            queue: 10,
            ..RecorderSettings::default()
        };
        let rec = Recorder::start(r.store.clone(), r.blobs.clone(), settings);
        let pk = PartitionKey::parse("acme").unwrap();
        // One thread, no await: the writer cannot run, so the queue fills and stays full.
        for i in 0..1000 {
            rec.record(call(
                &pk,
                &format!("{i:020}"),
                CallStatus::Completed,
                Some("5"),
            ));
        }
        let s = rec.stats();
        assert_eq!(s.dropped_full.load(Ordering::Relaxed), 990);
        rec.flush().await;
        assert_eq!(s.written.load(Ordering::Relaxed), 10);
        let page = Page {
            number: 1,
            limit: 100,
        };
        let rows = r
            .store
            .list_calls(&pk, &CallFilter::default(), page)
            .await
            .unwrap();
        assert_eq!(rows.total, 10, "what was queued is written");
    }

    #[test]
    fn audit_text_takes_what_the_python_daemon_2_takes() {
        assert_eq!(
            audit_text(&json!({"content": [{"type": "text", "text": "5"}]})),
            "5"
        );
        assert_eq!(
            audit_text(&json!({"contents": [{"uri": "a://b", "text": "ok"}]})),
            "ok"
        );
        assert_eq!(
            audit_text(
                &json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}]})
            ),
            "hi"
        );
        let image =
            json!({"content": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]});
        assert_eq!(audit_text(&image), image.to_string());
    }
}
