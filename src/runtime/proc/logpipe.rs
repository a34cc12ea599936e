//! A child's output lines (Python `print`, C-level writes, logger records, a command's
//! stderr) into the daemon's log under the function's name. Lines are capped in length and
//! rate, and the pipe is always drained, so a function that prints megabytes neither blocks
//! on a full pipe nor floods the log.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Caps on what one child may put into the daemon's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCaps {
    /// Longer lines are cut here (bytes) and marked `…[cut]`.
    pub line_bytes: usize,
    /// Sustained lines per second; past it lines are dropped and counted.
    pub lines_per_sec: u32,
    /// Lines allowed in a burst above the rate.
    pub burst: u32,
}

impl Default for LogCaps {
    fn default() -> Self {
        Self {
            line_bytes: 4096,
            lines_per_sec: 100,
            burst: 500,
        }
    }
}

/// A Python worker marks lines from loggers with `\x1e` + a level letter, and the start of
/// another function's output with `\x1d` + its name.
const MARK_LOG: u8 = 0x1e;
const MARK_FN: u8 = 0x1d;
/// The last lines kept for error messages (a launcher's refusal, a command's complaint).
const KEEP_LAST: usize = 4;

/// The reading side of one child's log pipe.
pub struct LogPipe {
    last: Arc<Mutex<VecDeque<String>>>,
    task: JoinHandle<()>,
}

impl LogPipe {
    /// Starts draining `pipe`. `runtime` and `function` name the source in every event;
    /// `pid` tells the workers apart.
    pub fn spawn<R>(pipe: R, runtime: &'static str, function: &str, pid: u32, caps: LogCaps) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let last = Arc::new(Mutex::new(VecDeque::new()));
        let reader = Reader {
            runtime,
            function: function.to_string(),
            pid,
            caps,
            last: last.clone(),
            tokens: f64::from(caps.burst),
            refilled: Instant::now(),
            dropped: 0,
        };
        let task = tokio::spawn(reader.run(pipe));
        Self { last, task }
    }

    /// The last few lines the child wrote (for an error message).
    pub fn last_lines(&self) -> Vec<String> {
        self.last.lock().iter().cloned().collect()
    }

    /// Waits (up to `wait`) until the child's end of the pipe is closed and every line has
    /// been logged.
    pub async fn finish(self, wait: Duration) -> Vec<String> {
        let last = self.last.clone();
        let mut task = self.task;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            task.abort();
        }
        last.lock().iter().cloned().collect()
    }
}

struct Reader {
    runtime: &'static str,
    function: String,
    pid: u32,
    caps: LogCaps,
    last: Arc<Mutex<VecDeque<String>>>,
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

#[derive(Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(mut self, mut pipe: R) {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut line: Vec<u8> = Vec::with_capacity(256);
        let mut cut = false;
        loop {
            let n = match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &chunk[..n] {
                if b == b'\n' {
                    self.line(&line, cut);
                    line.clear();
                    cut = false;
                } else if line.len() < self.caps.line_bytes {
                    line.push(b);
                } else {
                    cut = true;
                }
            }
        }
        if !line.is_empty() {
            self.line(&line, cut);
        }
        self.report_dropped();
    }

    fn line(&mut self, raw: &[u8], cut: bool) {
        if let Some(name) = raw.strip_prefix(&[MARK_FN]) {
            self.function = String::from_utf8_lossy(name).into_owned();
            return;
        }
        let (level, text) = match raw.split_first() {
            Some((&MARK_LOG, rest)) => match rest.split_first() {
                Some((b'D', t)) => (Level::Debug, t),
                Some((b'W', t)) => (Level::Warn, t),
                Some((b'E' | b'C', t)) => (Level::Error, t),
                Some((_, t)) => (Level::Info, t),
                None => (Level::Info, rest),
            },
            _ => (Level::Info, raw),
        };
        let mut text = String::from_utf8_lossy(text).into_owned();
        if cut {
            text.push_str("…[cut]");
        }
        {
            let mut last = self.last.lock();
            if last.len() == KEEP_LAST {
                last.pop_front();
            }
            last.push_back(text.clone());
        }
        if !self.admit() {
            self.dropped += 1;
            return;
        }
        self.report_dropped();
        self.emit(level, &text);
    }

    /// Token bucket: `lines_per_sec` sustained, `burst` at once.
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        let secs = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + secs * f64::from(self.caps.lines_per_sec))
            .min(f64::from(self.caps.burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn report_dropped(&mut self) {
        if self.dropped > 0 {
            let n = std::mem::take(&mut self.dropped);
            let text = format!(
                "{n} lines dropped (over {} lines/s)",
                self.caps.lines_per_sec
            );
            self.emit(Level::Warn, &text);
        }
    }

    fn emit(&self, level: Level, text: &str) {
        let (rt, f, pid) = (self.runtime, self.function.as_str(), self.pid);
        match level {
            Level::Debug => {
                tracing::debug!(target: "mcp_daemon::function", runtime = rt, function = f, pid, "{text}")
            }
            Level::Info => {
                tracing::info!(target: "mcp_daemon::function", runtime = rt, function = f, pid, "{text}")
            }
            Level::Warn => {
                tracing::warn!(target: "mcp_daemon::function", runtime = rt, function = f, pid, "{text}")
            }
            Level::Error => {
                tracing::error!(target: "mcp_daemon::function", runtime = rt, function = f, pid, "{text}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_pipe_is_drained() {
        let caps = LogCaps {
            line_bytes: 8,
            lines_per_sec: 1,
            burst: 2,
        };
        let mut input = b"\x1dmy_tool\nshort\n0123456789abcdef\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1 << 20));
        input.extend(b"\n\x1eEfailed\n");
        let pipe = LogPipe::spawn(std::io::Cursor::new(input), "python", "f", 1, caps);
        let last = pipe.finish(Duration::from_secs(5)).await;
        assert_eq!(last[0], "short");
        assert_eq!(last[1], "01234567…[cut]");
        assert_eq!(last[2], "xxxxxxxx…[cut]");
        assert_eq!(last[3], "failed");
    }
}
