"""OAuth 2.1 end to end with the official `mcp` client's `OAuthClientProvider`.

Every test starts its own daemon with the local authorization server in test mode
(`--auth-provider local --oauth-test-user admin`): `/authorize` answers at once with a
302 to the redirect_uri carrying `code`, `state` and `iss`. The provider's
`redirect_handler` plays the browser: it GETs the authorization URL without following the
redirect and hands the code to `callback_handler`. Everything else is the SDK's own flow:
401 -> protected resource metadata -> authorization server metadata -> dynamic client
registration (or a client ID metadata document) -> PKCE authorization code -> token ->
retry, and later the refresh_token grant.

The wire (every request the SDK's HTTP client sent, auth requests included) is recorded so
a flow that silently took another path (a second authorization instead of a refresh, a
registration in the CIMD variant) fails the test.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from conftest import READ_TIMEOUT_S, Exchange, WireLog, only_text, recorded_streamable_http
from daemon import Daemon, free_port, integration_config
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

pytestmark = pytest.mark.anyio

ADMIN_PASSWORD = "interop-" + secrets.token_urlsafe(12)
TEST_TIMEOUT_S = 30


class AuthDaemon(Daemon):
    """The integration-config daemon behind the local authorization server in test mode."""

    def __init__(self, name: str, tmp: Path, extra_args: tuple[str, ...] = ()) -> None:
        data_dir = tmp / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            "--auth-provider", "local",
            "--oauth-test-user", "admin",
            "--admin-password", ADMIN_PASSWORD,
            "--data-dir", str(data_dir),
            *extra_args,
        ]  # fmt: skip
        super().__init__(name, tmp, config=integration_config(), args=args)

    @property
    def prm_url(self) -> str:
        return f"{self.base}/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
def auth_daemon(tmp_path: Path) -> Iterator[AuthDaemon]:
    d = AuthDaemon("oauth", tmp_path)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def cimd_daemon(tmp_path: Path) -> Iterator[AuthDaemon]:
    d = AuthDaemon("oauth-cimd", tmp_path, ("--cimd-allow-private",))
    d.start()
    yield d
    d.stop()


# --------------------------------------------------------------------------- client side


class MemoryStorage:
    """In-memory `TokenStorage`; keeps every token set it was given, in order."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.token_history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.token_history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """The provider's redirect/callback pair: GET the authorization URL, do not follow the
    302, and hand what it carried to the SDK."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.authorization_urls: list[str] = []
        self.redirects: list[dict[str, list[str]]] = []
        self._pending: AuthorizationCodeResult | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0) as http:
            response = await http.get(authorization_url)
        assert response.status_code in (302, 303), (
            f"test-mode /authorize must redirect at once, got {response.status_code}: {response.text[:500]}"
        )
        location = response.headers.get("location", "")
        target = urlsplit(location)
        expected = urlsplit(self.redirect_uri)
        assert (target.scheme, target.netloc, target.path) == (expected.scheme, expected.netloc, expected.path), (
            f"/authorize redirected to {location!r}, not to the redirect_uri {self.redirect_uri!r}"
        )
        query = parse_qs(target.query)
        self.redirects.append(query)
        assert "error" not in query, f"authorization error: {query}"
        for name in ("code", "state", "iss"):
            assert len(query.get(name, [])) == 1, f"redirect must carry exactly one {name}: {location}"
        self._pending = AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self._pending is not None, "callback_handler called before the redirect"
        result, self._pending = self._pending, None
        return result


def client_metadata(redirect_uri: str) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name="mcp-daemon-interop-py",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )


class AuthWire(WireLog):
    """A `WireLog` that keeps form bodies (token requests) as text, so `describe()` can print them."""

    async def on_response(self, response: httpx2.Response) -> None:
        await super().on_response(response)
        exchange = self.exchanges[-1]
        if isinstance(exchange.body, bytes):
            exchange.body = exchange.body.decode(errors="replace")


@asynccontextmanager
async def oauth_streamable_http(url: str, auth: httpx2.Auth, wire: WireLog) -> AsyncIterator[Any]:
    """The SDK's streamable HTTP transport over an httpx2 client that authenticates with
    `auth` and records every exchange (the auth flow's own requests included) into `wire`."""
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(auth=auth, timeout=timeout, event_hooks={"response": [wire.on_response]}) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams


def form(x: Exchange) -> dict[str, str]:
    """The form body of a recorded token request."""
    body = x.body if isinstance(x.body, str) else ""
    return {k: v[0] for k, v in parse_qs(body).items()}


def token_requests(wire: WireLog, grant_type: str) -> list[Exchange]:
    return [x for x in calls(wire, "POST", "/token") if form(x).get("grant_type") == grant_type]


def calls(wire: WireLog, method: str, path: str) -> list[Exchange]:
    return [x for x in wire.exchanges if x.method == method and x.path == path]


def assert_discovery_and_grant(wire: WireLog, daemon: AuthDaemon, *, registered: bool) -> None:
    """The SDK went 401 -> PRM -> AS metadata -> (DCR) -> authorization_code token -> authorized
    /mcp, in that order, and the server answered each step as the contract says."""
    log = wire.describe()
    first = wire.exchanges[0]
    assert (first.method, first.path, first.status) == ("POST", "/mcp", 401), f"first exchange must be a 401\n{log}"
    challenge = first.response_headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), f"401 challenge: {challenge!r}"
    assert f'resource_metadata="{daemon.prm_url}"' in challenge, f"401 challenge: {challenge!r}"

    def index_of(pred: Any, what: str, after: int) -> int:
        for i, x in enumerate(wire.exchanges):
            if i > after and pred(x):
                return i
        raise AssertionError(f"no {what} after exchange #{after}\n{log}")

    prm_path = urlsplit(daemon.prm_url).path
    prm = index_of(lambda x: x.method == "GET" and x.path == prm_path, "PRM fetch", 0)
    assert wire.exchanges[prm].status == 200, log
    asm = index_of(lambda x: x.method == "GET" and x.path.startswith("/.well-known/"), "AS metadata fetch", prm)
    as_metadata = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
    assert wire.exchanges[asm].path in as_metadata, log
    assert wire.exchanges[asm].status == 200, log
    step = asm
    if registered:
        step = index_of(lambda x: x.method == "POST" and x.path == "/register", "registration", asm)
        assert wire.exchanges[step].status == 201, f"DCR must answer 201\n{log}"
    else:
        assert calls(wire, "POST", "/register") == [], f"CIMD client must not register\n{log}"
    token = index_of(lambda x: x.method == "POST" and x.path == "/token", "token request", step)
    exchange = wire.exchanges[token]
    assert form(exchange).get("grant_type") == "authorization_code", log
    assert exchange.status == 200, f"token endpoint answered {exchange.status}\n{log}"
    assert "no-store" in exchange.response_headers.get("cache-control", ""), exchange.response_headers
    # RFC 8707: the SDK sends the PRM's resource, which must be this server's /mcp.
    assert form(exchange).get("resource") == daemon.mcp_url, form(exchange)
    retried = index_of(lambda x: x.method == "POST" and x.path == "/mcp", "authorized retry", token)
    assert wire.exchanges[retried].status == 200, f"/mcp refused the fresh token\n{log}"
    assert wire.exchanges[retried].headers.get("authorization", "").startswith("Bearer "), log


async def refresh_and_call(
    client: Client, provider: OAuthClientProvider, storage: MemoryStorage, wire: WireLog, browser: Browser, a: int
) -> None:
    """Make the held access token count as expired, call a tool, and check the SDK renewed it
    with one refresh_token grant (rotated refresh token, no new authorization)."""
    before = storage.tokens
    assert before is not None and before.refresh_token, f"token response carried no refresh_token: {before}"
    refreshes = len(token_requests(wire, "refresh_token"))
    authorizations = len(browser.authorization_urls)
    # What a clock past expires_in looks like to the provider.
    provider.context.token_expiry_time = time.time() - 1

    assert only_text(await client.call_tool("add_numbers", {"a": a, "b": 1})) == str(a + 1)

    log = wire.describe()
    new_refreshes = token_requests(wire, "refresh_token")[refreshes:]
    assert len(new_refreshes) == 1, f"expected one refresh_token grant\n{log}"
    refresh = new_refreshes[0]
    assert refresh.status == 200, f"refresh_token grant answered {refresh.status}\n{log}"
    assert form(refresh).get("refresh_token") == before.refresh_token, form(refresh)
    assert "no-store" in refresh.response_headers.get("cache-control", ""), refresh.response_headers
    assert len(browser.authorization_urls) == authorizations, "a refresh must not need a new authorization"
    after = storage.tokens
    assert after is not None and after is not before, "the refreshed token was not stored"
    assert after.access_token != before.access_token, "refresh returned the same access token"
    assert after.refresh_token and after.refresh_token != before.refresh_token, (
        "the refresh token must rotate (OAuth 2.1 public client)"
    )


# --------------------------------------------------------------------------- tests


async def test_mcp_without_token_is_401_with_resource_metadata(auth_daemon: AuthDaemon) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "interop", "version": "0"},
        },
    }
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with httpx2.AsyncClient(timeout=10.0) as http:
        response = await http.post(auth_daemon.mcp_url, json=init, headers=headers)
        assert response.status_code == 401, f"{response.status_code} {response.text[:300]}"
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer "), challenge
        assert f'resource_metadata="{auth_daemon.prm_url}"' in challenge, challenge

        # Same pooled keep-alive connection: a 401 must leave it usable (or say `Connection: close`).
        try:
            response = await http.post(
                auth_daemon.mcp_url, json=init, headers={**headers, "authorization": "Bearer x.y.z"}
            )
        except httpx2.RemoteProtocolError as exc:
            raise AssertionError(
                "the daemon closed the keep-alive connection after its 401 without `Connection: close`; "
                f"the next request on it failed: {exc}"
            ) from exc
        assert response.status_code == 401, f"a garbage bearer token got {response.status_code}"
        assert "resource_metadata=" in response.headers.get("www-authenticate", ""), response.headers

        prm = await http.get(auth_daemon.prm_url)
        assert prm.status_code == 200, prm.text
        body = prm.json()
        assert body.get("resource") == auth_daemon.mcp_url, body
        assert body.get("authorization_servers") == [auth_daemon.base], body

    # The SDK without an auth provider gets nowhere either: its initialize is answered 401.
    wire = AuthWire()
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK reports a bare -32603; the wire says why
        with anyio.fail_after(TEST_TIMEOUT_S):
            target = recorded_streamable_http(auth_daemon.mcp_url, wire)
            async with Client(target, mode="legacy", cache=None, read_timeout_seconds=READ_TIMEOUT_S):
                pass
    assert [(x.path, x.status) for x in wire.requests("initialize")] == [("/mcp", 401)], wire.describe()


def post_in_two_writes(port: int, body: bytes) -> tuple[str, bool]:
    """POST /mcp without a token, the head and the body in two writes (as httpx and undici
    often send them). Returns the response head and whether the server then closed the
    connection (waiting half a second)."""
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"accept: application/json, text/event-stream\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        time.sleep(0.05)
        sock.sendall(body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response head: {data!r}"
            data += chunk
        response_head, _, rest = data.partition(b"\r\n\r\n")
        lines = response_head.split(b"\r\n")
        length = next((int(x.split(b":", 1)[1]) for x in lines if x.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside the response body"
            rest += chunk
        sock.settimeout(0.5)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return response_head.decode(errors="replace"), closed


async def test_401_leaves_the_keep_alive_connection_usable(auth_daemon: AuthDaemon) -> None:
    """Every client's first request is refused with 401 and the next one (discovery) goes out on the
    pooled connection; a server that drops it without `Connection: close` fails that request
    ("Server disconnected without sending a response")."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).encode()
    head, closed = await anyio.to_thread.run_sync(post_in_two_writes, auth_daemon.port, body)
    assert head.startswith("HTTP/1.1 401"), head
    announced = any(line.lower().replace(" ", "") == "connection:close" for line in head.split("\r\n"))
    assert announced or not closed, f"daemon dropped the connection after a 401 without `Connection: close`:\n{head}"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_dcr_authorization_code_then_refresh(auth_daemon: AuthDaemon, mode: str) -> None:
    redirect_uri = f"http://localhost:{free_port()}/callback"
    browser = Browser(redirect_uri)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=auth_daemon.mcp_url,
        client_metadata=client_metadata(redirect_uri),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    wire = AuthWire()
    with anyio.fail_after(TEST_TIMEOUT_S):
        target = oauth_streamable_http(auth_daemon.mcp_url, provider, wire)
        async with Client(target, mode=mode, cache=None, read_timeout_seconds=READ_TIMEOUT_S) as client:
            assert only_text(await client.call_tool("add_numbers", {"a": 2, "b": 3})) == "5"

            assert_discovery_and_grant(wire, auth_daemon, registered=True)
            if mode == "legacy":
                assert wire.requests("initialize"), f"legacy mode must initialize\n{wire.describe()}"
            else:
                assert wire.requests("server/discover"), f"auto mode must probe server/discover\n{wire.describe()}"
            assert len(browser.authorization_urls) == 1, browser.authorization_urls
            query = parse_qs(urlsplit(browser.authorization_urls[0]).query)
            assert query["client_id"] == [storage.client_info.client_id], query
            assert query["code_challenge_method"] == ["S256"], query
            assert query["resource"] == [auth_daemon.mcp_url], query
            assert browser.redirects[0]["iss"] == [auth_daemon.base], browser.redirects[0]
            assert storage.tokens is not None and storage.tokens.token_type == "Bearer"
            assert "mcp" in (storage.tokens.scope or "").split(), storage.tokens

            # Two refreshes in a row: the second presents the refresh token the first rotated in.
            await refresh_and_call(client, provider, storage, wire, browser, 40)
            await refresh_and_call(client, provider, storage, wire, browser, 41)
            assert len(calls(wire, "POST", "/register")) == 1, wire.describe()
            assert len(token_requests(wire, "authorization_code")) == 1, wire.describe()


class ClientMetadataDocument:
    """A client ID metadata document served over plain HTTP on 127.0.0.1 (the daemon runs
    with --cimd-allow-private); records every fetch."""

    def __init__(self, redirect_uri: str) -> None:
        self.fetches: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                owner.fetches.append(self.path)
                if self.path != "/clients/interop.json":
                    self.send_error(404)
                    return
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/clients/interop.json"
        self.document = {
            "client_id": self.url,
            "client_name": "mcp-daemon-interop-py (CIMD)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp",
        }
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ClientMetadataDocument:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_client_id_metadata_document_instead_of_registration(cimd_daemon: AuthDaemon) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    browser = Browser(redirect_uri)
    storage = MemoryStorage()
    with ClientMetadataDocument(redirect_uri) as doc:
        provider = OAuthClientProvider(
            server_url=cimd_daemon.mcp_url,
            client_metadata=client_metadata(redirect_uri),
            storage=storage,
            redirect_handler=browser.redirect_handler,
            callback_handler=browser.callback_handler,
        )
        # The SDK's constructor only takes https:// document URLs (as production servers
        # require); the daemon under --cimd-allow-private accepts this loopback http:// one.
        # From here on the SDK's own CIMD path runs unchanged.
        provider.context.client_metadata_url = doc.url
        wire = AuthWire()
        with anyio.fail_after(TEST_TIMEOUT_S):
            target = oauth_streamable_http(cimd_daemon.mcp_url, provider, wire)
            async with Client(target, mode="legacy", cache=None, read_timeout_seconds=READ_TIMEOUT_S) as client:
                assert only_text(await client.call_tool("add_numbers", {"a": 20, "b": 22})) == "42"

                assert_discovery_and_grant(wire, cimd_daemon, registered=False)
                assert storage.client_info is not None and storage.client_info.client_id == doc.url
                query = parse_qs(urlsplit(browser.authorization_urls[0]).query)
                assert query["client_id"] == [doc.url], query
                token = token_requests(wire, "authorization_code")[0]
                assert form(token).get("client_id") == doc.url, form(token)
                assert "/clients/interop.json" in doc.fetches, f"the daemon never fetched the document: {doc.fetches}"

                await refresh_and_call(client, provider, storage, wire, browser, 7)
                assert calls(wire, "POST", "/register") == [], wire.describe()
