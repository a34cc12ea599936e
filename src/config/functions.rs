//! Settings of operators' own functions: the Python worker pools and the command runtime
//! (deadlines, limits, concurrency, the sandbox) and where bundles come from and are unpacked
//! (the Python daemon's `FUNCT_*` names and defaults). Flags and environment variables like the
//! rest of `Config`; printed by `check-config`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::ConfigError;

/// How hard the worker sandbox must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Refuse to run a function unless every layer (limits, no new privileges, Landlock) holds.
    Require,
    /// Apply what the kernel allows and log what is missing.
    BestEffort,
    /// Limits and process groups only (no Landlock): for kernels without it, knowingly.
    Off,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct FunctionSettings {
    /// The Python interpreter workers run. Unset: `python3` on PATH, resolved once to its real
    /// executable (a pyenv shim would cost ~60 ms per worker start).
    #[arg(long, env = "PYTHON_BIN")]
    pub python_bin: Option<PathBuf>,

    /// Seconds a function call may take when its entry sets no `timeout_secs`; past it the
    /// worker is killed and the call answers an error.
    #[arg(long, env = "FUNCTION_TIMEOUT_SECS", default_value_t = 30)]
    pub function_timeout_secs: u64,

    /// Private writable memory (heap, anonymous mappings) a worker process may use, in MiB
    /// (RLIMIT_DATA).
    #[arg(long, env = "FUNCTION_MEMORY_MB", default_value_t = 1024)]
    pub function_memory_mb: u64,

    /// CPU seconds one call may use (RLIMIT_CPU, renewed per call).
    #[arg(long, env = "FUNCTION_CPU_SECS", default_value_t = 60)]
    pub function_cpu_secs: u64,

    /// Files a worker may have open at once (RLIMIT_NOFILE).
    #[arg(long, env = "FUNCTION_OPEN_FILES", default_value_t = 256)]
    pub function_open_files: u64,

    /// Calls running at once in one worker pool (one pool per bundle version); each running
    /// call has a worker process of its own.
    #[arg(long, env = "FUNCTION_CALLS_PER_POOL", default_value_t = 4)]
    pub function_calls_per_pool: usize,

    /// Calls running at once in all pools together.
    #[arg(long, env = "FUNCTION_CALLS_TOTAL", default_value_t = 16)]
    pub function_calls_total: usize,

    /// Calls that may wait for a worker of one pool; past it a call fails at once as busy.
    #[arg(long, env = "FUNCTION_QUEUE", default_value_t = 64)]
    pub function_queue: usize,

    /// Seconds an idle worker is kept warm before it is stopped.
    #[arg(long, env = "WORKER_IDLE_SECS", default_value_t = 300)]
    pub worker_idle_secs: u64,

    /// Each worker's own folder (its HOME and TMPDIR, the only place it may write) is created
    /// under this one. Unset: `<temp dir>/mcp-daemon-workers`.
    #[arg(long, env = "WORKER_SCRATCH_DIR")]
    pub worker_scratch_dir: Option<PathBuf>,

    /// `require`, `best-effort` or `off` (docs/FUNCTIONS.md says what each layer guarantees).
    #[arg(long, env = "FUNCTION_SANDBOX", value_enum, default_value_t = SandboxMode::Require)]
    pub function_sandbox: SandboxMode,

    /// S3 bucket of function bundles (`<package_name>.zip` at its root). Unset: bundles are
    /// read from FUNCT_BUNDLE_DIR.
    #[arg(long, env = "FUNCT_BUCKET_NAME")]
    pub funct_bucket_name: Option<String>,

    /// The local folder of bundles used when FUNCT_BUCKET_NAME is unset. Unset:
    /// `<DATA_DIR>/bundles`.
    #[arg(long, env = "FUNCT_BUNDLE_DIR")]
    pub funct_bundle_dir: Option<PathBuf>,

    /// Where downloaded and verified bundle archives are kept.
    #[arg(long, env = "FUNCT_ZIP_PATH", default_value = "/tmp/funct_zips")]
    pub funct_zip_path: PathBuf,

    /// Where bundles are unpacked, one folder per version.
    #[arg(long, env = "FUNCT_EXTRACT_PATH", default_value = "/tmp/functs")]
    pub funct_extract_path: PathBuf,

    /// Seconds between checks of a bundle's ETag in the store (0: on every call); a changed
    /// bundle is fetched and new calls run it, calls in progress finish on the old one.
    #[arg(long, env = "BUNDLE_CHECK_SECS", default_value_t = 30)]
    pub bundle_check_secs: u64,

    /// Install a bundle's `requirements.txt` with pip into its own virtual environment (needs
    /// the package index, or a `wheels/` folder in the bundle). `false`: such bundles are refused.
    #[arg(long, env = "BUNDLE_PIP_INSTALL", default_value_t = true, action = clap::ArgAction::Set)]
    pub bundle_pip_install: bool,

    /// S3 endpoint for bundles (e.g. an S3-compatible server). Unset: AWS_ENDPOINT_URL, else AWS.
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub aws_endpoint_url_s3: Option<String>,

    #[arg(long, env = "AWS_ENDPOINT_URL", hide = true)]
    pub aws_endpoint_url: Option<String>,
}

impl FunctionSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("function_timeout_secs", self.function_timeout_secs),
            ("function_memory_mb", self.function_memory_mb),
            ("function_cpu_secs", self.function_cpu_secs),
            ("function_open_files", self.function_open_files),
            (
                "function_calls_per_pool",
                self.function_calls_per_pool as u64,
            ),
            ("function_calls_total", self.function_calls_total as u64),
            ("worker_idle_secs", self.worker_idle_secs),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(ConfigError::Zero(name)),
            None => Ok(()),
        }
    }

    /// The S3 endpoint override, if any (`AWS_ENDPOINT_URL_S3` wins over `AWS_ENDPOINT_URL`).
    pub fn s3_endpoint(&self) -> Option<&str> {
        self.aws_endpoint_url_s3
            .as_deref()
            .or(self.aws_endpoint_url.as_deref())
    }
}
