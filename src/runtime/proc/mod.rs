//! Child processes of the Python and command runtimes: starting one behind the sandbox
//! launcher with a scrubbed environment, killing it with everything it started, saying in
//! words how it ended, and carrying its output lines to the daemon's log (`logpipe`).

pub mod logpipe;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal};

use super::sandbox::{EXIT_NO_EXEC, EXIT_REFUSED, SandboxSpec};

/// What a sandboxed child runs and where.
pub struct Launch<'a> {
    /// Our own binary (its `sandbox-exec` subcommand).
    pub launcher: &'a Path,
    pub spec: &'a SandboxSpec,
    pub program: &'a Path,
    pub args: &'a [OsString],
    /// The child's working directory and HOME/TMPDIR: its scratch folder.
    pub scratch: &'a Path,
}

/// The whole environment a child gets: no daemon secrets (tokens, AWS keys, passwords) leak
/// into code the operator's users wrote. `MCP_TEST_RUN` is a marker the test harness uses to
/// find processes its run left behind; it carries no secret.
pub fn scrubbed_env(scratch: &Path) -> Vec<(String, OsString)> {
    let mut env = vec![
        (
            "PATH".to_string(),
            OsString::from("/usr/local/bin:/usr/bin:/bin"),
        ),
        ("HOME".to_string(), scratch.as_os_str().to_owned()),
        ("TMPDIR".to_string(), scratch.as_os_str().to_owned()),
        (
            "LANG".to_string(),
            std::env::var_os("LANG").unwrap_or_else(|| "C.UTF-8".into()),
        ),
    ];
    if let Some(marker) = std::env::var_os("MCP_TEST_RUN") {
        env.push(("MCP_TEST_RUN".to_string(), marker));
    }
    env
}

impl Launch<'_> {
    /// Starts the child with piped stdin, stdout and stderr. `kill_on_drop` is a last resort:
    /// the runtimes kill the whole tree (`kill_tree`) themselves.
    pub fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        let mut cmd = tokio::process::Command::new(self.launcher);
        cmd.args(self.spec.launcher_args(self.program, self.args))
            .env_clear()
            .envs(scrubbed_env(self.scratch))
            .current_dir(self.scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.spawn()
    }
}

/// A folder only one child may write; removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn create(root: &Path, name: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line of `/proc/<pid>/stat` that matters here.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: i32,
    pgrp: i32,
    session: i32,
    zombie: bool,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &raw[raw.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    let session = f.next()?.parse().ok()?;
    Some(Stat {
        ppid,
        pgrp,
        session,
        zombie: state == "Z" || state == "X",
    })
}

fn all_stats() -> HashMap<i32, Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// Live processes that belong to the child `root`: its descendants, and anything in its
/// process group or session (the launcher made the child a session leader).
pub fn members(root: i32) -> Vec<i32> {
    let stats = all_stats();
    let mut found: HashSet<i32> = stats
        .iter()
        .filter(|(_, s)| s.pgrp == root || s.session == root)
        .map(|(pid, _)| *pid)
        .collect();
    found.insert(root);
    // Descendants, to a fixpoint (a process found through the group may have children that
    // left it with setsid).
    loop {
        let more: Vec<i32> = stats
            .iter()
            .filter(|(pid, s)| found.contains(&s.ppid) && !found.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            break;
        }
        found.extend(more);
    }
    found.remove(&root);
    found
        .into_iter()
        .filter(|pid| stats.get(pid).is_some_and(|s| !s.zombie))
        .collect()
}

fn signal(pid: i32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Sends `sig` to the child's process group (and the child itself, in case it has not made
/// its own group yet).
pub fn signal_group(root: i32, sig: Signal) {
    if let Some(p) = Pid::from_raw(root) {
        let _ = rustix::process::kill_process_group(p, sig);
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Kills the child `root` (alive or a zombie, never reaped yet) and every process it started. The child is stopped first, so it
/// neither forks nor reaps while its tree is read; because it is their subreaper, processes
/// orphaned on the way are re-parented to it and found by the next round. Synchronous (a scan
/// of /proc per round): only on the paths that end a child, never per call.
pub fn kill_tree(root: i32) {
    signal_group(root, Signal::STOP);
    for _ in 0..16 {
        let victims = members(root);
        if victims.is_empty() {
            break;
        }
        for pid in victims {
            signal(pid, Signal::KILL);
        }
    }
    signal_group(root, Signal::KILL);
}

/// Kills what is left of a child that has already been reaped: the members of its process
/// group and session (its pid cannot be handed to a new process while they exist). Never
/// walks descendants here: after reaping, the pid is no longer ours to follow.
pub fn kill_leftovers(root: i32) {
    let stats = all_stats();
    for (pid, s) in stats {
        if (s.pgrp == root || s.session == root) && !s.zombie {
            signal(pid, Signal::KILL);
        }
    }
}

/// Whether `pid` (a child of ours) has exited, without reaping it: a zombie keeps its pid,
/// so signalling by pid stays safe until it is reaped.
pub fn exited(pid: i32) -> bool {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    let Some(p) = Pid::from_raw(pid) else {
        return true;
    };
    let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    !matches!(waitid(WaitId::Pid(p), opts), Ok(None))
}

/// How a child ended, in words.
pub fn describe_exit(status: ExitStatus, cpu_limit: Option<u64>) -> String {
    if let Some(sig) = status.signal() {
        return match sig {
            11 => "crashed (SIGSEGV: segmentation fault)".into(),
            6 => "aborted (SIGABRT)".into(),
            7 => "crashed (SIGBUS: bus error)".into(),
            4 => "crashed (SIGILL: illegal instruction)".into(),
            8 => "crashed (SIGFPE: arithmetic error)".into(),
            9 => "was killed (SIGKILL; out of memory or its CPU hard limit)".into(),
            24 => match cpu_limit {
                Some(s) => format!("used more than its {s} s of CPU time (SIGXCPU)"),
                None => "used more than its CPU time limit (SIGXCPU)".into(),
            },
            25 => "wrote a file larger than its limit (SIGXFSZ)".into(),
            15 => "was terminated (SIGTERM)".into(),
            other => format!("was killed by signal {other}"),
        };
    }
    match status.code() {
        Some(c) if c == i32::from(EXIT_REFUSED) => {
            "could not be sandboxed (the launcher refused; see the log)".into()
        }
        Some(c) if c == i32::from(EXIT_NO_EXEC) => "could not be executed (see the log)".into(),
        Some(c) => format!("exited with code {c}"),
        None => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_in_words() {
        assert!(describe_exit(ExitStatus::from_raw(11), None).contains("SIGSEGV"));
        assert!(describe_exit(ExitStatus::from_raw(24), Some(2)).contains("2 s of CPU"));
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8), None),
            "exited with code 3"
        );
    }

    #[test]
    fn the_own_stat_line_parses() {
        let me = std::process::id() as i32;
        let s = read_stat(me).unwrap();
        assert!(!s.zombie);
        assert!(s.ppid > 0);
    }
}
