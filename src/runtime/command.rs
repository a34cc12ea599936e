//! The command runtime: tools written in any language. Each call runs the entry's
//! executable behind the same sandbox launcher as Python workers, with one JSON object on
//! stdin (`{kind, entry, arguments, uri, name, setting}`) and one result on stdout: a JSON
//! string is text, a JSON object with `content`/`structuredContent` (tools), `contents`
//! (resources) or `messages` (prompts) is the MCP result, any other JSON value is text as the
//! Python runtime shapes it, and output that is not JSON is text as it is. stderr goes to the
//! log; the call's deadline kills the process group.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rustix::process::Signal;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::proc::logpipe::{LogCaps, LogPipe};
use super::proc::{self, Launch, Scratch};
use super::sandbox::{Limits, SandboxPolicy, SandboxSpec, system_read_paths};
use super::{
    ClientRequestError, Ctx, Function, FunctionError, FunctionSpec, Kind, Output, Runtime,
    RuntimeError,
};

/// How commands run. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct CommandSettings {
    /// Our own binary (its `sandbox-exec` subcommand). `None`: `std::env::current_exe()`.
    pub launcher: Option<PathBuf>,
    /// A call's deadline when its entry sets no `timeout_secs`. Default 30 s.
    pub default_timeout: Duration,
    /// Limits of each run; `cpu_secs` is the whole process's. Same defaults as Python.
    pub limits: Limits,
    /// Each run gets a fresh folder under this one (HOME, TMPDIR, working directory, the
    /// only place it may write). Default `<temp dir>/mcp-daemon-commands`.
    pub scratch_root: PathBuf,
    pub sandbox: SandboxPolicy,
    /// More folders commands may read, besides the system's and the executable's own.
    pub read_paths: Vec<PathBuf>,
    /// The most stdout a run may print (bytes). Default 16 MiB.
    pub max_output_bytes: usize,
    /// After a cancellation, how long between SIGTERM and SIGKILL. Default 2 s.
    pub cancel_grace: Duration,
    pub log: LogCaps,
}

impl Default for CommandSettings {
    fn default() -> Self {
        Self {
            launcher: None,
            default_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            scratch_root: std::env::temp_dir().join("mcp-daemon-commands"),
            sandbox: SandboxPolicy::Require,
            read_paths: Vec::new(),
            max_output_bytes: 16 << 20,
            cancel_grace: Duration::from_secs(2),
            log: LogCaps::default(),
        }
    }
}

/// The runtime named `command`: serves every entry that sets `command`.
pub struct CommandRuntime {
    settings: Arc<CommandSettings>,
}

impl CommandRuntime {
    pub fn new(settings: CommandSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

#[async_trait]
impl Runtime for CommandRuntime {
    fn name(&self) -> &'static str {
        "command"
    }

    fn serves(&self, spec: &FunctionSpec) -> bool {
        spec.command.is_some()
    }

    async fn bind(&self, spec: &FunctionSpec) -> Result<Arc<dyn Function>, RuntimeError> {
        let argv = spec.command.clone().unwrap_or_default();
        let Some(first) = argv.first() else {
            return Err(RuntimeError::Invalid(format!(
                "{}: command is empty",
                spec.entry
            )));
        };
        let program = resolve(first).ok_or_else(|| {
            RuntimeError::NotFound(format!(
                "{}: command '{first}' is not an executable file (nor found on PATH)",
                spec.entry
            ))
        })?;
        Ok(Arc::new(CommandFunction {
            program,
            args: argv[1..].iter().map(OsString::from).collect(),
            spec: spec.clone(),
            settings: self.settings.clone(),
        }))
    }
}

/// An absolute path to an executable file: `name` itself when it holds a `/`, else the
/// first match on the daemon's PATH.
fn resolve(name: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = std::fs::canonicalize(name).ok()?;
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| executable(p))
        .and_then(|p| std::fs::canonicalize(p).ok())
}

struct CommandFunction {
    program: PathBuf,
    args: Vec<OsString>,
    spec: FunctionSpec,
    settings: Arc<CommandSettings>,
}

static RUNS: AtomicU64 = AtomicU64::new(1);

#[async_trait]
impl Function for CommandFunction {
    async fn call(&self, ctx: Arc<Ctx>, args: Value) -> Result<Output, FunctionError> {
        let s = &self.settings;
        let entry = if ctx.entry.is_empty() {
            self.spec.entry.as_str()
        } else {
            ctx.entry.as_str()
        };
        let failed = |m: String| FunctionError::Failed(format!("{entry}: {m}"));
        let timeout = self.spec.timeout.unwrap_or(s.default_timeout);
        let launcher = match &s.launcher {
            Some(l) => l.clone(),
            None => std::env::current_exe().map_err(|e| failed(format!("no launcher: {e}")))?,
        };
        let name = format!(
            "c{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let scratch = Scratch::create(&s.scratch_root, &name)
            .map_err(|e| failed(format!("cannot create a scratch folder: {e}")))?;
        let mut spec = SandboxSpec::new(s.sandbox, &s.limits);
        spec.read_only = system_read_paths();
        if let Some(dir) = self.program.parent() {
            spec.read_only.push(dir.to_path_buf());
        }
        spec.read_only.extend(s.read_paths.iter().cloned());
        spec.read_write = vec![scratch.path().to_path_buf(), PathBuf::from("/dev/null")];
        let mut child = Launch {
            launcher: &launcher,
            spec: &spec,
            program: &self.program,
            args: &self.args,
            scratch: scratch.path(),
        }
        .spawn()
        .map_err(|e| failed(format!("cannot start: {e}")))?;
        let pid = child.id().map_or(0, |p| p as i32);
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(failed("no pipes".into()));
        };
        let log = LogPipe::spawn(stderr, "command", entry, pid as u32, s.log);
        let input = request(self.spec.kind, entry, &args, &ctx.setting);
        let max = s.max_output_bytes;
        let io = async {
            let write = async {
                // A program that does not read its input is fine.
                let _ = stdin.write_all(input.as_bytes()).await;
                drop(stdin);
            };
            let mut out = Vec::new();
            let mut limited = stdout.take(max as u64 + 1);
            let read = limited.read_to_end(&mut out);
            let (_, read) = tokio::join!(write, read);
            read.map(|_| out)
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(io, deadline);
        let out = tokio::select! {
            out = &mut io => out,
            _ = &mut deadline => {
                proc::kill_tree(pid);
                let _ = child.wait().await;
                return Err(FunctionError::Failed(format!(
                    "{entry} did not finish within {}s; the command was stopped",
                    timeout.as_secs_f64()
                )));
            }
            _ = ctx.cancel.cancelled() => {
                proc::signal_group(pid, Signal::TERM);
                match tokio::time::timeout(s.cancel_grace, child.wait()).await {
                    Ok(_) => proc::kill_leftovers(pid),
                    Err(_) => {
                        proc::kill_tree(pid);
                        let _ = child.wait().await;
                    }
                }
                return Err(FunctionError::Client(ClientRequestError::Cancelled));
            }
        };
        let out = match out {
            Ok(o) if o.len() > max => {
                proc::kill_tree(pid);
                let _ = child.wait().await;
                return Err(failed(format!("printed more than {max} bytes")));
            }
            Ok(o) => o,
            Err(e) => return Err(failed(format!("cannot read its output: {e}"))),
        };
        // stdout is closed: the program is exiting. Anything it left running goes too.
        let status = tokio::select! {
            st = child.wait() => st.map_err(|e| failed(format!("cannot wait for it: {e}")))?,
            _ = &mut deadline => {
                proc::kill_tree(pid);
                let _ = child.wait().await;
                return Err(FunctionError::Failed(format!(
                    "{entry} did not finish within {}s; the command was stopped",
                    timeout.as_secs_f64()
                )));
            }
        };
        proc::kill_leftovers(pid);
        let last = log.finish(Duration::from_millis(500)).await;
        if !status.success() {
            let mut why = proc::describe_exit(status, s.limits.cpu_secs);
            if let Some(line) = last.last() {
                why = format!("{why}: {line}");
            }
            return Err(FunctionError::Failed(format!("{entry}: the command {why}")));
        }
        shape(self.spec.kind, &out)
    }
}

/// The JSON a command reads on stdin.
fn request(kind: Kind, entry: &str, args: &Value, setting: &Value) -> String {
    let (arguments, uri) = match kind {
        Kind::Resource => (
            args.get("params").cloned().unwrap_or(json!({})),
            args.get("uri").cloned(),
        ),
        _ => (args.clone(), None),
    };
    json!({
        "kind": kind.as_str(),
        "entry": entry,
        "arguments": arguments,
        "uri": uri,
        "name": (kind == Kind::Prompt).then_some(entry),
        "setting": setting,
    })
    .to_string()
}

fn shape(kind: Kind, out: &[u8]) -> Result<Output, FunctionError> {
    let text = String::from_utf8_lossy(out);
    let Ok(v) = serde_json::from_str::<Value>(text.trim()) else {
        return Ok(Output::Text(text.trim_end_matches('\n').to_string()));
    };
    let keys: &[&str] = match kind {
        Kind::Tool => &["content", "structuredContent"],
        Kind::Resource => &["contents"],
        Kind::Prompt => &["messages"],
    };
    Ok(match v {
        Value::String(s) => Output::Text(s),
        Value::Object(ref m) if keys.iter().any(|k| m.contains_key(*k)) => {
            let mut r = v.clone();
            if kind == Kind::Tool && r.get("content").is_none() {
                let text = r["structuredContent"].to_string();
                r["content"] = json!([{"type": "text", "text": text}]);
            }
            Output::Result(r)
        }
        Value::Object(_) => Output::Text(serde_json::to_string_pretty(&v).unwrap_or_default()),
        other => Output::Text(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_shaped_like_python_ones() {
        assert_eq!(
            shape(Kind::Tool, b"\"hi\"\n").unwrap(),
            Output::Text("hi".into())
        );
        assert_eq!(
            shape(Kind::Tool, b"plain words\n").unwrap(),
            Output::Text("plain words".into())
        );
        assert_eq!(
            shape(Kind::Tool, br#"{"a": 1}"#).unwrap(),
            Output::Text("{\n  \"a\": 1\n}".into())
        );
        let Output::Result(r) = shape(Kind::Tool, br#"{"structuredContent": {"n": 2}}"#).unwrap()
        else {
            panic!("not a result");
        };
        assert_eq!(r["content"][0]["text"], "{\"n\":2}");
        assert_eq!(shape(Kind::Tool, b"42").unwrap(), Output::Text("42".into()));
    }

    #[test]
    fn resources_get_their_uri_and_template_values() {
        let r: Value = serde_json::from_str(&request(
            Kind::Resource,
            "status",
            &json!({"uri": "inv://a", "params": {"id": "7"}}),
            &json!({"k": 1}),
        ))
        .unwrap();
        assert_eq!(r["uri"], "inv://a");
        assert_eq!(r["arguments"]["id"], "7");
        assert_eq!(r["setting"]["k"], 1);
        assert!(r["name"].is_null());
    }

    #[test]
    fn programs_resolve_on_path_or_by_path() {
        assert!(resolve("sh").is_some());
        assert!(resolve("/bin/sh").is_some());
        assert!(resolve("surely-no-such-program-here").is_none());
        assert!(resolve("/etc/passwd").is_none());
    }
}
