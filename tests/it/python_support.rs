//! Shared pieces of the Python and command runtime tests: a runtime on temp folders with the
//! real launcher, fixture modules, a `Peer` that records what a function sent, and a look at
//! the process table.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_daemon::auth::Principal;
use mcp_daemon::runtime::{
    ClientRequestError, CodeRef, Ctx, Function, FunctionError, FunctionSpec, Kind, LocalCode,
    Output, Peer, PythonRuntime, PythonSettings, ReturnType, Runtime,
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const LAUNCHER: &str = env!("CARGO_BIN_EXE_mcp-daemon");

/// A runtime whose workers live under one temp folder, with the modules of `files` (path ->
/// source) written into a code folder.
pub struct Rig {
    pub runtime: PythonRuntime,
    pub code: tempfile::TempDir,
    pub scratch: tempfile::TempDir,
}

impl Rig {
    pub fn new(files: &[(&str, &str)], tune: impl FnOnce(&mut PythonSettings)) -> Self {
        let code = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = code.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let scratch = tempfile::tempdir().unwrap();
        let mut settings = PythonSettings {
            launcher: Some(LAUNCHER.into()),
            scratch_root: scratch.path().join("workers"),
            default_timeout: Duration::from_secs(20),
            ..Default::default()
        };
        tune(&mut settings);
        Self {
            runtime: PythonRuntime::new(settings, Arc::new(LocalCode)),
            code,
            scratch,
        }
    }

    pub fn spec(
        &self,
        kind: Kind,
        module: &str,
        class: Option<&str>,
        function: &str,
    ) -> FunctionSpec {
        FunctionSpec {
            kind,
            entry: function.to_string(),
            code: CodeRef {
                module: module.into(),
                package: module.into(),
                source: Some(self.code.path().to_string_lossy().into_owned()),
            },
            class: class.map(str::to_string),
            function: function.into(),
            setting: json!({}),
            return_type: ReturnType::Text,
            is_async: false,
            runtime: None,
            command: None,
            timeout: None,
        }
    }

    pub async fn bind(&self, spec: &FunctionSpec) -> Arc<dyn Function> {
        self.runtime.bind(spec).await.unwrap()
    }

    /// Live (not zombie) processes started by this rig's workers: they all have HOME under
    /// its scratch folder, children included.
    pub fn processes(&self) -> Vec<(i32, String)> {
        processes_with_home_under(&self.scratch.path().join("workers"))
    }

    /// Waits (bounded) until no process of this rig remains; returns what is left.
    pub async fn leftovers(&self) -> Vec<(i32, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let left = self.processes();
            if left.is_empty() || tokio::time::Instant::now() > deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn processes_with_home_under(root: &Path) -> Vec<(i32, String)> {
    let needle = format!("HOME={}/", root.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env
            .split(|b| *b == 0)
            .any(|v| v.starts_with(needle.as_bytes()))
        {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if state == "Z" || state == "X" || state.is_empty() {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: String = String::from_utf8_lossy(&cmd).chars().take(80).collect();
        out.push((pid, cmd.replace('\0', " ")));
    }
    out
}

/// A `Peer` that records notifications and client requests, and answers requests with
/// `answer`. `seen` fires on every notification.
pub struct RecPeer {
    pub notes: Mutex<Vec<(String, Value)>>,
    pub requests: Mutex<Vec<(String, Value)>>,
    pub answer: Value,
    pub seen: Notify,
}

impl RecPeer {
    pub fn new(answer: Value) -> Arc<Self> {
        Arc::new(Self {
            notes: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            answer,
            seen: Notify::new(),
        })
    }

    pub fn notes_of(&self, method: &str) -> Vec<Value> {
        self.notes
            .lock()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Waits until a notification whose params contain `text` arrived.
    pub async fn wait_for(&self, text: &str) {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.seen.notified();
                if self
                    .notes
                    .lock()
                    .iter()
                    .any(|(_, p)| p.to_string().contains(text))
                {
                    return;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no notification with {text}"));
    }
}

#[async_trait]
impl Peer for RecPeer {
    async fn notify(&self, method: &str, params: Value) {
        self.notes.lock().push((method.to_string(), params));
        self.seen.notify_waiters();
    }
    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientRequestError> {
        self.requests.lock().push((method.to_string(), params));
        Ok(self.answer.clone())
    }
    async fn close_stream(&self) {}
    fn client_supports(&self, _capability: &str) -> bool {
        true
    }
    async fn resource_updated(&self, _uri: &str) {}
    async fn list_changed(&self, _list: mcp_daemon::runtime::List) {}
    async fn notify_session(&self, _method: &str, _params: Value) {}
}

/// A legacy-era context for `entry` with a progress token.
pub fn ctx_for(peer: &Arc<RecPeer>, entry: &str) -> Ctx {
    Ctx::new(
        None,
        Principal::anonymous(),
        CancellationToken::new(),
        Some(json!("tok")),
        None,
        peer.clone(),
    )
    .for_entry(entry, json!({}))
}

pub async fn call(
    f: &Arc<dyn Function>,
    entry: &str,
    args: Value,
) -> Result<Output, FunctionError> {
    let peer = RecPeer::new(json!({}));
    f.call(Arc::new(ctx_for(&peer, entry)), args).await
}

pub fn text(r: Result<Output, FunctionError>) -> String {
    match r {
        Ok(Output::Text(t)) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

pub fn failure(r: Result<Output, FunctionError>) -> String {
    match r {
        Err(FunctionError::Failed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}
