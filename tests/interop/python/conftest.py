"""Fixtures: daemons (one per config, shared by the whole run) and client factories.

`connect_demo` / `connect_integration` build the official `mcp` SDK's high-level
`mcp.Client` with `mode="legacy"`, which forces the `initialize` handshake (mcp 2.x
defaults to `mode="auto"`, which first probes `server/discover`).

`connect_modern` builds the same client in its default `mode="auto"` against the
integration daemon's `/mcp`, where the probe succeeds and the client speaks the
stateless 2026-07-28 protocol. Its HTTP traffic can be recorded in a `WireLog`.

The OAuth helpers at the end (PKCE, DCR, a recording redirect_uri server, the login and
consent pages read over plain HTTP, MCP over HTTP with a bearer token) serve test_browser.py
and test_cognito.py.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
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


# --- OAuth: the authorization server's pages, driven by test_browser.py and test_cognito.py ---

ARTIFACTS_DIR = REPO_ROOT / "target" / "test-artifacts" / "auth-pages"
_ARTIFACTS: list[Path] = []


def pytest_sessionstart(session: Any) -> None:
    """Screenshots of an earlier run would pass for this run's: start from an empty folder."""
    if ARTIFACTS_DIR.exists():
        for old in ARTIFACTS_DIR.iterdir():
            if old.is_file():
                old.unlink()


def artifact_path(name: str) -> Path:
    """A file under target/test-artifacts/auth-pages/ (ignored by git), listed at the end of the run."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / name
    _ARTIFACTS.append(path)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    written = [p for p in dict.fromkeys(_ARTIFACTS) if p.exists()]
    if written:
        terminalreporter.section("auth page artifacts")
        for path in written:
            terminalreporter.write_line(str(path))


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class CallbackServer:
    """A client's redirect_uri: a local HTTP server that records the query of every GET /callback."""

    def __init__(self) -> None:
        hits: list[dict[str, list[str]]] = []
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/callback":
                    self.send_error(404)
                    return
                hits.append(urllib.parse.parse_qs(url.query, keep_blank_values=True))
                body = b"<!doctype html><title>callback</title><h1>callback received</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for_hit(self, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hits:
                return {k: v[0] for k, v in self.hits[-1].items()}
            time.sleep(0.05)
        raise AssertionError(f"no request reached the redirect_uri {self.url} within {timeout}s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    server = CallbackServer()
    yield server
    server.close()


def register_client(base: str, redirect_uri: str, client_name: str) -> requests.Response:
    """RFC 7591 dynamic registration of a public client (PKCE, no secret)."""
    return requests.post(
        f"{base}/register",
        json={
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        timeout=10,
    )


def registered_client_id(base: str, redirect_uri: str, client_name: str) -> str:
    resp = register_client(base, redirect_uri, client_name)
    assert resp.status_code == 201, f"POST /register -> {resp.status_code} {resp.text}"
    client_id = resp.json().get("client_id")
    assert client_id, resp.text
    return client_id


@dataclass
class AuthRequest:
    """One /authorize request of a public client, with what it needs to redeem the code."""

    base: str
    client_id: str
    redirect_uri: str
    state: str
    verifier: str
    url: str
    scope: str = "mcp"

    @classmethod
    def new(cls, base: str, client_id: str, redirect_uri: str, scope: str = "mcp") -> AuthRequest:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                "scope": scope,
                "resource": f"{base}/mcp",
            }
        )
        return cls(base, client_id, redirect_uri, state, verifier, f"{base}/authorize?{query}", scope)

    def redeem(self, code: str) -> requests.Response:
        return requests.post(
            f"{self.base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": self.verifier,
                "redirect_uri": self.redirect_uri,
                "client_id": self.client_id,
                "resource": f"{self.base}/mcp",
            },
            timeout=10,
        )


def access_token_from(resp: requests.Response) -> str:
    """The access token of a successful /token answer (checked against RFC 6749 §5.1)."""
    assert resp.status_code == 200, f"POST /token -> {resp.status_code} {resp.text}"
    assert "no-store" in resp.headers.get("Cache-Control", ""), dict(resp.headers)
    body = resp.json()
    assert body.get("token_type", "").lower() == "bearer", body
    assert body.get("access_token"), body
    return body["access_token"]


def issuer_of(base: str) -> str:
    resp = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10)
    assert resp.status_code == 200, f"GET /.well-known/oauth-authorization-server -> {resp.status_code} {resp.text}"
    return resp.json()["issuer"]


# --- the pages' HTML and headers, read without a browser


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]]  # (name, value) of the inputs, as a browser would send them
    inputs: list[dict[str, str]]  # every <input>'s attributes
    buttons: list[dict[str, str]]  # every <button>'s attributes


class _FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower(), [], [], []))
        elif tag == "input" and self.forms:
            form = self.forms[-1]
            form.inputs.append(a)
            if a.get("name") and a.get("type", "text").lower() not in ("submit", "button", "image", "reset"):
                form.fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


@dataclass
class Page:
    """An HTML page of the authorization server as plain HTTP saw it."""

    resp: requests.Response
    forms: list[Form]
    text: str  # visible text, whitespace collapsed

    @classmethod
    def of(cls, resp: requests.Response) -> Page:
        parser = _FormParser()
        parser.feed(resp.text)
        return cls(resp, parser.forms, " ".join(" ".join(parser.text).split()))

    def form_with(self, element_id: str) -> Form:
        for form in self.forms:
            if any(el.get("id") == element_id for el in form.buttons + form.inputs):
                return form
        raise AssertionError(f"no form with an element #{element_id} on {self.resp.url}:\n{self.resp.text[:3000]}")


def set_cookies(resp: requests.Response) -> list[dict[str, Any]]:
    """Every Set-Cookie of a response: {"name", "value", "attrs": {lowercased name: value}}."""
    out = []
    for raw in resp.raw.headers.getlist("Set-Cookie"):
        pair, *attrs = [part.strip() for part in raw.split(";")]
        name, _, value = pair.partition("=")
        parsed = {}
        for attr in attrs:
            k, _, v = attr.partition("=")
            parsed[k.strip().lower()] = v.strip()
        out.append({"name": name.strip(), "value": value.strip(), "attrs": parsed, "raw": raw})
    return out


def check_page_headers(resp: requests.Response) -> None:
    """What every login/consent page must carry: an HTML type, a CSP that forbids framing,
    no caching, and only `__Host-` cookies (Secure, Path=/, no Domain: what browsers demand of
    that prefix)."""
    assert resp.headers.get("Content-Type", "").startswith("text/html"), dict(resp.headers)
    csp = resp.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0].lower(): d.strip() for d in csp.split(";") if d.strip()}
    assert "frame-ancestors" in directives, f"no frame-ancestors in CSP {csp!r}"
    assert directives["frame-ancestors"].split()[1:] == ["'none'"], f"CSP {csp!r}"
    for cookie in set_cookies(resp):
        assert cookie["name"].startswith("__Host-"), f"cookie without the __Host- prefix: {cookie['raw']}"
        assert "secure" in cookie["attrs"], cookie["raw"]
        assert cookie["attrs"].get("path") == "/", cookie["raw"]
        assert "domain" not in cookie["attrs"], cookie["raw"]


class FormClient:
    """Plays a browser's part on the pages with plain HTTP: keeps the cookies the pages set
    (by hand: `__Host-` cookies are Secure, which http.cookiejar withholds over http://) and
    sends `Origin` on POSTs like a browser does."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "mcp-daemon-interop-tests"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep(self, resp: requests.Response) -> requests.Response:
        for cookie in set_cookies(resp):
            expired = cookie["attrs"].get("max-age") == "0"
            if expired:
                self.cookies.pop(cookie["name"], None)
            else:
                self.cookies[cookie["name"]] = cookie["value"]
        return resp

    def get(self, url: str) -> requests.Response:
        return self._keep(requests.get(url, headers=self._headers(), allow_redirects=False, timeout=15))

    def submit(self, page: Page, form: Form, values: dict[str, str], button_id: str | None = None) -> requests.Response:
        """Submits `form` of `page` as a browser would: its inputs, `values` laid over them, and
        the clicked button's name=value when it has a name."""
        data = [(k, v) for k, v in form.fields if k not in values]
        data += list(values.items())
        if button_id is not None:
            button = next((b for b in form.buttons + form.inputs if b.get("id") == button_id), None)
            assert button is not None, f"no #{button_id} in the form"
            if button.get("name"):
                data.append((button["name"], button.get("value", "")))
        url = urllib.parse.urljoin(page.resp.url, form.action or page.resp.url)
        assert form.method == "post", f"form to {url} is {form.method!r}, want post"
        headers = self._headers() | {"Origin": self.base}
        return self._keep(requests.post(url, data=data, headers=headers, allow_redirects=False, timeout=15))

    def follow_to_page(self, resp: requests.Response, statuses: tuple[int, ...] = (200,)) -> Page:
        """Follows same-origin redirects (303 after a POST, for instance) to the HTML page, whose
        status must be one of `statuses`."""
        for _ in range(5):
            if resp.status_code in (301, 302, 303, 307) and resp.headers.get("Location"):
                target = urllib.parse.urljoin(resp.url, resp.headers["Location"])
                assert target.startswith(self.base + "/"), f"redirected off the server to {target}"
                resp = self.get(target)
            else:
                break
        assert resp.status_code in statuses, f"{resp.request.method} {resp.url} -> {resp.status_code}: {resp.text[:2000]}"
        check_page_headers(resp)
        return Page.of(resp)


def redirect_query(resp: requests.Response, redirect_uri: str) -> dict[str, str]:
    """The query of a redirect to the client's redirect_uri."""
    assert resp.status_code in (302, 303), f"want a redirect to {redirect_uri}, got {resp.status_code}: {resp.text[:2000]}"
    location = resp.headers.get("Location", "")
    assert location.startswith(redirect_uri + "?"), f"Location {location!r}, want {redirect_uri}?..."
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).items()}


# --- MCP over plain HTTP with a bearer token


class McpHttp:
    """JSON-RPC over POST /mcp with `Authorization: Bearer <token>` (handshake era)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._id = 0

    def post(self, message: dict[str, Any]) -> requests.Response:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return requests.post(self.url, json=message, headers=headers, timeout=20)

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[requests.Response, dict[str, Any] | None]:
        """(response, the JSON-RPC response message when the status is 200)."""
        self._id += 1
        resp = self.post({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}})
        if resp.status_code != 200:
            return resp, None
        return resp, _rpc_response(resp, self._id)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        resp, message = self.request(method, params)
        assert resp.status_code == 200, f"{method} -> HTTP {resp.status_code} {dict(resp.headers)} {resp.text[:2000]}"
        assert message is not None and "result" in message, f"{method} -> {message}"
        return message["result"]

    def initialize(self) -> dict[str, Any]:
        resp, message = self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "mcp-daemon-auth-tests", "version": "0"},
            },
        )
        assert resp.status_code == 200, f"initialize -> HTTP {resp.status_code} {dict(resp.headers)} {resp.text[:2000]}"
        assert message is not None and "result" in message, message
        self.session_id = resp.headers.get("Mcp-Session-Id")
        self.protocol_version = message["result"]["protocolVersion"]
        note = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert note.status_code in (200, 202), f"notifications/initialized -> {note.status_code} {note.text}"
        return message["result"]


def _rpc_response(resp: requests.Response, want_id: int) -> dict[str, Any]:
    if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
        for line in resp.text.splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:].strip() or "null")
                if isinstance(message, dict) and message.get("id") == want_id:
                    return message
        raise AssertionError(f"no response with id {want_id} in the stream:\n{resp.text[:2000]}")
    return resp.json()


def assert_mcp_works(mcp_url: str, token: str) -> None:
    """initialize, tools/list and tools/call hello with the token, each answered."""
    client = McpHttp(mcp_url, token)
    client.initialize()
    tools = {t["name"] for t in client.call("tools/list")["tools"]}
    assert "hello" in tools, tools
    result = client.call("tools/call", {"name": "hello", "arguments": {"name": "OAuth"}})
    assert result.get("isError") is not True, result
    assert result["content"][0]["text"] == "Hello, OAuth!", result


def assert_unauthorized(mcp_url: str, token: str | None) -> requests.Response:
    """initialize with this token (or none) is refused with 401 and a Bearer challenge."""
    resp, _ = McpHttp(mcp_url, token).request(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    )
    assert resp.status_code == 401, f"want 401, got {resp.status_code}: {resp.text[:1000]}"
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), f"WWW-Authenticate {challenge!r}"
    assert "resource_metadata=" in challenge, f"WWW-Authenticate {challenge!r}"
    return resp
