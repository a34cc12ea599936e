"""The stdio process contract the SDK's stdio transport relies on: stdout carries only
newline-delimited JSON-RPC, and the daemon exits by itself when stdin closes."""

from __future__ import annotations

import json
import subprocess

from daemon import daemon_bin, daemon_env


def test_stdio_stdout_is_jsonrpc_only_and_process_exits_on_stdin_eof(tmp_path):
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "interop-raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "hello", "arguments": {"name": "eof"}}},
    ]
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    stderr_path = tmp_path / "stdio.stderr.log"
    with open(stderr_path, "wb") as err:
        proc = subprocess.run(
            [str(daemon_bin()), "--transport", "stdio"],
            input=stdin.encode(),
            stdout=subprocess.PIPE,
            stderr=err,
            env=daemon_env(),
            timeout=10,  # stdin is closed after the last request: the daemon must exit by itself
        )
    stderr = stderr_path.read_text(errors="replace")
    assert proc.returncode == 0, f"exit code {proc.returncode}\n--- stderr ---\n{stderr}"
    lines = proc.stdout.decode().splitlines()
    assert lines, f"no output\n--- stderr ---\n{stderr}"
    messages = []
    for line in lines:
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AssertionError(f"non-JSON line on stdout: {line!r}") from exc
    assert all(m.get("jsonrpc") == "2.0" for m in messages), messages
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert by_id[1]["result"]["protocolVersion"] == "2025-11-25", by_id[1]
    assert by_id[2]["result"]["content"] == [{"type": "text", "text": "Hello, eof!"}], by_id[2]
