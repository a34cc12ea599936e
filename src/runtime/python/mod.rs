//! The Python runtime: operators' Python modules, called exactly as the original Python
//! daemon calls them (`cls(logger, **setting)`, tools `fn(**arguments)`, resources `fn(uri)`,
//! prompts `fn(name, **arguments)`), each call in a long-lived sandboxed worker process of a
//! pool kept per code version. `worker.py` is the Python side, shipped in the binary.

mod call;
mod interp;
mod pool;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use self::call::{CallLimits, FnDef};
use self::interp::Interps;
use self::pool::{AcquireError, PoolLimits, Pools};
use self::worker::WorkerConfig;
use super::proc::logpipe::LogCaps;
use super::sandbox::{Limits, SandboxPolicy, SandboxSpec, system_read_paths};
use super::{
    CodeSource, Ctx, Function, FunctionError, FunctionSpec, Kind, Output, Runtime, RuntimeError,
};

pub use self::worker::SHIM;

/// How Python workers run. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct PythonSettings {
    /// The interpreter workers run (a bundle with its own virtual environment uses that
    /// one's). `None`: `python3` on PATH, resolved once to its real `sys.executable` (a pyenv
    /// shim costs ~60 ms a start).
    pub interpreter: Option<PathBuf>,
    /// Our own binary, whose hidden `sandbox-exec` subcommand confines a worker and execs
    /// the interpreter. `None`: `std::env::current_exe()`.
    pub launcher: Option<PathBuf>,
    /// A call's deadline when its entry sets no `timeout_secs`. Default 30 s. It covers
    /// waiting for a worker and the call itself, but not the time the client takes to answer
    /// the function's questions (elicitation, sampling).
    pub default_timeout: Duration,
    /// Per-worker limits; `cpu_secs` is per call. Defaults: 1 GiB, 60 s, 256 files, 256 MiB.
    pub limits: Limits,
    /// The hard RLIMIT_CPU: CPU seconds a worker may use over its life; it is retired before
    /// a call could cross it. Default 3600.
    pub cpu_secs_per_worker: Option<u64>,
    /// Retire a worker after this many calls. Default `None` (never).
    pub max_calls_per_worker: Option<u64>,
    /// Calls running at once in one pool (one pool per code version). Default 4.
    pub max_calls_per_pool: usize,
    /// Calls running at once in all pools. Default 16.
    pub max_calls_total: usize,
    /// Calls that may wait for a slot in one pool; past it a call fails at once with a busy
    /// error. Default 64.
    pub max_queue_per_pool: usize,
    /// Idle workers are stopped after this long. Default 300 s.
    pub idle_lifetime: Duration,
    /// Each worker gets its own folder under this one (its HOME, TMPDIR and working
    /// directory, the only place it may write). Default `<temp dir>/mcp-daemon-workers`.
    pub scratch_root: PathBuf,
    /// How hard the sandbox must hold. Default `Require`.
    pub sandbox: SandboxPolicy,
    /// More folders workers may read (e.g. a shared data set), besides the system's, the
    /// interpreter's and the bundle's.
    pub read_paths: Vec<PathBuf>,
    /// After a cancellation, how long the function has to end before its worker is killed.
    /// Default 2 s.
    pub cancel_grace: Duration,
    /// The largest result frame (bytes). Default 16 MiB.
    pub max_result_bytes: usize,
    /// How long a new worker may take to be ready. Default 20 s.
    pub spawn_timeout: Duration,
    /// Caps on the log lines of one worker.
    pub log: LogCaps,
}

impl Default for PythonSettings {
    fn default() -> Self {
        Self {
            interpreter: None,
            launcher: None,
            default_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            cpu_secs_per_worker: Some(3600),
            max_calls_per_worker: None,
            max_calls_per_pool: 4,
            max_calls_total: 16,
            max_queue_per_pool: 64,
            idle_lifetime: Duration::from_secs(300),
            scratch_root: std::env::temp_dir().join("mcp-daemon-workers"),
            sandbox: SandboxPolicy::Require,
            read_paths: Vec::new(),
            cancel_grace: Duration::from_secs(2),
            max_result_bytes: 16 << 20,
            spawn_timeout: Duration::from_secs(20),
            log: LogCaps::default(),
        }
    }
}

/// The runtime named `python`: serves every entry without a `command` that the builtin
/// runtime (tried first) does not take.
pub struct PythonRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    settings: PythonSettings,
    code: Arc<dyn CodeSource>,
    pools: Arc<Pools>,
    interps: Interps,
}

impl PythonRuntime {
    pub fn new(settings: PythonSettings, code: Arc<dyn CodeSource>) -> Self {
        let pools = Pools::new(PoolLimits {
            per_pool: settings.max_calls_per_pool,
            total: settings.max_calls_total,
            queue: settings.max_queue_per_pool,
            idle_lifetime: settings.idle_lifetime,
        });
        Self {
            inner: Arc::new(Inner {
                settings,
                code,
                pools,
                interps: Interps::default(),
            }),
        }
    }

    /// Workers alive right now (idle or running), across all pools.
    pub fn live_workers(&self) -> usize {
        self.inner.pools.live.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Runtime for PythonRuntime {
    fn name(&self) -> &'static str {
        "python"
    }

    /// Every entry without a `command`: it comes after the builtin runtime, which keeps the
    /// entries that are its own (a builtin name with no class and no source), so a class or a
    /// bundle under a builtin's name (the Python daemon's demo is `mcp_function_demo`) is Python.
    fn serves(&self, spec: &FunctionSpec) -> bool {
        spec.command.is_none()
    }

    async fn bind(&self, spec: &FunctionSpec) -> Result<Arc<dyn Function>, RuntimeError> {
        if !is_dotted_name(&spec.code.module) {
            return Err(RuntimeError::Invalid(format!(
                "module_name '{}' is not a Python module name",
                spec.code.module
            )));
        }
        if !is_name(&spec.function) || spec.class.as_deref().is_some_and(|c| !is_name(c)) {
            return Err(RuntimeError::Invalid(format!(
                "{}: class_name / function_name must be Python names",
                spec.entry
            )));
        }
        self.inner.code.exists(&spec.code).await?;
        if spec.code.is_installed() {
            self.check_installed(&spec.code.module).await?;
        }
        static NEXT_FN: AtomicU64 = AtomicU64::new(1);
        Ok(Arc::new(PythonFunction {
            id: NEXT_FN.fetch_add(1, Ordering::Relaxed),
            def: FnDef {
                kind: spec.kind.as_str(),
                entry: spec.entry.clone(),
                module: spec.code.module.clone(),
                class: spec.class.clone(),
                function: spec.function.clone(),
                setting: spec.setting.clone(),
                return_type: spec.return_type.as_str(),
                is_async: spec.is_async,
            },
            spec: spec.clone(),
            inner: self.inner.clone(),
        }))
    }

    async fn shutdown(&self) {
        self.inner.pools.shutdown().await;
    }
}

impl PythonRuntime {
    /// An installed package must be on the interpreter's import path: its folder, or a
    /// `<name>.py` / extension module, in one of the folders the interpreter imports from.
    /// Only the file system is looked at, so none of its code runs.
    async fn check_installed(&self, module: &str) -> Result<(), RuntimeError> {
        let python = self
            .inner
            .settings
            .interpreter
            .clone()
            .unwrap_or_else(|| PathBuf::from("python3"));
        let interp = self
            .inner
            .interps
            .get(&python)
            .await
            .map_err(RuntimeError::Unavailable)?;
        let top = module.split('.').next().unwrap_or(module);
        let found = interp::import_dirs(&interp).iter().any(|dir| {
            dir.join(top).is_dir()
                || dir.join(format!("{top}.py")).is_file()
                || std::fs::read_dir(dir).is_ok_and(|entries| {
                    entries.filter_map(Result::ok).any(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        name.starts_with(&format!("{top}.")) && name.ends_with(".so")
                    })
                })
        });
        if found {
            Ok(())
        } else {
            Err(RuntimeError::NotFound(format!(
                "module '{module}' is not installed for {} (no source: an installed package), and no bundle names it",
                interp.executable.display()
            )))
        }
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn is_dotted_name(s: &str) -> bool {
    s.split('.').all(is_name)
}

struct PythonFunction {
    id: u64,
    def: FnDef,
    spec: FunctionSpec,
    inner: Arc<Inner>,
}

#[async_trait]
impl Function for PythonFunction {
    async fn call(&self, ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
        let s = &self.inner.settings;
        let timeout = self.spec.timeout.unwrap_or(s.default_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        let entry = self.spec.entry.as_str();
        let location = self
            .inner
            .code
            .locate(&self.spec.code)
            .await
            .map_err(|e| FunctionError::Failed(format!("{entry}: {e}")))?;
        let python = match location.python.clone().or_else(|| s.interpreter.clone()) {
            Some(p) => p,
            None => PathBuf::from("python3"),
        };
        let interp = self
            .inner
            .interps
            .get(&python)
            .await
            .map_err(|e| FunctionError::Failed(format!("{entry}: {e}")))?;
        let launcher = match &s.launcher {
            Some(l) => l.clone(),
            None => std::env::current_exe().map_err(|e| {
                FunctionError::Failed(format!("{entry}: cannot find the launcher: {e}"))
            })?,
        };
        let code = &self.spec.code;
        let key = format!("{}|{}", location.version, interp.executable.display());
        let lineage = format!("{}|{}|{:?}", code.package, code.module, code.source);
        let pools = self.inner.pools.clone();
        let pool = pools.pool(&key, &lineage, &code.module, || {
            tracing::info!(
                module = %self.spec.code.module,
                version = %location.version,
                python = %interp.executable.display(),
                python_version = %interp.version,
                "python worker pool created"
            );
            let mut spec = SandboxSpec::new(s.sandbox, &s.limits);
            spec.cpu_soft_secs = s.limits.cpu_secs;
            spec.cpu_hard_secs = s.cpu_secs_per_worker.or(s.limits.cpu_secs);
            spec.read_only = system_read_paths();
            spec.read_only.extend(interp.read_paths.iter().cloned());
            spec.read_only.extend(s.read_paths.iter().cloned());
            WorkerConfig {
                launcher,
                python: interp.executable.clone(),
                spec,
                scratch_root: s.scratch_root.clone(),
                paths: location.paths.clone(),
                max_frame: s.max_result_bytes,
                cpu_per_call: s.limits.cpu_secs,
                log: s.log,
                spawn_timeout: s.spawn_timeout,
                live: pools.live.clone(),
                module: self.spec.code.module.clone(),
            }
        });
        let acquired = tokio::select! {
            r = pools.acquire(&pool) => r,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(FunctionError::Failed(format!(
                    "{entry} did not finish within {}s (no python worker became free)",
                    timeout.as_secs_f64()
                )));
            }
            _ = ctx.cancel.cancelled() => {
                return Err(FunctionError::Client(super::ClientRequestError::Cancelled));
            }
        };
        let mut lease = match acquired {
            Ok(l) => l,
            Err(AcquireError::Busy(m)) => return Err(FunctionError::Failed(m)),
            Err(AcquireError::Spawn(m)) => {
                return Err(FunctionError::Failed(format!(
                    "{entry}: cannot start a python worker: {m}"
                )));
            }
        };
        let limits = CallLimits {
            deadline,
            timeout,
            cancel_grace: s.cancel_grace,
            cpu_per_call: s.limits.cpu_secs,
            memory_bytes: s.limits.memory_bytes,
        };
        let kind: Kind = self.spec.kind;
        let out = call::run(
            &mut lease,
            &pools.shutdown,
            self.id,
            &self.def,
            kind,
            &ctx,
            &args,
            limits,
        )
        .await;
        if let Some(w) = lease.worker()
            && call::worn_out(
                w,
                s.limits.cpu_secs,
                s.cpu_secs_per_worker,
                s.max_calls_per_worker,
            )
        {
            lease.discard().await;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_names_are_checked() {
        assert!(is_name("count_items"));
        assert!(is_name("_x1"));
        assert!(!is_name("1x"));
        assert!(!is_name("a-b"));
        assert!(!is_name(""));
        assert!(is_dotted_name("pkg.sub_mod"));
        assert!(!is_dotted_name("pkg..sub"));
        assert!(!is_dotted_name("../etc"));
    }
}
