"""Fixtures: daemons (one per config, shared by the whole run) and a client factory.

All clients use the official `mcp` SDK's high-level `mcp.Client` with
`mode="legacy"`, which forces the `initialize` handshake (mcp 2.x defaults to
`mode="auto"`, which first probes `server/discover`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon import REPO_ROOT, Daemon, daemon_bin, daemon_env, integration_config
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client

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
