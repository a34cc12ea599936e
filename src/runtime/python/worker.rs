//! One Python worker process: started behind the sandbox launcher, spoken to in frames
//! (4-byte big-endian length + JSON) on its stdin/stdout, its stderr drained into the log.
//! Dropping a `Worker` kills it and everything it started.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::runtime::proc::logpipe::{LogCaps, LogPipe};
use crate::runtime::proc::{self, Launch, Scratch};
use crate::runtime::sandbox::SandboxSpec;

/// The Python side, shipped inside the binary and passed to the interpreter with `-c`.
pub const SHIM: &str = include_str!("worker.py");

/// What every worker of one pool is started with.
pub struct WorkerConfig {
    pub launcher: PathBuf,
    pub python: PathBuf,
    /// The sandbox, without the scratch folder (added per worker).
    pub spec: SandboxSpec,
    pub scratch_root: PathBuf,
    /// Folders first on `sys.path` (the bundle).
    pub paths: Vec<PathBuf>,
    pub max_frame: usize,
    pub cpu_per_call: Option<u64>,
    pub log: LogCaps,
    pub spawn_timeout: Duration,
    /// Live workers of the runtime (shutdown waits for them).
    pub live: Arc<AtomicUsize>,
    /// Names the first log lines (until a call names its function).
    pub module: String,
}

/// A frame from the worker.
#[derive(Debug, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum FromWorker {
    Ready {
        #[allow(dead_code)]
        pid: i64,
    },
    Ok {
        id: u64,
        out: Out,
        #[serde(default)]
        cpu: f64,
        #[serde(default)]
        kids: bool,
    },
    Err {
        id: u64,
        kind: String,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        rid: Option<String>,
        #[serde(default)]
        cpu: f64,
        #[serde(default)]
        kids: bool,
    },
    Progress {
        id: u64,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    },
    Mcplog {
        id: u64,
        level: String,
        data: Value,
        logger: Option<String>,
    },
    Ask {
        id: u64,
        rid: String,
        method: String,
        #[serde(default)]
        params: Value,
        key: Option<String>,
    },
}

/// A call's result, already shaped by the shim (the Python daemon's mapping rules).
#[derive(Debug, Deserialize)]
#[serde(tag = "k", content = "v", rename_all = "lowercase")]
pub enum Out {
    Text(String),
    Content(Vec<Value>),
    Result(Value),
}

/// Why no frame came.
#[derive(Debug)]
pub enum ReadError {
    /// The worker closed its end: it exited or crashed.
    Closed,
    /// A frame over the size limit, or one that is not JSON of the protocol.
    Bad(String),
}

pub struct Worker {
    child: Child,
    pub pid: i32,
    stdin: ChildStdin,
    frames: FramedRead<ChildStdout, LengthDelimitedCodec>,
    log: Option<LogPipe>,
    /// Function definitions this worker has been sent (later calls send only the id).
    pub known: HashSet<u64>,
    pub calls: u64,
    /// CPU seconds the worker has used (reported after each call).
    pub cpu: f64,
    pub idle_since: Instant,
    /// Set while a call runs, cleared when it ended cleanly: a worker dropped while marked
    /// busy (a timed-out, crashed or abandoned call) is never reused.
    pub busy: bool,
    live: Arc<AtomicUsize>,
    reaped: bool,
    _scratch: Scratch,
}

static NEXT: AtomicUsize = AtomicUsize::new(1);

impl Worker {
    /// Starts a worker and waits for its `ready` frame.
    pub async fn spawn(cfg: &WorkerConfig) -> Result<Self, String> {
        let started = Instant::now();
        let name = format!(
            "w{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let scratch = Scratch::create(&cfg.scratch_root, &name).map_err(|e| {
            format!(
                "cannot create the scratch folder under {}: {e}",
                cfg.scratch_root.display()
            )
        })?;
        let mut spec = cfg.spec.clone();
        spec.read_only.extend(cfg.paths.iter().cloned());
        spec.read_write.push(scratch.path().to_path_buf());
        spec.read_write.push(PathBuf::from("/dev/null"));
        let conf = serde_json::json!({
            "paths": cfg.paths,
            "max_frame": cfg.max_frame,
            "cpu_per_call": cfg.cpu_per_call,
        });
        let args: Vec<OsString> = vec![
            "-I".into(),
            "-B".into(),
            "-c".into(),
            SHIM.into(),
            conf.to_string().into(),
        ];
        let mut child = Launch {
            launcher: &cfg.launcher,
            spec: &spec,
            program: &cfg.python,
            args: &args,
            scratch: scratch.path(),
        }
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cfg.launcher.display()))?;
        let pid = child.id().map_or(0, |p| p as i32);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the worker has no pipes".into());
        };
        cfg.live.fetch_add(1, Ordering::SeqCst);
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(cfg.max_frame + 1024)
            .new_codec();
        let mut worker = Self {
            child,
            pid,
            stdin,
            frames: FramedRead::new(stdout, codec),
            log: Some(LogPipe::spawn(
                stderr,
                "python",
                &cfg.module,
                pid as u32,
                cfg.log,
            )),
            known: HashSet::new(),
            calls: 0,
            cpu: 0.0,
            idle_since: Instant::now(),
            busy: true,
            live: cfg.live.clone(),
            reaped: false,
            _scratch: scratch,
        };
        match tokio::time::timeout(cfg.spawn_timeout, worker.next()).await {
            Ok(Ok(FromWorker::Ready { .. })) => {
                worker.busy = false;
                tracing::debug!(pid, module = %cfg.module, ms = started.elapsed().as_millis() as u64, "python worker started");
                Ok(worker)
            }
            Ok(Ok(other)) => Err(format!(
                "the worker started with {other:?} instead of ready"
            )),
            Ok(Err(_)) => Err(worker.ended_because(None).await),
            Err(_) => Err(format!(
                "the worker was not ready within {} s",
                cfg.spawn_timeout.as_secs()
            )),
        }
    }

    pub async fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(frame.len() + 4);
        buf.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        buf.extend_from_slice(frame);
        self.stdin.write_all(&buf).await
    }

    /// The next frame. Cancel-safe (a frame read in part stays buffered).
    pub async fn next(&mut self) -> Result<FromWorker, ReadError> {
        match self.frames.next().await {
            None => Err(ReadError::Closed),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(ReadError::Bad(format!("a frame over the size limit ({e})")))
            }
            Some(Err(_)) => Err(ReadError::Closed),
            Some(Ok(bytes)) => parse(&bytes),
        }
    }

    /// Sends a signal to the worker process itself (cancellation: SIGUSR1).
    pub fn signal(&self, sig: rustix::process::Signal) {
        if let Some(p) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(p, sig);
        }
    }

    /// Whether the worker process has exited (checked before reusing an idle one). Does not
    /// reap it: until it is reaped its pid cannot be reused, so killing by pid stays safe.
    pub fn exited(&self) -> bool {
        proc::exited(self.pid)
    }

    /// Why the worker ended, once its pipe closed: waits briefly until it has exited (it is
    /// on its way out), kills what it left, reaps it, and appends its last log line when that
    /// helps.
    pub async fn ended_because(&mut self, cpu_limit: Option<u64>) -> String {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                // Closed its pipe but still running: not reaped, so its pid is still ours.
                proc::kill_tree(self.pid);
                self.child.wait().await.ok()
            }
        };
        self.mark_reaped();
        proc::kill_leftovers(self.pid);
        let described = match status {
            Some(s) => proc::describe_exit(s, cpu_limit),
            None => "stopped answering".to_string(),
        };
        let last = match self.log.take() {
            Some(log) => log.finish(Duration::from_millis(500)).await,
            None => Vec::new(),
        };
        match last.last() {
            Some(line) if described.contains("see the log") || described.contains("code") => {
                format!("{described}: {line}")
            }
            _ => described,
        }
    }

    /// Kills the worker and its tree and waits for it.
    pub async fn reap(&mut self) {
        if self.reaped {
            return;
        }
        proc::kill_tree(self.pid);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.mark_reaped();
    }

    fn mark_reaped(&mut self) {
        if !self.reaped {
            self.reaped = true;
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped {
            // Synchronous kill; tokio reaps the dropped child (kill_on_drop) in the background.
            proc::kill_tree(self.pid);
            self.mark_reaped();
        }
    }
}

fn parse(bytes: &BytesMut) -> Result<FromWorker, ReadError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
        ReadError::Bad(format!("a frame that is not of the protocol ({e}): {head}"))
    })
}
