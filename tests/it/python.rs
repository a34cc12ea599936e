//! The Python runtime against real CPython workers behind the real sandbox launcher: the
//! original daemon's calling convention and result mapping, misbehaving functions (each
//! fails alone, within its deadline, leaving no process), the busy limit, cancellation, and
//! the context object (progress, log, elicitation in both eras).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_daemon::runtime::sandbox::{self, SandboxPolicy};
use mcp_daemon::runtime::{
    ClientRequestError, FunctionError, InputRound, Kind, Output, ReturnType, Runtime,
};
use serde_json::{Map, json};

use crate::python_support::*;

/// The example module of the compatibility notes (section 1.7), as written for the original
/// daemon; only `rebuild_index` sleeps 0.05 s instead of 10.
const INVENTORY_INIT: &str = "from .inventory_tools import InventoryTools, MCP_CONFIGURATION\n";
const INVENTORY: &str = r#"
import asyncio, logging

MCP_CONFIGURATION = {"tools": [], "resources": [], "prompts": [], "module_links": [], "modules": []}

class InventoryTools:
    endpoint_id = None          # declaring BOTH makes the daemon inject endpoint_id / part_id
    part_id = None

    def __init__(self, logger: logging.Logger, **setting):    # cls(logger, **snake_case_setting)
        self.logger = logger
        self.api_base = setting.get("api_base", "")
        self.page_size = int(setting.get("page_size", 50))    # may arrive as "50" or Decimal(50)

    def count_items(self, sku, warehouse="main"):             # tool: fn(**arguments)
        return {"sku": sku, "warehouse": warehouse, "count": 3}   # dict + "text" -> JSON text

    async def rebuild_index(self):                            # is_async: asyncio.run(fn(**arguments))
        await asyncio.sleep(0.05)
        return "index rebuilt"

    def status(self, uri):                                    # resource: fn(uri) -> str(result)
        return f"ok {self.endpoint_id}/{self.part_id}"

    def restock_note(self, name, **arguments):                # prompt: fn(name, **arguments) -> str
        return f"Please restock {arguments['sku']}."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_example_module_runs_unchanged() {
    let rig = Rig::new(
        &[
            ("inventory_tools/__init__.py", INVENTORY_INIT),
            ("inventory_tools/inventory_tools.py", INVENTORY),
        ],
        |_| {},
    );
    let class = Some("InventoryTools");
    let mut count = rig.spec(Kind::Tool, "inventory_tools", class, "count_items");
    count.setting = json!({"api_base": "", "page_size": 50});
    let count = rig.bind(&count).await;
    // The caller applied the schema default (warehouse: main) before the call.
    let out = text(
        call(
            &count,
            "count_items",
            json!({"sku": "A1", "warehouse": "main"}),
        )
        .await,
    );
    assert_eq!(
        out,
        "{\n  \"sku\": \"A1\",\n  \"warehouse\": \"main\",\n  \"count\": 3\n}"
    );

    let mut rebuild = rig.spec(Kind::Tool, "inventory_tools", class, "rebuild_index");
    rebuild.is_async = true;
    let rebuild = rig.bind(&rebuild).await;
    assert_eq!(
        text(call(&rebuild, "rebuild_index", json!({})).await),
        "index rebuilt"
    );

    let status = rig
        .bind(&rig.spec(Kind::Resource, "inventory_tools", class, "status"))
        .await;
    let args = json!({"uri": "inventory://status", "params": {}});
    let Ok(Output::Content(items)) = call(&status, "Inventory Status", args.clone()).await else {
        panic!("resource result");
    };
    assert_eq!(
        items,
        vec![
            json!({"uri": "inventory://status", "mimeType": "text/plain", "text": "ok default/None"})
        ]
    );
    // endpoint_id / part_id come from the partition key.
    let peer = RecPeer::new(json!({}));
    let mut ctx = ctx_for(&peer, "Inventory Status");
    ctx.partition = "acme#p1".into();
    let Ok(Output::Content(items)) = status.call(Arc::new(ctx), args).await else {
        panic!("resource result");
    };
    assert_eq!(items[0]["text"], "ok acme/p1");

    let note = rig
        .bind(&rig.spec(Kind::Prompt, "inventory_tools", class, "restock_note"))
        .await;
    assert_eq!(
        text(call(&note, "restock-note", json!({"sku": "A1"})).await),
        "Please restock A1."
    );
}

const SHAPES: &str = r#"
import datetime, decimal

def as_list():
    return [1, "a"]

def nothing():
    return None

def when(**kw):
    return {"at": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "n": decimal.Decimal("2.5")}

def picture():
    return {"data": "aGk=", "mimeType": "image/gif"}

def picture_str():
    return "aGk="

def embedded():
    return {"text": "{\"a\": 1}"}

def embedded_uri():
    return {"resource": {"uri": "inventory://x", "text": "plain"}}

def ours():
    return {"structuredContent": {"total": 7}}

def ours_full():
    return {"content": [{"type": "text", "text": "hi"}], "isError": True}

def boom():
    raise ValueError("bad sku")

class Settings:
    def __init__(self, logger, **setting):
        self.setting = setting
        self.logger = logger
    def types(self):
        self.logger.info("constructed with %s", sorted(self.setting))
        return " ".join(type(v).__name__ for _, v in sorted(self.setting.items()))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_map_as_the_original_maps_them() {
    let rig = Rig::new(&[("shapes.py", SHAPES)], |_| {});
    let f = |name: &str, rt: ReturnType| {
        let mut s = rig.spec(Kind::Tool, "shapes", None, name);
        s.return_type = rt;
        s
    };
    let rig_ref = &rig;
    let run = |s| async move {
        let fun = rig_ref.bind(&s).await;
        call(&fun, "t", json!({})).await
    };
    assert_eq!(text(run(f("as_list", ReturnType::Text)).await), "[1, 'a']");
    assert_eq!(text(run(f("nothing", ReturnType::Text)).await), "None");
    assert_eq!(
        text(run(f("when", ReturnType::Text)).await),
        "{\n  \"at\": \"2024-01-02T03:04:05Z\",\n  \"n\": 2.5\n}"
    );
    assert_eq!(
        run(f("picture", ReturnType::Image)).await.unwrap(),
        Output::Content(vec![
            json!({"type": "image", "data": "aGk=", "mimeType": "image/gif"})
        ])
    );
    assert_eq!(
        run(f("picture_str", ReturnType::Image)).await.unwrap(),
        Output::Content(vec![
            json!({"type": "image", "data": "aGk=", "mimeType": "image/png"})
        ])
    );
    assert_eq!(
        run(f("embedded", ReturnType::EmbeddedResource))
            .await
            .unwrap(),
        Output::Content(vec![json!({"type": "resource", "resource": {
            "uri": "mcp://function-call/t", "mimeType": "application/json", "text": "{\"a\": 1}"}})])
    );
    assert_eq!(
        run(f("embedded_uri", ReturnType::EmbeddedResource))
            .await
            .unwrap(),
        Output::Content(vec![json!({"type": "resource", "resource": {
            "uri": "inventory://x", "mimeType": "text/plain", "text": "plain"}})])
    );
    assert_eq!(
        run(f("ours", ReturnType::Text)).await.unwrap(),
        Output::Result(json!({"structuredContent": {"total": 7},
            "content": [{"type": "text", "text": "{\"total\": 7}"}]}))
    );
    assert_eq!(
        run(f("ours_full", ReturnType::Text)).await.unwrap(),
        Output::Result(json!({"content": [{"type": "text", "text": "hi"}], "isError": true}))
    );
    // The message only; the traceback goes to the log.
    assert_eq!(failure(run(f("boom", ReturnType::Text)).await), "bad sku");
    // Settings are normalised as the original's json_normalize does (numbers -> Decimal,
    // ISO date-times -> datetime).
    let mut s = rig.spec(Kind::Tool, "shapes", Some("Settings"), "types");
    s.setting = json!({"a": 5, "b": "2024-01-01T00:00:00Z", "c": "x", "d": true});
    assert_eq!(text(run(s).await), "Decimal datetime str bool");
}

const MISBEHAVING: &str = r#"
import ctypes, os, subprocess, time

def add(a, b):
    return a + b

def hang():
    time.sleep(600)

def spin():
    while True:
        pass

def hog():
    chunks = []
    while True:
        chunks.append(bytearray(50 * 1024 * 1024))

def segfault():
    ctypes.string_at(0)

def leave():
    os._exit(3)

def forker():
    subprocess.Popen(["sleep", "600"])
    if os.fork() == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
    return "forked"

def chatty():
    line = "x" * 1000
    for _ in range(10000):
        print(line)
    os.write(1, b"y" * (1 << 20) + b"\n")
    return "said a lot"

def read(path):
    with open(path) as f:
        return f.read()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_functions_fail_alone_within_their_deadline() {
    let rig = Rig::new(&[("bad.py", MISBEHAVING)], |s| {
        s.max_calls_per_pool = 24;
        s.limits.cpu_secs = Some(2);
        s.limits.memory_bytes = Some(512 << 20);
    });
    let data = tempfile::tempdir().unwrap();
    let secret = data.path().join("secret.txt");
    std::fs::write(&secret, "the daemon's secret").unwrap();
    let environ = format!("/proc/{}/environ", std::process::id());
    let f = |name: &str, timeout: u64| {
        let mut s = rig.spec(Kind::Tool, "bad", None, name);
        s.timeout = Some(Duration::from_secs(timeout));
        s
    };
    let add = rig.bind(&f("add", 10)).await;
    // Warm one worker, so the crashes below do not share the first start-up.
    assert_eq!(text(call(&add, "add", json!({"a": 1, "b": 2})).await), "3");
    let cases: Vec<(&str, u64, serde_json::Value, &str)> = vec![
        ("hang", 2, json!({}), "did not finish within 2s"),
        ("spin", 8, json!({}), "2 s of CPU time (SIGXCPU)"),
        ("hog", 10, json!({}), "ran out of memory (limit 512 MiB)"),
        ("segfault", 10, json!({}), "SIGSEGV"),
        ("leave", 10, json!({}), "exited with code 3"),
        ("forker", 10, json!({}), "left processes running"),
        ("read", 10, json!({"path": environ}), "Permission denied"),
        (
            "read",
            10,
            json!({"path": secret.to_string_lossy()}),
            "Permission denied",
        ),
        (
            "read",
            10,
            json!({"path": "/etc/shadow"}),
            "Permission denied",
        ),
    ];
    let mut runs = Vec::new();
    for (name, timeout, args, expect) in cases {
        let bad = rig.bind(&f(name, timeout)).await;
        let add = add.clone();
        runs.push(async move {
            let started = Instant::now();
            let (bad_out, good_out) = tokio::join!(
                call(&bad, name, args),
                call(&add, "add", json!({"a": 2, "b": 3}))
            );
            let took = started.elapsed();
            assert_eq!(text(good_out), "5", "{name}: a call made at the same time");
            let msg = failure(bad_out);
            assert!(msg.contains(expect), "{name}: {msg}");
            assert!(
                took < Duration::from_secs(timeout + 2),
                "{name} took {took:?}"
            );
        });
    }
    futures::future::join_all(runs).await;
    let chatty = rig.bind(&f("chatty", 10)).await;
    assert_eq!(text(call(&chatty, "chatty", json!({})).await), "said a lot");
    // Every broken worker was replaced: calls go on.
    assert_eq!(text(call(&add, "add", json!({"a": 4, "b": 4})).await), "8");
    // Before shutdown: the only processes left are the idle workers themselves (none of the
    // children `forker` started, none of a killed worker's).
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut procs = rig.processes();
    while procs.len() != rig.runtime.live_workers() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        procs = rig.processes();
    }
    assert_eq!(procs.len(), rig.runtime.live_workers(), "{procs:?}");
    assert!(
        procs.iter().all(|(_, cmd)| cmd.contains(" -I -B -c ")),
        "{procs:?}"
    );
    rig.runtime.shutdown().await;
    let left = rig.leftovers().await;
    assert!(left.is_empty(), "processes left: {left:?}");
    assert_eq!(rig.runtime.live_workers(), 0);
}

const SLOW: &str = r#"
import asyncio, time
from mcp_daemon import Context

def wait(ctx: Context, secs=30):
    try:
        ctx.report_progress(1, message="started")
        time.sleep(secs)
    except KeyboardInterrupt:
        ctx.report_progress(2, message="saw cancel, cancelled=%s" % ctx.cancelled)
        raise
    return "slept"

async def await_(ctx: Context):
    try:
        await ctx.areport_progress(1, message="started")
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await ctx.areport_progress(2, message="coroutine saw cancel, cancelled=%s" % ctx.cancelled)
        raise

def quick():
    return "quick"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_the_function() {
    let rig = Rig::new(&[("slow.py", SLOW)], |_| {});
    for (name, seen) in [
        ("wait", "saw cancel, cancelled=True"),
        ("await_", "coroutine saw cancel, cancelled=True"),
    ] {
        let f = rig.bind(&rig.spec(Kind::Tool, "slow", None, name)).await;
        let peer = RecPeer::new(json!({}));
        let ctx = Arc::new(ctx_for(&peer, name));
        let cancel = ctx.cancel.clone();
        let started = Instant::now();
        let run = tokio::spawn({
            let ctx = ctx.clone();
            async move { f.call(ctx, json!({})).await }
        });
        peer.wait_for("started").await;
        cancel.cancel();
        let out = run.await.unwrap();
        assert!(
            matches!(
                out,
                Err(FunctionError::Client(ClientRequestError::Cancelled))
            ),
            "{name}: {out:?}"
        );
        peer.wait_for(seen).await;
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    // The worker survived the cancellations (the function unwound) and serves the next call.
    let quick = rig.bind(&rig.spec(Kind::Tool, "slow", None, "quick")).await;
    assert_eq!(text(call(&quick, "quick", json!({})).await), "quick");
    assert_eq!(rig.runtime.live_workers(), 1);
    rig.runtime.shutdown().await;
    assert!(rig.leftovers().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_calls_are_refused_as_busy() {
    let rig = Rig::new(&[("slow.py", SLOW)], |s| {
        s.max_calls_per_pool = 1;
        s.max_queue_per_pool = 1;
    });
    let wait = rig.bind(&rig.spec(Kind::Tool, "slow", None, "wait")).await;
    let quick = rig.bind(&rig.spec(Kind::Tool, "slow", None, "quick")).await;
    let peer = RecPeer::new(json!({}));
    let ctx = Arc::new(ctx_for(&peer, "wait"));
    let cancel = ctx.cancel.clone();
    let running = tokio::spawn({
        let (wait, ctx) = (wait.clone(), ctx.clone());
        async move { wait.call(ctx, json!({})).await }
    });
    peer.wait_for("started").await;
    // Two more calls: one waits in the queue (of length 1), the other is refused at once.
    let spawn_quick = || {
        let quick = quick.clone();
        tokio::spawn(async move { call(&quick, "quick", json!({})).await })
    };
    let (a, b) = (spawn_quick(), spawn_quick());
    tokio::pin!(a, b);
    let started = Instant::now();
    let (first, other) = tokio::select! {
        r = &mut a => (r.unwrap(), b),
        r = &mut b => (r.unwrap(), a),
    };
    assert!(started.elapsed() < Duration::from_secs(2));
    let refused = failure(first);
    assert!(refused.contains("busy"), "{refused}");
    assert!(
        refused.contains("1 calls running") && refused.contains("1 queued"),
        "{refused}"
    );
    cancel.cancel();
    assert!(running.await.unwrap().is_err());
    assert_eq!(text(other.await.unwrap()), "quick");
    rig.runtime.shutdown().await;
}

const ASKING: &str = r#"
from mcp_daemon import Context

def ask(ctx: Context, who="you"):
    ctx.report_progress(1, 3, "asking")
    ctx.info({"asking": who})
    try:
        answer = ctx.elicit("Your name?", {"type": "object", "properties": {"name": {"type": "string"}}}, key="name")
    except Exception as e:
        return "swallowed " + type(e).__name__
    ctx.report_progress(3, 3)
    return "hello " + answer["content"]["name"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_log_and_elicitation_reach_the_client_in_both_eras() {
    let rig = Rig::new(&[("asking.py", ASKING)], |_| {});
    let ask = rig.bind(&rig.spec(Kind::Tool, "asking", None, "ask")).await;

    // Legacy era: a server-to-client request, awaited.
    let peer = RecPeer::new(json!({"action": "accept", "content": {"name": "Ada"}}));
    let out = ask.call(Arc::new(ctx_for(&peer, "ask")), json!({})).await;
    assert_eq!(text(out), "hello Ada");
    let progress = peer.notes_of("notifications/progress");
    assert_eq!(progress[0]["progress"], 1.0);
    assert_eq!(progress[0]["total"], 3.0);
    assert_eq!(progress[0]["message"], "asking");
    assert_eq!(progress[1]["progress"], 3.0);
    let logs = peer.notes_of("notifications/message");
    assert_eq!(logs[0]["level"], "info");
    assert_eq!(logs[0]["data"], json!({"asking": "you"}));
    let requests = peer.requests.lock().clone();
    assert_eq!(requests[0].0, "elicitation/create");
    assert_eq!(requests[0].1["message"], "Your name?");

    // Stateless era: InputRequired unwinds the function (its `except Exception` does not
    // catch it) and the call ends asking for input.
    let peer = RecPeer::new(json!({}));
    let ctx = Arc::new(ctx_for(&peer, "ask").with_input(InputRound::new(Map::new(), None)));
    let out = ask.call(ctx.clone(), json!({})).await;
    assert!(
        matches!(
            out,
            Err(FunctionError::Client(ClientRequestError::InputRequired))
        ),
        "{out:?}"
    );
    let (asked, _) = ctx.input().unwrap().outcome();
    assert_eq!(asked["name"]["method"], "elicitation/create");
    // The retry carries the answer.
    let mut answers = Map::new();
    answers.insert(
        "name".into(),
        json!({"action": "accept", "content": {"name": "Grace"}}),
    );
    let ctx = Arc::new(ctx_for(&peer, "ask").with_input(InputRound::new(answers, None)));
    assert_eq!(text(ask.call(ctx, json!({})).await), "hello Grace");
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_are_reaped_and_missing_code_fails_at_bind() {
    let rig = Rig::new(&[("slow.py", SLOW)], |s| {
        s.idle_lifetime = Duration::from_millis(200);
    });
    let quick = rig.bind(&rig.spec(Kind::Tool, "slow", None, "quick")).await;
    assert_eq!(text(call(&quick, "quick", json!({})).await), "quick");
    assert_eq!(rig.runtime.live_workers(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.runtime.live_workers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rig.runtime.live_workers(),
        0,
        "the idle worker was not reaped"
    );
    assert!(rig.leftovers().await.is_empty());
    // A fresh worker serves the next call.
    assert_eq!(text(call(&quick, "quick", json!({})).await), "quick");

    let missing = rig.spec(Kind::Tool, "no_such_module", None, "f");
    let err = rig.runtime.bind(&missing).await.err().unwrap().to_string();
    assert!(err.contains("no_such_module"), "{err}");
    let gone = rig
        .bind(&rig.spec(Kind::Tool, "slow", None, "no_such_function"))
        .await;
    let msg = failure(call(&gone, "x", json!({})).await);
    assert_eq!(msg, "module 'slow' has no function 'no_such_function'");
    rig.runtime.shutdown().await;
}

#[test]
fn the_sandbox_probe_reports_the_layers() {
    let report = sandbox::probe(std::path::Path::new(LAUNCHER), SandboxPolicy::BestEffort);
    assert!(report.no_new_privs, "{}", report.summary());
    assert!(report.new_session && report.parent_death_signal && report.child_subreaper);
    assert!(
        report.rlimits.iter().any(|r| r.starts_with("data=")),
        "{:?}",
        report.rlimits
    );
    // This machine's kernel has Landlock (the tests rely on it for the file checks above).
    assert!(report.landlock_enforced, "{}", report.summary());
}

/// Figures for the report (not a timed test): `cargo nextest run --release -E
/// 'test(python_round_trip_figures)' --run-ignored only --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn python_round_trip_figures() {
    let rig = Rig::new(&[("slow.py", "def add(a, b):\n    return a + b\n")], |_| {});
    let add = rig.bind(&rig.spec(Kind::Tool, "slow", None, "add")).await;
    let started = Instant::now();
    assert_eq!(text(call(&add, "add", json!({"a": 1, "b": 2})).await), "3");
    println!(
        "first call (interpreter probe + worker spawn): {:?}",
        started.elapsed()
    );
    let peer = RecPeer::new(json!({}));
    let mut times = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let ctx = Arc::new(ctx_for(&peer, "add"));
        let t = Instant::now();
        let out = add.call(ctx, json!({"a": i, "b": 2})).await;
        times.push(t.elapsed());
        assert!(out.is_ok());
    }
    times.sort();
    println!(
        "add round trip over 10k calls: p50 {:?} p90 {:?} p99 {:?}",
        times[5_000], times[9_000], times[9_900]
    );
    let pids = rig.processes();
    for (pid, _) in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("");
        println!("idle worker {pid}: {rss}");
    }
    // Spawn time: a worker retired after every call, so each call starts a fresh one.
    let rig2 = Rig::new(&[("slow.py", "def add(a, b):\n    return a + b\n")], |s| {
        s.max_calls_per_worker = Some(1);
    });
    let add2 = rig2.bind(&rig2.spec(Kind::Tool, "slow", None, "add")).await;
    let _ = call(&add2, "add", json!({"a": 1, "b": 2})).await;
    let mut spawns = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert!(call(&add2, "add", json!({"a": 1, "b": 2})).await.is_ok());
        spawns.push(t.elapsed());
    }
    spawns.sort();
    println!(
        "call on a fresh worker (spawn + sandbox + first call): p50 {:?}",
        spawns[10]
    );
    rig2.runtime.shutdown().await;
    rig.runtime.shutdown().await;
}
