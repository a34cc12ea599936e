//! The connection server's limits, seen from raw sockets: slow headers, idle keep-alive and
//! slow bodies are disconnected; past the connection cap the newest connection is shed while
//! the others and the listener go on; an SSE stream is not idle however quiet it is. The
//! timeouts are seconds and every wait has a generous deadline, so a loaded CI only slows the
//! tests down.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{SseReader, TestServer, integration_config};
use mcp_daemon::catalog::Catalog;
use mcp_daemon::clock::SystemClock;
use mcp_daemon::config::Config;

/// How long any one expectation may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut c = integration_config();
    c.http_limits.header_read_timeout_secs = 30;
    c.http_limits.idle_timeout_secs = 30;
    c.http_limits.body_read_timeout_secs = 30;
    tweak(&mut c);
    TestServer::start_with(c, std::sync::Arc::new(SystemClock)).await
}

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// Reads until `\r\n\r\n` plus the body of a `content-length` response; `None` on EOF first.
async fn read_response(tcp: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(text);
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Waits until the server closes `tcp` (EOF or reset), returning what it sent before.
async fn closed_by_server(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = tokio::time::timeout(DEADLINE, async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {DEADLINE:?}"
    );
    String::from_utf8_lossy(&got).to_string()
}

#[tokio::test]
async fn a_slow_header_is_disconnected_after_the_header_timeout() {
    let s = start(|c| c.http_limits.header_read_timeout_secs = 2).await;
    let tcp = TcpStream::connect(addr(&s)).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let started = Instant::now();
    // A slowloris: one more header byte every second, never the blank line.
    let writer = tokio::spawn(async move {
        let _ = wr
            .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nx-slow: ")
            .await;
        for _ in 0..60 {
            if wr.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut got = Vec::new();
    let ended = tokio::time::timeout(DEADLINE, rd.read_to_end(&mut got)).await;
    assert!(
        ended.is_ok(),
        "a slow header held its connection past {DEADLINE:?}"
    );
    assert!(
        got.is_empty(),
        "no answer to a head never completed: {got:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed before the header timeout could have passed"
    );
    writer.abort();
    // The server goes on serving.
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(HEALTH).await.unwrap();
    assert!(
        read_response(&mut tcp)
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = start(|c| c.http_limits.idle_timeout_secs = 2).await;
    // Served once, then quiet: closed although the header timeout (30 s) is far away.
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(HEALTH).await.unwrap();
    let first = read_response(&mut tcp).await.unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let started = Instant::now();
    let rest = closed_by_server(&mut tcp).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Never used at all: the same.
    let mut quiet = TcpStream::connect(addr(&s)).await.unwrap();
    assert!(closed_by_server(&mut quiet).await.is_empty());
}

#[tokio::test]
async fn a_slow_body_is_cut_with_408() {
    let s = start(|c| c.http_limits.body_read_timeout_secs = 2).await;
    let tcp = TcpStream::connect(addr(&s)).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let head = "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                    accept: application/json, text/event-stream\r\ncontent-length: 1000\r\n\r\n";
        let _ = wr.write_all(head.as_bytes()).await;
        for _ in 0..60 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut got = Vec::new();
    let ended = tokio::time::timeout(DEADLINE, rd.read_to_end(&mut got)).await;
    assert!(
        ended.is_ok(),
        "a slow body held its connection past {DEADLINE:?}"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("request body was not received within 2 s"),
        "{text}"
    );
    writer.abort();
}

#[tokio::test]
async fn past_the_connection_cap_the_newest_is_shed_and_the_rest_still_serve() {
    let s = start(|c| c.http_limits.max_connections = Some(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
        tcp.write_all(HEALTH).await.unwrap();
        assert!(
            read_response(&mut tcp)
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        held.push(tcp);
    }
    let mut extra = TcpStream::connect(addr(&s)).await.unwrap();
    let _ = extra.write_all(HEALTH).await;
    let shed = closed_by_server(&mut extra).await;
    assert!(
        shed.is_empty() || shed.starts_with("HTTP/1.1 503"),
        "the fourth connection must be shed: {shed}"
    );
    assert!(!shed.contains("\"status\""), "{shed}");
    for tcp in &mut held {
        tcp.write_all(HEALTH).await.unwrap();
        let again = read_response(tcp).await.unwrap();
        assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    }
    drop(held);
    // Their places free up once the server has seen them close.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
        tcp.write_all(HEALTH).await.unwrap();
        if read_response(&mut tcp)
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection accepted after the others closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_sse_stream_outlives_the_idle_timeout() {
    let s = start(|c| {
        c.http_limits.idle_timeout_secs = 1;
        c.http_limits.header_read_timeout_secs = 1;
        // No keep-alive comments: the stream stays open because a response is in progress,
        // not because bytes flow.
        c.sse_keepalive_secs = 600;
    })
    .await;
    let sid = s.initialize("2025-06-18", json!({})).await;
    let mut stream = SseReader::new(s.get_stream(&sid, None).await);
    // Several idle timeouts pass with the stream quiet.
    tokio::time::sleep(Duration::from_secs(4)).await;
    s.engine
        .replace_catalog(
            Catalog::load(None, &mcp_daemon::runtime::Runtimes::builtin_only())
                .await
                .unwrap(),
        )
        .await;
    let note = tokio::time::timeout(
        DEADLINE,
        stream.until_method("notifications/tools/list_changed"),
    )
    .await
    .expect("the GET stream is still open");
    assert_eq!(note["method"], "notifications/tools/list_changed");
}

#[tokio::test]
async fn shutdown_closes_open_sse_streams_after_the_grace_period() {
    let mut c = integration_config();
    c.http_limits.shutdown_grace_secs = 1;
    c.sse_keepalive_secs = 600;
    let engine = mcp_daemon::app::build_engine(&c, std::sync::Arc::new(SystemClock))
        .await
        .unwrap();
    let state = mcp_daemon::app::http_state(&c, engine).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = crate::harness::McpHttp::new(format!("http://{}", listener.local_addr().unwrap()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mcp_daemon::app::serve(listener, state, async move {
        let _ = rx.await;
    }));
    let sid = client.initialize("2025-06-18", json!({})).await;
    let mut stream = SseReader::new(client.get_stream(&sid, None).await);
    tx.send(()).unwrap();
    // The stream would never end by itself; the grace period ends it, and serve returns.
    let done = tokio::time::timeout(DEADLINE, server).await;
    assert!(
        done.is_ok(),
        "serve still running {DEADLINE:?} after shutdown"
    );
    done.unwrap().unwrap().unwrap();
    let ended = tokio::time::timeout(DEADLINE, async {
        while stream.next_message(DEADLINE).await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream is still open");
}
