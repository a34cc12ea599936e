//! The worker launcher: a hidden `mcp-daemon sandbox-exec --spec <json> -- <program> <args>`
//! subcommand of our own binary that confines itself (new session, parent-death signal,
//! subreaper, rlimits, no new privileges, no capabilities, Landlock) and then `exec`s the
//! program. It exists because doing this between `fork` and `exec` in the daemon needs
//! `pre_exec`, which is unsafe; a fresh single-threaded process of our own can do it with safe
//! calls. `probe` runs the launcher in a report-only mode so start-up and `check-config` can
//! say which layers hold on this machine.

mod apply;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// The subcommand name `main` dispatches on before anything else runs.
pub const SUBCOMMAND: &str = "sandbox-exec";

/// How hard the sandbox must hold. Limits (rlimits), the new session, the parent-death signal
/// and no-new-privileges apply under every policy; the policy decides about Landlock and
/// dropping capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxPolicy {
    /// Landlock must restrict the filesystem (at least partially: older kernels lack some
    /// rights), or the worker does not start.
    #[default]
    Require,
    /// Apply what the kernel allows and say what did not hold (in the log and the report).
    BestEffort,
    /// No Landlock and no capability dropping (debugging; trusted code only).
    Off,
}

impl SandboxPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "require" => Some(Self::Require),
            "best-effort" | "best_effort" => Some(Self::BestEffort),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// Resource limits of one worker process (each `None` leaves the inherited limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// RLIMIT_DATA in bytes: private writable memory (heap, anonymous mappings, stacks).
    /// Chosen over RLIMIT_AS because address-space reservations (glibc arenas, thread stacks,
    /// OpenBLAS) count towards RLIMIT_AS without using memory. Default 1 GiB.
    pub memory_bytes: Option<u64>,
    /// CPU seconds one call may use (Python: the soft RLIMIT_CPU is moved before each call;
    /// command: the whole process). Past it the kernel sends SIGXCPU. Default 60.
    pub cpu_secs: Option<u64>,
    /// RLIMIT_NOFILE. Default 256.
    pub open_files: Option<u64>,
    /// RLIMIT_FSIZE in bytes: the largest file the function may write. Default 256 MiB.
    pub file_size_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: Some(1 << 30),
            cpu_secs: Some(60),
            open_files: Some(256),
            file_size_bytes: Some(256 << 20),
        }
    }
}

/// Everything the launcher applies, passed to it as one JSON argument.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub policy: SandboxPolicy,
    /// RLIMIT_DATA in bytes.
    pub memory_bytes: Option<u64>,
    /// Soft RLIMIT_CPU (SIGXCPU) in seconds.
    pub cpu_soft_secs: Option<u64>,
    /// Hard RLIMIT_CPU (SIGKILL) in seconds; the soft limit can never be raised past it.
    pub cpu_hard_secs: Option<u64>,
    pub open_files: Option<u64>,
    pub file_size_bytes: Option<u64>,
    /// Readable (and executable) under Landlock.
    pub read_only: Vec<PathBuf>,
    /// Readable and writable under Landlock (the scratch folder, /dev/null).
    pub read_write: Vec<PathBuf>,
    /// The daemon's pid: if the launcher's parent is already another process (the daemon
    /// died before the parent-death signal was armed), it exits instead of running orphaned.
    pub parent_pid: Option<i32>,
}

impl SandboxSpec {
    /// A spec for `limits` under `policy`, with the CPU limit as both soft and hard.
    pub fn new(policy: SandboxPolicy, limits: &Limits) -> Self {
        Self {
            policy,
            memory_bytes: limits.memory_bytes,
            cpu_soft_secs: limits.cpu_secs,
            cpu_hard_secs: limits.cpu_secs,
            open_files: limits.open_files,
            file_size_bytes: limits.file_size_bytes,
            read_only: Vec::new(),
            read_write: Vec::new(),
            parent_pid: Some(std::process::id() as i32),
        }
    }

    /// The launcher's arguments for running `program` with `args` under this spec.
    pub fn launcher_args(&self, program: &Path, args: &[OsString]) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec![
            SUBCOMMAND.into(),
            "--spec".into(),
            serde_json::to_string(self).unwrap_or_default().into(),
            "--".into(),
            program.into(),
        ];
        out.extend(args.iter().cloned());
        out
    }
}

/// Folders and files a sandboxed program needs to run at all: the dynamic loader's cache,
/// system libraries and binaries, time zones, TLS roots, name resolution. Nothing under /etc
/// beyond these (so not /etc/shadow), and nothing under /proc, /root, /home or /tmp.
pub fn system_read_paths() -> Vec<PathBuf> {
    [
        "/usr",
        "/lib",
        "/lib64",
        "/lib32",
        "/bin",
        "/sbin",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/timezone",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/pki",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/host.conf",
        "/etc/nsswitch.conf",
        "/etc/gai.conf",
        "/etc/services",
        "/etc/protocols",
        "/etc/mime.types",
        "/etc/os-release",
        "/etc/passwd",
        "/etc/group",
        "/dev/urandom",
        "/dev/random",
        "/dev/zero",
        "/dev/full",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// Which layers held when the launcher confined itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReport {
    pub policy: SandboxPolicy,
    /// `enforced (ABI n)`, `partially enforced (ABI n)`, `not enforced: <why>` or `off`.
    pub landlock: String,
    /// Landlock restricts the filesystem (fully or partially).
    pub landlock_enforced: bool,
    pub no_new_privs: bool,
    /// `dropped`, `none held`, `kept (policy off)` or `not dropped: <why>`.
    pub capabilities: String,
    /// The limits that were set, e.g. `data=1073741824`.
    pub rlimits: Vec<String>,
    pub new_session: bool,
    pub parent_death_signal: bool,
    pub child_subreaper: bool,
    /// What failed, in words.
    pub problems: Vec<String>,
}

impl SandboxReport {
    /// One line for the start-up log and `check-config`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "sandbox policy {:?}: landlock {}; no_new_privs {}; capabilities {}; rlimits [{}]; session {}; parent-death signal {}; subreaper {}",
            self.policy,
            self.landlock,
            self.no_new_privs,
            self.capabilities,
            self.rlimits.join(", "),
            self.new_session,
            self.parent_death_signal,
            self.child_subreaper
        );
        if !self.problems.is_empty() {
            s.push_str(&format!("; problems: {}", self.problems.join("; ")));
        }
        s
    }

    /// Why a worker must not start under the report's policy, if it must not.
    pub fn refusal(&self) -> Option<String> {
        if self.policy == SandboxPolicy::Require && !self.landlock_enforced {
            return Some(format!(
                "the sandbox policy is 'require' but Landlock is {} (set the sandbox policy to best-effort to run without it)",
                self.landlock
            ));
        }
        if !self.no_new_privs {
            return Some("no_new_privs could not be set".into());
        }
        None
    }
}

/// Runs the launcher when the binary was started as `mcp-daemon sandbox-exec ...`; `None`
/// otherwise. Called first thing in `main`, before the async runtime starts threads: Landlock
/// and the capability sets apply to the calling thread, and `exec` replaces the process.
pub fn launch_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != SUBCOMMAND {
        return None;
    }
    Some(run(args.collect()))
}

/// Exit code when the launcher refuses or cannot confine itself (like `env`'s 125).
pub const EXIT_REFUSED: u8 = 125;
/// Exit code when the program cannot be executed (like a shell's 127).
pub const EXIT_NO_EXEC: u8 = 127;

fn run(args: Vec<OsString>) -> ExitCode {
    let parsed = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mcp-daemon {SUBCOMMAND}: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let report = apply::confine(&parsed.spec);
    if parsed.probe {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if let Some(why) = report.refusal() {
        eprintln!("mcp-daemon {SUBCOMMAND}: refusing to start the worker: {why}");
        return ExitCode::from(EXIT_REFUSED);
    }
    if !report.problems.is_empty() {
        eprintln!(
            "mcp-daemon {SUBCOMMAND}: running with a weaker sandbox: {}",
            report.problems.join("; ")
        );
    }
    let Some(program) = parsed.program else {
        eprintln!("mcp-daemon {SUBCOMMAND}: no program to run after --");
        return ExitCode::from(EXIT_REFUSED);
    };
    // Only returns when exec failed.
    let err = std::process::Command::new(&program)
        .args(&parsed.args)
        .exec();
    eprintln!(
        "mcp-daemon {SUBCOMMAND}: cannot run {}: {err}",
        Path::new(&program).display()
    );
    ExitCode::from(EXIT_NO_EXEC)
}

struct Parsed {
    spec: SandboxSpec,
    probe: bool,
    program: Option<OsString>,
    args: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    let mut spec = None;
    let mut probe = false;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--spec") => {
                let raw = it.next().ok_or("--spec needs a value")?;
                let raw = raw.to_str().ok_or("--spec is not UTF-8")?;
                spec = Some(
                    serde_json::from_str::<SandboxSpec>(raw)
                        .map_err(|e| format!("bad --spec: {e}"))?,
                );
            }
            Some("--probe") => probe = true,
            Some("--") => break,
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    let program = it.next();
    Ok(Parsed {
        spec: spec.ok_or("--spec is required")?,
        probe,
        program,
        args: it.collect(),
    })
}

/// Runs `launcher sandbox-exec --probe` with the system paths and `policy`, and returns what
/// held. Blocks for a few milliseconds (a process start); meant for start-up and
/// `check-config`.
pub fn probe(launcher: &Path, policy: SandboxPolicy) -> SandboxReport {
    let mut spec = SandboxSpec::new(policy, &Limits::default());
    spec.read_only = system_read_paths();
    spec.read_write = vec![PathBuf::from("/dev/null")];
    let failed = |why: String| SandboxReport {
        policy,
        landlock: "unknown".into(),
        problems: vec![why],
        ..Default::default()
    };
    let mut args = spec.launcher_args(Path::new("/bin/true"), &[]);
    args.insert(1, "--probe".into());
    let out = match std::process::Command::new(launcher)
        .args(&args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            return failed(format!(
                "cannot run the launcher {}: {e}",
                launcher.display()
            ));
        }
    };
    match serde_json::from_slice::<SandboxReport>(&out.stdout) {
        Ok(r) => r,
        Err(_) => failed(format!(
            "the launcher {} gave no report (exit {}): {}",
            launcher.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_through_the_parser() {
        let mut spec = SandboxSpec::new(SandboxPolicy::BestEffort, &Limits::default());
        spec.read_only = vec!["/usr".into()];
        let args = spec.launcher_args(Path::new("/bin/echo"), &["hi".into()]);
        assert_eq!(args[0], SUBCOMMAND);
        let parsed = parse(args[1..].to_vec()).unwrap();
        assert_eq!(parsed.spec.policy, SandboxPolicy::BestEffort);
        assert_eq!(parsed.spec.read_only, vec![PathBuf::from("/usr")]);
        assert_eq!(parsed.spec.memory_bytes, Some(1 << 30));
        assert_eq!(parsed.program, Some("/bin/echo".into()));
        assert_eq!(parsed.args, vec![OsString::from("hi")]);
        assert!(!parsed.probe);
        assert!(parse(vec!["--bogus".into()]).is_err());
        assert!(parse(vec!["--".into(), "x".into()]).is_err());
    }

    #[test]
    fn require_refuses_without_landlock() {
        let report = SandboxReport {
            policy: SandboxPolicy::Require,
            landlock: "not enforced: kernel without landlock".into(),
            no_new_privs: true,
            ..Default::default()
        };
        assert!(report.refusal().unwrap().contains("best-effort"));
        let relaxed = SandboxReport {
            policy: SandboxPolicy::BestEffort,
            ..report
        };
        assert!(relaxed.refusal().is_none());
    }
}
