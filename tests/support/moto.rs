//! A real S3 API for tests: moto's standalone server (`moto_server` from the project's venv,
//! `.tooling/venv`, which scripts/test.sh installs from tests/interop/python/requirements.txt),
//! started on a free loopback port and killed (with any child it forked) when dropped, also when
//! a test panics. Shared by the unit tests (`src/blob`) and the integration tests through
//! `#[path]`, so there is one copy. moto keeps everything in memory: each server starts empty.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MotoServer {
    pub port: u16,
    child: Child,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The venv's `moto_server`, or a panic that says how to get it.
pub fn moto_server_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tooling/venv/bin/moto_server");
    assert!(
        bin.is_file(),
        "{} is missing: run `bash tests/interop/run.sh --install-python` (scripts/test.sh does) \
         to install moto[server] into .tooling/venv",
        bin.display()
    );
    bin
}

impl MotoServer {
    /// Starts a server and waits until it answers (moto is ready in well under a second; the
    /// deadline is for a loaded machine).
    pub fn start() -> Self {
        let bin = moto_server_bin();
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server
                .request("GET", "/moto-api/", b"")
                .is_some_and(|(status, _)| status == 200)
            {
                break;
            }
            let exited = server.child.try_wait().ok().flatten();
            assert!(
                exited.is_none(),
                "moto_server on port {port} exited at start: {exited:?}"
            );
            assert!(
                Instant::now() < deadline,
                "moto_server on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        server
    }

    /// The endpoint URL for an S3 client (path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let reply = self.request("PUT", &format!("/{bucket}"), b"");
        assert!(
            reply.as_ref().is_some_and(|(status, _)| *status == 200),
            "creating bucket {bucket} failed: {reply:?}"
        );
    }

    /// One plain HTTP/1.1 request; (status, body), or `None` when nothing answers.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        let text = String::from_utf8_lossy(&out);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let at = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        Some((status, out[at..].to_vec()))
    }

    /// The pid of the server process (its children, if any, are killed with it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The direct children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

impl Drop for MotoServer {
    /// Runs on a test's panic too (unwinding), so no failed test leaves a server behind.
    fn drop(&mut self) {
        let children = children_of(self.child.id());
        let _ = self.child.kill();
        for c in children {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(c.to_string())
                .status();
        }
        let _ = self.child.wait();
    }
}
