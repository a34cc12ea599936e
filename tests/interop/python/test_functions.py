"""Operators' own Python functions through the official Python SDK client.

Two modules written the Python daemon's way run unchanged:
- the example module of its conventions (tests/fixtures/functions/inventory_tools: a class
  built as cls(logger, **setting), a schema default, an async tool, a resource, a prompt),
  zipped into a bundle and served from the bundle folder through its own MCP_CONFIGURATION;
- a module written like its README's demo module (module-level functions taking the logger and
  the setting first), installed into a virtual environment and named by the README's
  config file verbatim (tests/fixtures/functions/readme_demo.json).
Each runs on streamable HTTP, legacy SSE, stdio and plain /http, and the bundle also on three
nodes behind one Redis.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import READ_TIMEOUT_S
from daemon import REPO_ROOT, Daemon, daemon_bin, daemon_env, free_port
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "functions"
TRANSPORTS = ("streamable_http", "sse", "stdio")
STATE_KEY = "functions-interop-request-state-key-0123456789"

pytestmark = pytest.mark.anyio


def _real_python() -> str:
    """The interpreter itself, not a pyenv shim (which costs ~60 ms per worker start)."""
    return os.path.realpath(sys.executable)


def _zip_package(src: Path, dest: Path) -> None:
    """`<package>.zip` with the module's folder at the root, as the Python daemon expects."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(src.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(src.parent).as_posix())


def _function_env(root: Path, python: str) -> dict[str, str]:
    return {
        "FUNCT_BUNDLE_DIR": str(root / "bundles"),
        "FUNCT_ZIP_PATH": str(root / "zips"),
        "FUNCT_EXTRACT_PATH": str(root / "functs"),
        "WORKER_SCRATCH_DIR": str(root / "work"),
        "PYTHON_BIN": python,
        "FUNCTION_TIMEOUT_SECS": "20",
    }


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The bundle in a bundle folder, and a config file holding the module's MCP_CONFIGURATION."""
    root = tmp_path_factory.mktemp("inventory")
    (root / "bundles").mkdir()
    _zip_package(FIXTURES / "inventory_tools", root / "bundles" / "inventory_tools.zip")
    spec = importlib.util.spec_from_file_location(
        "inventory_fixture", FIXTURES / "inventory_tools" / "inventory_tools.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = root / "inventory.json"
    config.write_text(json.dumps(module.MCP_CONFIGURATION))
    return {"root": root, "config": config, "env": _function_env(root, _real_python())}


@pytest.fixture(scope="module")
def readme_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The README-style demo package installed into a venv of its own (the README's config has
    no `source`: the daemon imports an installed package)."""
    root = tmp_path_factory.mktemp("readme-demo")
    venv = root / "venv"
    subprocess.run([_real_python(), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Installed the way pip installs a pure package (the package folder into site-packages),
    # without a build backend or the package index.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    shutil.copytree(FIXTURES / "demo_package" / "mcp_function_demo", Path(purelib) / "mcp_function_demo")
    return {"root": root, "config": FIXTURES / "readme_demo.json", "env": _function_env(root, str(python))}


def _daemon(name: str, setup: dict[str, Any], log_dir: Path, env: dict[str, str] | None = None) -> Daemon:
    return Daemon(name, log_dir, config=setup["config"], env={**setup["env"], **(env or {})})


@pytest.fixture(scope="module")
def inventory_daemon(inventory: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = _daemon("inventory", inventory, tmp_path_factory.mktemp("inventory-daemon"))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def demo_daemon_py(readme_demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = _daemon("readme-demo", readme_demo, tmp_path_factory.mktemp("readme-demo-daemon"))
    d.start()
    yield d
    d.stop()


def _client(transport: str, daemon: Daemon, setup: dict[str, Any], errlog: Any) -> Client:
    if transport == "streamable_http":
        target: Any = daemon.mcp_url
    elif transport == "sse":
        target = sse_client(daemon.sse_url, timeout=READ_TIMEOUT_S)
    else:
        env = {**{k: v for k, v in daemon_env().items() if k in ("PATH", "RUST_BACKTRACE")}, **setup["env"]}
        params = StdioServerParameters(
            command=str(daemon_bin()),
            args=["--transport", "stdio", "--config", str(setup["config"])],
            env=env,
            cwd=str(setup["root"]),
        )
        target = stdio_client(params, errlog=errlog)
    return Client(target, mode="legacy", cache=None, read_timeout_seconds=READ_TIMEOUT_S)


def _text(result: Any) -> str:
    assert not getattr(result, "is_error", False), result
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_example_module_runs_from_its_bundle(
    transport: str, inventory: dict[str, Any], inventory_daemon: Daemon, tmp_path: Path
) -> None:
    with open(tmp_path / "stdio.log", "w") as errlog:
        async with _client(transport, inventory_daemon, inventory, errlog) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == {"count_items", "rebuild_index"}
            counted = _text(await client.call_tool("count_items", {"sku": "A1"}))
            # A dict with return_type text is JSON with a 2-space indent; the schema default
            # of `warehouse` was applied before the call.
            assert counted == json.dumps({"sku": "A1", "warehouse": "main", "count": 3}, indent=2)
            assert _text(await client.call_tool("rebuild_index", {})) == "index rebuilt"
            read = await client.read_resource("inventory://status")
            assert read.contents[0].text == "ok default/None"
            assert read.contents[0].mime_type == "text/plain"
            prompt = await client.get_prompt("restock-note", {"sku": "A1"})
            assert prompt.messages[0].role == "user"
            assert prompt.messages[0].content.text == "Please restock A1."


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_readme_demo_module_runs_from_its_readme_config(
    transport: str, readme_demo: dict[str, Any], demo_daemon_py: Daemon, tmp_path: Path
) -> None:
    with open(tmp_path / "stdio.log", "w") as errlog:
        async with _client(transport, demo_daemon_py, readme_demo, errlog) as client:
            assert _text(await client.call_tool("hello", {"name": "Ada"})) == "Hello, Ada!"
            assert _text(await client.call_tool("hello", {})) == "Hello, World!"
            assert _text(await client.call_tool("add_numbers", {"a": 2, "b": 3})) == "5.0"
            read = await client.read_resource("status://server")
            assert read.contents[0].text == "Server is operational."
            prompt = await client.get_prompt("example-prompt", {"arg1": "x"})
            assert prompt.messages[0].content.text == "Example prompt text"


def _plain_call(base: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    r = httpx2.post(f"{base}/http", json=body, timeout=READ_TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r.json()


def test_both_modules_answer_on_plain_http(inventory_daemon: Daemon, demo_daemon_py: Daemon) -> None:
    inv = _plain_call(inventory_daemon.base, "count_items", {"sku": "B2", "warehouse": "east"})
    assert json.loads(inv["result"]["content"][0]["text"]) == {"sku": "B2", "warehouse": "east", "count": 3}
    demo = _plain_call(demo_daemon_py.base, "hello", {"name": "Bo"})
    assert demo["result"]["content"][0]["text"] == "Hello, Bo!"


def test_a_function_error_is_a_tool_error_with_the_message(demo_daemon_py: Daemon) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "status://nowhere"}}
    r = httpx2.post(f"{demo_daemon_py.base}/http", json=body, timeout=READ_TIMEOUT_S)
    assert r.status_code == 200
    # No definition has that uri: the daemon answers before any Python runs.
    assert r.json()["error"]["code"] == -32002


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is required (scripts/test.sh installs it)"
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(timeout=10)


async def test_three_nodes_behind_one_redis_serve_the_bundle_to_one_session(
    inventory: dict[str, Any], redis_url: str, tmp_path: Path
) -> None:
    env = {"REDIS_URL": redis_url, "REQUEST_STATE_KEY": STATE_KEY}
    nodes = [_daemon(f"node{i}", inventory, tmp_path, env) for i in range(3)]
    for n in nodes:
        n.start()
    try:
        for n in nodes:
            async with Client(n.mcp_url, mode="legacy", cache=None, read_timeout_seconds=READ_TIMEOUT_S) as c:
                assert _text(await c.call_tool("count_items", {"sku": n.name})).count('"count": 3') == 1
        # One session, its requests spread over the nodes as a load balancer without
        # stickiness sends them.
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}
        r = httpx2.post(nodes[0].mcp_url, json=init, headers=headers, timeout=READ_TIMEOUT_S)
        sid = r.headers["mcp-session-id"]
        headers |= {"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        httpx2.post(nodes[0].mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                    headers=headers, timeout=READ_TIMEOUT_S)
        for i, n in enumerate(nodes):
            call = {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                    "params": {"name": "count_items", "arguments": {"sku": f"S{i}"}}}
            r = httpx2.post(n.mcp_url, json=call, headers=headers, timeout=READ_TIMEOUT_S)
            assert r.status_code == 200, r.text
            assert json.loads(r.json()["result"]["content"][0]["text"])["sku"] == f"S{i}"
    finally:
        for n in nodes:
            n.stop()


# --------------------------------------------------------------------------- the context object


@pytest.fixture(scope="module")
def ctx_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("ctx")
    entry = {"module_name": "ctx_tools", "source": str(FIXTURES)}
    config = {
        "tools": {
            "tools": [
                {"name": "greet", "inputSchema": {"type": "object"}},
                {"name": "wait_for_cancel", "inputSchema": {"type": "object"}},
            ],
            "tool_modules": [
                {**entry, "name": "greet", "function_name": "greet"},
                {**entry, "name": "wait_for_cancel", "function_name": "wait_for_cancel"},
            ],
        }
    }
    path = root / "ctx.json"
    path.write_text(json.dumps(config))
    d = Daemon("ctx", root, config=path, env={**_function_env(root, _real_python()), "REQUEST_STATE_KEY": STATE_KEY})
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_progress_logs_and_elicitation_from_python_reach_the_client_in_both_eras(
    mode: str, ctx_daemon: Daemon
) -> None:
    asked: list[Any] = []
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[Any] = []

    async def on_elicit(context: Any, params: Any) -> Any:
        from mcp_types import ElicitResult

        asked.append(params)
        return ElicitResult(action="accept", content={"name": "Ada"})

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async def on_log(params: Any) -> None:
        logs.append(params)

    async with Client(
        ctx_daemon.mcp_url, mode=mode, cache=None, read_timeout_seconds=READ_TIMEOUT_S,
        elicitation_callback=on_elicit, logging_callback=on_log,
    ) as client:
        result = await client.call_tool("greet", {}, progress_callback=on_progress)
    assert _text(result) == "Hello, Ada!"
    assert len(asked) == 1 and asked[0].message == "What is your name?", asked
    if mode == "legacy":
        # One run of the function: both progress reports and the log reach the client.
        assert progress == [(1.0, 2.0, "asking"), (2.0, 2.0, "answered")], progress
        assert [entry.data for entry in logs] == ["greeted"], logs
    else:
        # Stateless era: the first round ends at the question, the retry runs the function
        # again with the answer; what the final round sends reaches the client.
        assert (2.0, 2.0, "answered") in progress, progress


async def test_a_cancellation_reaches_the_python_function(ctx_daemon: Daemon) -> None:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}
    async with httpx2.AsyncClient(timeout=READ_TIMEOUT_S) as http:
        r = await http.post(ctx_daemon.mcp_url, json=init, headers=headers)
        headers |= {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        await http.post(ctx_daemon.mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                        headers=headers)
        call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "wait_for_cancel", "arguments": {}}}
        import anyio

        async def cancel_soon() -> None:
            await anyio.sleep(1.0)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "test"}}
            await http.post(ctx_daemon.mcp_url, json=cancel, headers=headers)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_soon)
            # The spec: no response for a cancelled request; the stream ends.
            await http.post(ctx_daemon.mcp_url, json=call, headers=headers)
        assert time.monotonic() - started < 9, "the call was not cut short by the cancellation"
    deadline = time.monotonic() + 10
    while "cancel observed: cancelled=True" not in ctx_daemon.stderr():
        assert time.monotonic() < deadline, ctx_daemon.stderr()
        time.sleep(0.05)
