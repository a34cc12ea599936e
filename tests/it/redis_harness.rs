//! The test harness's own Redis (`tests/support/redis_server.rs`): a restart really replaces
//! the process (the restart tests of `auth_cluster` and `faults` rely on it), keeps the AOF's
//! data, and dropping the handle leaves no process behind.

use std::path::Path;

use crate::nodes::RedisServer;

fn running(pid: u32) -> bool {
    // A zombie is not running; the harness reaps its children, so this is belt and braces.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_restart_replaces_the_process_keeps_the_aof_and_drop_leaves_nothing_running() {
    let mut redis = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]);
    let old_pid = redis.pid().unwrap();
    let old_run = redis.run_id().unwrap();
    assert!(
        redis
            .command(&["SET", "k", "v"])
            .unwrap()
            .starts_with("+OK")
    );

    redis.restart();
    let new_pid = redis.pid().unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(
        !running(old_pid),
        "the old redis-server {old_pid} still runs"
    );
    assert_ne!(redis.run_id().unwrap(), old_run, "a new server answers");
    assert_eq!(
        redis.info_field("server", "process_id").unwrap(),
        new_pid.to_string()
    );
    assert_eq!(
        redis.command(&["GET", "k"]).unwrap(),
        "$1\r\nv\r\n",
        "read back from the AOF"
    );
    assert_eq!(redis.keys("*"), ["k"]);

    // After a crash (SIGKILL) the next start is a new process too.
    redis.kill();
    assert!(!running(new_pid));
    redis.restart();
    assert_eq!(redis.command(&["GET", "k"]).unwrap(), "$1\r\nv\r\n");

    let (pid, dir) = (redis.pid().unwrap(), redis.dir.clone());
    drop(redis);
    assert!(!running(pid), "dropped, yet redis-server {pid} still runs");
    assert!(!Path::new(&dir).exists(), "its data folder is removed");
}

#[test]
fn a_panicking_test_leaves_no_redis_server_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let redis = RedisServer::start();
        tx.send(redis.pid().unwrap()).unwrap();
        panic!("the test fails while its Redis runs");
    })
    .join();
    assert!(outcome.is_err());
    let pid = rx.recv().unwrap();
    assert!(
        !running(pid),
        "redis-server {pid} outlived the panicking test"
    );
}
