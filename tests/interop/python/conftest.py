"""Fixtures: daemons (one per config, shared by the whole run) and client factories.

`connect_demo` / `connect_integration` build the official `mcp` SDK's high-level
`mcp.Client` with `mode="legacy"`, which forces the `initialize` handshake (mcp 2.x
defaults to `mode="auto"`, which first probes `server/discover`).

`connect_modern` builds the same client in its default `mode="auto"` against the
integration daemon's `/mcp`, where the probe succeeds and the client speaks the
stateless 2026-07-28 protocol. Its HTTP traffic can be recorded in a `WireLog`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from daemon import REPO_ROOT, Daemon, daemon_bin, daemon_env, integration_config
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent, TextResourceContents

TRANSPORTS = ("streamable_http", "sse", "stdio")

# Per-request read timeout for every client; a hung server fails the test instead of the run.
READ_TIMEOUT_S = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class StdioLogs:
    """Stderr files of the stdio-mode daemons a test spawned (printed on failure)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.paths: list[Path] = []
        self.name = "stdio"

    def new(self) -> Any:
        path = self.directory / f"stdio-{len(self.paths)}.stderr.log"
        self.paths.append(path)
        return open(path, "w")  # noqa: SIM115 - closed by the fixture

    def stderr(self) -> str:
        parts = []
        for path in self.paths:
            try:
                parts.append(f"[{path.name}]\n{path.read_text(errors='replace')}")
            except OSError:
                parts.append(f"[{path.name}] <unreadable>")
        return "\n".join(parts)


@pytest.fixture(scope="session")
def demo_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """Daemon with no --config: must serve the built-in demo set."""
    d = Daemon("demo", tmp_path_factory.mktemp("demo-daemon"))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def integration_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon("integration", tmp_path_factory.mktemp("integration-daemon"), config=integration_config())
    d.start()
    yield d
    d.stop()


@pytest.fixture
def stdio_logs(tmp_path: Path) -> Iterator[StdioLogs]:
    logs = StdioLogs(tmp_path)
    yield logs


ClientFactory = Callable[..., Client]


def _make_factory(daemon_fixture: str, config: Path | None) -> Callable[..., ClientFactory]:
    def fixture(request: pytest.FixtureRequest, stdio_logs: StdioLogs) -> Iterator[ClientFactory]:
        opened: list[Any] = []
        daemon: Daemon = request.getfixturevalue(daemon_fixture)
        node = request.node

        def connect(transport: str, **kwargs: Any) -> Client:
            kwargs.setdefault("read_timeout_seconds", READ_TIMEOUT_S)
            if transport == "streamable_http":
                _note_source(node, daemon)
                target: Any = daemon.mcp_url
            elif transport == "sse":
                _note_source(node, daemon)
                target = sse_client(daemon.sse_url, timeout=READ_TIMEOUT_S)
            elif transport == "stdio":
                args = ["--transport", "stdio"]
                if config is not None:
                    args += ["--config", str(config)]
                errlog = stdio_logs.new()
                _note_source(node, stdio_logs)
                opened.append(errlog)
                env = {k: v for k, v in daemon_env().items() if k in ("RUST_BACKTRACE", "RUST_LOG")}
                params = StdioServerParameters(command=str(daemon_bin()), args=args, env=env, cwd=str(REPO_ROOT))
                target = stdio_client(params, errlog=errlog)
            else:
                raise ValueError(f"unknown transport {transport!r}")
            # cache=None: every call must reach the server (the SDK's response cache only
            # matters for 2026-era servers, but the tests must never be served locally).
            return Client(target, mode="legacy", cache=None, **kwargs)

        yield connect
        for f in opened:
            f.close()

    return fixture


connect_demo = pytest.fixture(_make_factory("demo_daemon", None), name="connect_demo")
connect_integration = pytest.fixture(
    _make_factory("integration_daemon", integration_config()), name="connect_integration"
)


@dataclass
class Exchange:
    """One HTTP request the client sent, and the head of the response it got."""

    method: str
    path: str
    headers: httpx2.Headers
    body: Any
    status: int
    response_headers: httpx2.Headers

    @property
    def rpc_method(self) -> str | None:
        """The JSON-RPC method of a POSTed request (None for responses, notifications and GETs)."""
        if isinstance(self.body, dict) and "id" in self.body:
            return self.body.get("method")
        return None


class WireLog:
    """Every HTTP exchange of one client, recorded by an httpx2 response hook (bodies of
    responses are not read: they may be streams)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    async def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        body: Any = None
        if request.method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                body = request.content
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                headers=httpx2.Headers(request.headers),
                body=body,
                status=response.status_code,
                response_headers=httpx2.Headers(response.headers),
            )
        )

    def requests(self, method: str | None = None) -> list[Exchange]:
        """POSTed JSON-RPC requests (in the order their responses arrived), optionally of one method."""
        return [x for x in self.exchanges if x.rpc_method is not None and (method is None or x.rpc_method == method)]

    def session_ids(self) -> set[str]:
        return {v for x in self.exchanges if (v := x.response_headers.get("mcp-session-id"))}

    def describe(self) -> str:
        return "\n".join(
            f"{x.method} {x.path} -> {x.status} {json.dumps(x.body)[:300] if x.body is not None else ''}"
            for x in self.exchanges
        )


@asynccontextmanager
async def recorded_streamable_http(url: str, wire: WireLog) -> AsyncIterator[Any]:
    """The SDK's streamable HTTP transport over an httpx2 client that records into `wire`
    (same timeouts as the SDK's default client)."""
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(timeout=timeout, event_hooks={"response": [wire.on_response]}) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams


@pytest.fixture
def connect_modern(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """Clients of the integration daemon's `/mcp` in the SDK's default `mode="auto"`.

    `connect(wire=WireLog())` records the client's HTTP traffic; `mode` and every other
    `mcp.Client` option can be overridden (the side-by-side test passes `mode="legacy"`).
    """
    daemon: Daemon = request.getfixturevalue("integration_daemon")
    _note_source(request.node, daemon)

    def connect(*, wire: WireLog | None = None, **kwargs: Any) -> Client:
        kwargs.setdefault("read_timeout_seconds", READ_TIMEOUT_S)
        # Every call must reach the server: 2026-era results carry cache hints (ttlMs).
        kwargs.setdefault("cache", None)
        target: Any = daemon.mcp_url if wire is None else recorded_streamable_http(daemon.mcp_url, wire)
        return Client(target, **kwargs)

    yield connect


LOG_SOURCES = pytest.StashKey[list[Any]]()


def _note_source(node: pytest.Item, source: Any) -> None:
    sources = node.stash.setdefault(LOG_SOURCES, [])
    if source not in sources:
        sources.append(source)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        # An assertion inside `async with Client(...)` surfaces wrapped in the SDK's task-group
        # exception groups; name the underlying failure(s) up front.
        if call.excinfo is not None and isinstance(call.excinfo.value, BaseExceptionGroup):
            leaves = _leaf_exceptions(call.excinfo.value)
            report.sections.append(("underlying failure", "\n".join(f"{type(e).__name__}: {e}" for e in leaves)))
        sources = list(item.stash.get(LOG_SOURCES, []))
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Daemon | StdioLogs) and value not in sources:
                sources.append(value)
        for src in sources:
            extra = f" (alive={src.alive()})" if isinstance(src, Daemon) else ""
            report.sections.append((f"mcp-daemon {src.name} stderr{extra}", src.stderr()))
    return report


def _leaf_exceptions(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaf_exceptions(sub)]
    return [exc]


# --- assertions shared by the test modules ---------------------------------------------------


def only_text(result: Any) -> str:
    assert result.is_error is not True, f"tool returned isError: {result}"
    assert len(result.content) == 1, f"expected exactly one content block: {result.content}"
    block = result.content[0]
    assert isinstance(block, TextContent), f"expected text content, got {block!r}"
    return block.text


def status_resource(result: Any) -> dict:
    """The demo's `status://server` as read by a client: one JSON text resource; its body."""
    assert len(result.contents) == 1, result.contents
    contents = result.contents[0]
    assert isinstance(contents, TextResourceContents), contents
    assert str(contents.uri) == "status://server"
    assert contents.mime_type == "application/json"
    body = json.loads(contents.text)
    assert isinstance(body, dict), contents.text
    return body
