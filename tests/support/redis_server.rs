//! A real `redis-server` for tests: its own process on a free loopback port, its own data
//! folder, killed (with any child it forked) when dropped, also when a test panics. Shared by
//! the unit tests (`src/state/redis`) and the integration tests through `#[path]`, so there is
//! one copy.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// A throwaway server: no persistence.
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A server started with extra `redis-server` arguments (AOF, cluster mode, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        // A cluster node also listens on its port + 10000 (the cluster bus), which must be a
        // valid port: Linux hands out ephemeral ports up to 60999.
        let cluster = extra.contains(&"--cluster-enabled");
        let port = loop {
            let port = free_port();
            if !cluster || port <= u16::MAX - 10_000 {
                break port;
            }
        };
        let dir = std::env::temp_dir().join(format!("mcp-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data folder");
        let mut server = Self {
            port,
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// (Re)starts the process on the same port and folder and waits until it answers. A
    /// running process is stopped first (SIGTERM: Redis flushes its AOF and exits) and the port
    /// must be free again, so the server that answers afterwards is provably the new one: its
    /// `process_id` is the new child's and its `run_id` differs from the old one's.
    pub fn restart(&mut self) {
        let before = self.child.as_ref().and_then(|_| self.run_id());
        self.stop();
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test.sh installs it)");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // PING alone could be answered by a server we did not start (another process that
            // took the port): only our child's pid counts.
            if self.info_field("server", "process_id") == Some(pid.to_string()) {
                break;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "redis-server on port {} exited at start: {exited:?}",
                self.port
            );
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = self.run_id();
        assert!(after.is_some(), "the new redis-server reports no run_id");
        assert_ne!(before, after, "the same redis-server still answers");
    }

    /// Stops the process gracefully (SIGTERM, SIGKILL after 10 s), waits for it to exit and
    /// for its port to be free. A no-op when nothing runs.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        if child.try_wait().ok().flatten().is_none() {
            send_signal("-TERM", pid);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    kill_tree(&mut child);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = child.wait();
        self.wait_port_free();
    }

    /// Stops the process abruptly (like a crash); the AOF, if enabled, keeps what was synced.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(&mut child);
            self.wait_port_free();
        }
    }

    /// The pid of the running process, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `run_id` from `INFO server`: a new random id every time a redis-server starts.
    pub fn run_id(&self) -> Option<String> {
        self.info_field("server", "run_id")
    }

    /// One `field:value` line of `INFO <section>`.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let info = self.command(&["INFO", section])?;
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    fn wait_port_free(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "port {} still taken after redis-server exited",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether this server's process is running (not killed).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Freezes the process (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            assert!(send_signal(sig, child.id()), "kill {sig} failed");
        }
    }

    /// Sends one command (inline protocol) and returns the raw reply, or `None` when the
    /// server does not answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = s.read(&mut buf).ok()?;
            out.extend_from_slice(&buf[..n]);
            if n == 0 || reply_complete(&out) {
                break;
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// The keys matching `pattern` (`KEYS`: fine for the few keys of a test).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let reply = self.command(&["KEYS", pattern]).unwrap_or_default();
        assert!(reply.starts_with('*'), "KEYS {pattern} failed: {reply}");
        resp_strings(reply.as_bytes())
    }

    /// Number of keys in the database.
    pub fn dbsize(&self) -> u64 {
        let reply = self.command(&["DBSIZE"]).unwrap_or_default();
        reply
            .trim()
            .trim_start_matches(':')
            .parse()
            .unwrap_or(u64::MAX)
    }

    /// `INFO commandstats` as (command, calls) pairs.
    pub fn command_calls(&self) -> Vec<(String, u64)> {
        let info = self.command(&["INFO", "commandstats"]).unwrap_or_default();
        info.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("cmdstat_")?;
                let (name, stats) = rest.split_once(':')?;
                let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                Some((name.to_string(), calls.parse().ok()?))
            })
            .collect()
    }
}

/// Whether `out` holds one whole RESP reply.
fn reply_complete(out: &[u8]) -> bool {
    resp_end(out, 0).is_some()
}

/// The end of the RESP value that starts at `at`, or `None` while it is incomplete.
fn resp_end(out: &[u8], at: usize) -> Option<usize> {
    let line_end = at + out.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&out[at + 1..line_end]).ok()?;
    let next = line_end + 2;
    match out[at] {
        b'$' => match head.parse::<i64>().ok()? {
            n if n < 0 => Some(next),
            n => (out.len() >= next + n as usize + 2).then_some(next + n as usize + 2),
        },
        b'*' => {
            let mut pos = next;
            for _ in 0..head.parse::<i64>().ok()?.max(0) {
                pos = resp_end(out, pos)?;
            }
            Some(pos)
        }
        _ => Some(next),
    }
}

/// The bulk strings of a RESP array reply (the elements of `KEYS`, `SMEMBERS`, ...).
fn resp_strings(out: &[u8]) -> Vec<String> {
    let mut items = Vec::new();
    let Some(first) = out.windows(2).position(|w| w == b"\r\n") else {
        return items;
    };
    let mut pos = first + 2;
    while let Some(end) = resp_end(out, pos) {
        if out[pos] == b'$'
            && let Some(len_end) = out[pos..end].windows(2).position(|w| w == b"\r\n")
        {
            let body = &out[pos + len_end + 2..end - 2];
            items.push(String::from_utf8_lossy(body).into_owned());
        }
        pos = end;
    }
    items
}

/// `kill <sig> <pid>`; whether it was delivered.
fn send_signal(sig: &str, pid: u32) -> bool {
    Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The direct children of `pid` (Redis forks for AOF rewrites and RDB saves).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGKILL to the process and its forked children, then reaps it. A stopped (SIGSTOP)
/// process dies of SIGKILL too.
fn kill_tree(child: &mut Child) {
    let children = children_of(child.id());
    let _ = child.kill();
    for c in children {
        send_signal("-KILL", c);
    }
    let _ = child.wait();
}

impl Drop for RedisServer {
    /// Runs on a test's panic too (unwinding), so no failed test leaves a server behind.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(&mut child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
