//! Tasks (MCP extension `io.modelcontextprotocol/tasks`, stateless era): a call that turns into
//! a task answers at once with its id and runs on; the client polls `tasks/get`, answers its
//! questions with `tasks/update`, and may `tasks/cancel` it. Tasks are owned by the subject that
//! created them and expire `TASK_TTL_MS` after their last change. A task runs and lives on the
//! node that created it; its id names that node (`task-<node>-<random>`), so the task methods
//! reach it from any node (`cluster.rs`). A node that dies takes its tasks with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use rand::RngExt;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::modern::ModernMeta;
use crate::clock::Clock;
use crate::protocol::{RpcError, codes};
use crate::runtime::{ClientRequestError, TaskLink};

pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// How long a task is kept after its last change.
const TASK_TTL_MS: u64 = 3_600_000;
/// How often clients are asked to poll.
const POLL_INTERVAL_MS: u64 = 500;

/// Whether a stateless request declared the tasks extension.
pub fn declared(meta: &ModernMeta) -> bool {
    meta.client_capabilities
        .pointer(&format!("/extensions/{}", EXTENSION.replace('/', "~1")))
        .is_some()
}

pub fn missing_extension() -> RpcError {
    RpcError::new(
        codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("This request needs the {EXTENSION} extension"),
    )
    .with_data(json!({"requiredCapabilities": {"extensions": {EXTENSION: {}}}}))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
    fn terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

struct State {
    status: Status,
    updated_ms: u64,
    result: Option<Value>,
    error: Option<RpcError>,
    /// Open questions: key -> `{method, params}`.
    pending: Map<String, Value>,
    /// Answers from `tasks/update` not yet taken by the function.
    answers: Map<String, Value>,
}

pub struct Task {
    pub id: String,
    subject: String,
    created_ms: u64,
    state: Mutex<State>,
    /// Wakes the function when answers arrive or the task is cancelled.
    wake: Notify,
    /// Cancels the running function.
    pub cancel: CancellationToken,
    clock: Arc<dyn Clock>,
    /// The call's switch to task mode (taken once by `begin`).
    begin: Mutex<Option<oneshot::Sender<()>>>,
    started: AtomicBool,
}

impl Task {
    pub fn new(
        subject: &str,
        node: &str,
        clock: Arc<dyn Clock>,
    ) -> (Arc<Self>, oneshot::Receiver<()>) {
        let bytes: [u8; 16] = rand::rng().random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = clock.now_ms();
        let (tx, rx) = oneshot::channel();
        let task = Arc::new(Self {
            id: format!("task-{node}-{id}"),
            subject: subject.to_string(),
            created_ms: now,
            state: Mutex::new(State {
                status: Status::Working,
                updated_ms: now,
                result: None,
                error: None,
                pending: Map::new(),
                answers: Map::new(),
            }),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            clock,
            begin: Mutex::new(Some(tx)),
            started: AtomicBool::new(false),
        });
        (task, rx)
    }

    fn set(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock();
        if s.status.terminal() {
            return; // a finished or cancelled task never changes again
        }
        f(&mut s);
        s.updated_ms = self.clock.now_ms();
    }

    pub fn complete(&self, result: Value) {
        self.set(|s| {
            s.status = Status::Completed;
            s.result = Some(result);
            s.pending.clear();
        });
    }

    pub fn fail(&self, error: RpcError) {
        self.set(|s| {
            s.status = Status::Failed;
            s.error = Some(error);
            s.pending.clear();
        });
    }

    fn cancel_now(&self) {
        self.set(|s| {
            s.status = Status::Cancelled;
            s.pending.clear();
        });
        self.cancel.cancel();
        self.wake.notify_waiters();
    }

    fn timestamps(&self, s: &State) -> (String, String) {
        (iso8601(self.created_ms), iso8601(s.updated_ms))
    }

    /// The answer to `tools/call` once the call became a task.
    pub fn created_result(&self) -> Value {
        let s = self.state.lock();
        let (created, updated) = self.timestamps(&s);
        json!({"resultType": "task", "taskId": self.id, "status": s.status.as_str(),
            "createdAt": created, "lastUpdatedAt": updated, "ttlMs": TASK_TTL_MS, "pollIntervalMs": POLL_INTERVAL_MS})
    }

    fn detailed(&self) -> Value {
        let s = self.state.lock();
        let (created, updated) = self.timestamps(&s);
        let mut v = json!({"resultType": "complete", "taskId": self.id, "status": s.status.as_str(),
            "createdAt": created, "lastUpdatedAt": updated, "ttlMs": TASK_TTL_MS, "pollIntervalMs": POLL_INTERVAL_MS});
        match s.status {
            Status::Completed => v["result"] = s.result.clone().unwrap_or(Value::Null),
            Status::Failed => {
                v["error"] = s
                    .error
                    .as_ref()
                    .map(RpcError::to_value)
                    .unwrap_or(Value::Null)
            }
            Status::InputRequired => v["inputRequests"] = Value::Object(s.pending.clone()),
            _ => {}
        }
        v
    }
}

#[async_trait]
impl TaskLink for Task {
    fn begin(&self) {
        if let Some(tx) = self.begin.lock().take() {
            self.started.store(true, Ordering::SeqCst);
            let _ = tx.send(());
        }
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    async fn ask_all(
        &self,
        asks: Vec<(String, String, Value)>,
    ) -> Result<Vec<Value>, ClientRequestError> {
        self.set(|s| {
            for (key, method, params) in &asks {
                if !s.answers.contains_key(key) {
                    s.pending
                        .insert(key.clone(), json!({"method": method, "params": params}));
                }
            }
            if !s.pending.is_empty() {
                s.status = Status::InputRequired;
            }
        });
        loop {
            let waiting = self.wake.notified();
            {
                let mut s = self.state.lock();
                if s.status == Status::Cancelled {
                    return Err(ClientRequestError::Cancelled);
                }
                if asks.iter().all(|(k, _, _)| s.answers.contains_key(k)) {
                    let answers = asks
                        .iter()
                        .filter_map(|(k, _, _)| s.answers.remove(k))
                        .collect();
                    if s.pending.is_empty() {
                        s.status = Status::Working;
                        s.updated_ms = self.clock.now_ms();
                    }
                    return Ok(answers);
                }
            }
            waiting.await;
        }
    }
}

/// Tasks of this node, by id.
#[derive(Default)]
pub struct TaskStore {
    tasks: Mutex<HashMap<String, Arc<Task>>>,
}

impl TaskStore {
    pub fn insert(&self, task: Arc<Task>) {
        self.tasks.lock().insert(task.id.clone(), task);
    }

    /// The caller's task, or -32602 (unknown ids and other users' tasks look the same).
    fn find(&self, id: &str, subject: &str) -> Result<Arc<Task>, RpcError> {
        self.tasks
            .lock()
            .get(id)
            .filter(|t| t.subject == subject)
            .cloned()
            .ok_or_else(|| RpcError::invalid_params(format!("Unknown task: {id}")))
    }

    pub fn get(&self, id: &str, subject: &str) -> Result<Value, RpcError> {
        Ok(self.find(id, subject)?.detailed())
    }

    /// Takes answers to open questions; unknown keys are ignored.
    pub fn update(
        &self,
        id: &str,
        subject: &str,
        responses: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let task = self.find(id, subject)?;
        task.set(|s| {
            for (k, v) in responses {
                if s.pending.remove(k).is_some() {
                    s.answers.insert(k.clone(), v.clone());
                }
            }
        });
        task.wake.notify_waiters();
        Ok(json!({"resultType": "complete"}))
    }

    pub fn cancel(&self, id: &str, subject: &str) -> Result<Value, RpcError> {
        self.find(id, subject)?.cancel_now();
        Ok(json!({"resultType": "complete"}))
    }

    /// Drops tasks untouched for longer than their TTL.
    pub fn purge(&self, now_ms: u64) -> usize {
        let mut tasks = self.tasks.lock();
        let before = tasks.len();
        tasks.retain(|_, t| now_ms.saturating_sub(t.state.lock().updated_ms) < TASK_TTL_MS);
        before - tasks.len()
    }

    pub fn count(&self) -> usize {
        self.tasks.lock().len()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.tasks.lock().contains_key(id)
    }
}

/// The node a task id names (`task-<node>-<random>`).
pub fn node_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("task-")?;
    let (node, _) = rest.rsplit_once('-')?;
    Some(node)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (UTC, proleptic Gregorian).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant), shifted so the era starts on 0000-03-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_311_127_123), "2026-11-22T01:32:07.123Z");
    }

    #[tokio::test]
    async fn questions_wait_for_updates_and_terminal_states_stick() {
        let clock = Arc::new(ManualClock::new(1_000));
        let (task, _rx) = Task::new("alice", "srv00000000", clock.clone());
        let store = TaskStore::default();
        store.insert(task.clone());
        let asker = {
            let t = task.clone();
            tokio::spawn(async move {
                t.ask_all(vec![
                    ("a".into(), "elicitation/create".into(), json!({})),
                    ("b".into(), "elicitation/create".into(), json!({})),
                ])
                .await
            })
        };
        while store.get(&task.id, "alice").unwrap()["status"] != "input_required" {
            tokio::task::yield_now().await;
        }
        assert!(store.get(&task.id, "mallory").is_err(), "tasks are owned");
        store
            .update(
                &task.id,
                "alice",
                json!({"a": {"action": "accept"}, "zzz": {}})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        let now = store.get(&task.id, "alice").unwrap();
        assert_eq!(now["status"], "input_required");
        assert!(now["inputRequests"].get("a").is_none() && now["inputRequests"].get("b").is_some());
        store
            .update(
                &task.id,
                "alice",
                json!({"b": {"action": "decline"}}).as_object().unwrap(),
            )
            .unwrap();
        let answers = asker.await.unwrap().unwrap();
        assert_eq!(answers.len(), 2);
        store.cancel(&task.id, "alice").unwrap();
        task.complete(json!({"content": []}));
        assert_eq!(
            store.get(&task.id, "alice").unwrap()["status"],
            "cancelled",
            "cancelled stays cancelled"
        );
        clock.advance_ms(TASK_TTL_MS + 1);
        assert_eq!(store.purge(clock.now_ms()), 1);
    }
}
