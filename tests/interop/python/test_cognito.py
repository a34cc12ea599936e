"""`--auth-provider cognito` against a real Cognito API: moto's server (`python -m moto.server`)
on a free loopback port, set up with boto3.

The pool has a group `admins`, an app client with USER_PASSWORD_AUTH and no secret, and a user
in that group with a permanent password. InitiateAuth gives an access token and an id token
signed with moto's key, whose JWKS moto serves at `/<pool id>/.well-known/jwks.json`; moto
writes `iss = https://cognito-idp.<region>.amazonaws.com/<pool id>` whatever its own address,
so the daemon gets that issuer and the JWKS URL on the moto server.

The resource server must accept both tokens and refuse tokens of another pool, of another app
client, expired ones and ones whose signature or claims were changed. The daemon's own login
page checks passwords through Cognito's InitiateAuth (`--cognito-endpoint`).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from conftest import (
    AuthRequest,
    FormClient,
    McpHttp,
    Page,
    access_token_from,
    assert_mcp_works,
    assert_unauthorized,
    check_page_headers,
    issuer_of,
    redirect_query,
    registered_client_id,
)
from daemon import Daemon, free_port, integration_config

REGION = "us-east-1"
USER = "alice"  # in the group `admins`
PASSWORD = "Alice-Passw0rd!"
NO_GROUP_USER = "bob"  # in no group


class MotoServer:
    """moto's standalone server as a child process."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.name = "moto"

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server not up on {self.url} within 30s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return "<no log>"


@dataclass
class Pool:
    id: str
    client_id: str
    other_client_id: str  # an app client of the same pool that the daemon does not allow
    issuer: str
    jwks_url: str


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idp(moto: MotoServer):
    return boto3.client(
        "cognito-idp",
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _make_pool(idp, moto: MotoServer, name: str) -> Pool:
    pool_id = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    idp.create_group(UserPoolId=pool_id, GroupName="admins")
    clients = [
        idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=client_name,
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        for client_name in (f"{name}-mcp", f"{name}-other")
    ]
    idp.admin_create_user(
        UserPoolId=pool_id, Username=USER, TemporaryPassword="Temp-Passw0rd!", MessageAction="SUPPRESS"
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=USER, Password=PASSWORD, Permanent=True)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=USER, GroupName="admins")
    idp.admin_create_user(
        UserPoolId=pool_id, Username=NO_GROUP_USER, TemporaryPassword="Temp-Passw0rd!", MessageAction="SUPPRESS"
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=NO_GROUP_USER, Password=PASSWORD, Permanent=True)
    return Pool(
        id=pool_id,
        client_id=clients[0],
        other_client_id=clients[1],
        issuer=f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
        jwks_url=f"{moto.url}/{pool_id}/.well-known/jwks.json",
    )


@pytest.fixture(scope="module")
def pool(idp, moto) -> Pool:
    return _make_pool(idp, moto, "mcp-daemon")


@pytest.fixture(scope="module")
def other_pool(idp, moto) -> Pool:
    return _make_pool(idp, moto, "elsewhere")


def _cognito_daemon(name: str, work: Path, moto: MotoServer, pool: Pool, config: Path | None = None) -> Daemon:
    return Daemon(
        name,
        work,
        config=config,
        args=[
            "--auth-provider", "cognito",
            "--data-dir", str(work / "data"),
            "--cognito-user-pool-id", pool.id,
            "--cognito-region", REGION,
            "--cognito-app-client-id", pool.client_id,
            "--cognito-jwks-url", pool.jwks_url,
            "--cognito-issuer", pool.issuer,
            "--cognito-endpoint", f"{moto.url}/",
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def cognito_daemon(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, pool: Pool) -> Iterator[Daemon]:
    d = _cognito_daemon("auth-cognito", tmp_path_factory.mktemp("auth-cognito"), moto, pool)
    d.start()
    yield d
    d.stop()


# Tools of the integration config that only some roles may use (the rest are for everyone).
TOOL_ROLES = {"add_numbers": ["admins"], "test_simple_text": ["auditors"]}


@pytest.fixture(scope="module")
def roles_daemon(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, pool: Pool) -> Iterator[Daemon]:
    """The integration config (which has `testkit_whoami`) with `roles` on two tools."""
    work = tmp_path_factory.mktemp("auth-cognito-roles")
    config = json.loads(integration_config().read_text())
    for tool in config["tools"]["tools"]:
        if tool["name"] in TOOL_ROLES:
            tool["roles"] = TOOL_ROLES[tool["name"]]
    path = work / "config.json"
    path.write_text(json.dumps(config))
    d = _cognito_daemon("auth-cognito-roles", work, moto, pool, config=path)
    d.start()
    yield d
    d.stop()


def _tokens(idp, client_id: str, username: str = USER) -> dict[str, str]:
    result = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return {"access": result["AccessToken"], "id": result["IdToken"]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _with_claims(token: str, **changes) -> str:
    """The token with its payload changed and its (now wrong) signature kept."""
    header, _, signature = token.split(".")
    return ".".join([header, _b64(json.dumps(_claims(token) | changes).encode()), signature])


def _signed_by_moto(claims: dict) -> str:
    """A token signed with moto's own key (the JWKS the daemon trusts), for claims moto never
    issues itself, such as an expired token."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey
    from moto.utilities.utils import load_resource

    key = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode({"kid": "dummy", "alg": "RS256"}, claims, key)


# --- what moto hands out (the facts the daemon's verifier relies on)


def test_moto_tokens_look_like_cognito(moto, idp, pool):
    tokens = _tokens(idp, pool.client_id)
    access, id_token = _claims(tokens["access"]), _claims(tokens["id"])
    assert access["iss"] == id_token["iss"] == pool.issuer
    assert access["token_use"] == "access" and access["client_id"] == pool.client_id
    assert "aud" not in access
    assert id_token["token_use"] == "id" and id_token["aud"] == pool.client_id
    assert access["cognito:groups"] == id_token["cognito:groups"] == ["admins"]
    assert access["username"] == id_token["cognito:username"] == USER
    with urllib.request.urlopen(pool.jwks_url, timeout=5) as resp:
        keys = json.load(resp)["keys"]
    assert [k["kid"] for k in keys] == ["dummy"]


# --- the resource server


def test_access_token_opens_mcp(cognito_daemon, idp, pool):
    assert_mcp_works(cognito_daemon.mcp_url, _tokens(idp, pool.client_id)["access"])


def test_id_token_opens_mcp(cognito_daemon, idp, pool):
    assert_mcp_works(cognito_daemon.mcp_url, _tokens(idp, pool.client_id)["id"])


def test_no_token_is_refused(cognito_daemon):
    assert_unauthorized(cognito_daemon.mcp_url, None)


def test_tokens_of_another_pool_are_refused(cognito_daemon, idp, other_pool):
    # moto signs every pool's tokens with the same key: only `iss` tells them apart.
    tokens = _tokens(idp, other_pool.client_id)
    assert_unauthorized(cognito_daemon.mcp_url, tokens["access"])
    assert_unauthorized(cognito_daemon.mcp_url, tokens["id"])


def test_tokens_of_another_app_client_are_refused(cognito_daemon, idp, pool):
    tokens = _tokens(idp, pool.other_client_id)
    assert_unauthorized(cognito_daemon.mcp_url, tokens["access"])
    assert_unauthorized(cognito_daemon.mcp_url, tokens["id"])


def test_tampered_tokens_are_refused(cognito_daemon, idp, pool, other_pool):
    access = _tokens(idp, pool.client_id)["access"]
    header, payload, signature = access.split(".")
    # A different signature (one byte of it changed).
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    assert_unauthorized(cognito_daemon.mcp_url, ".".join([header, payload, _b64(bytes(raw))]))
    # The right signature over changed claims.
    assert_unauthorized(cognito_daemon.mcp_url, _with_claims(access, **{"cognito:groups": ["admins", "root"]}))
    other = _tokens(idp, other_pool.client_id)["access"]
    assert_unauthorized(cognito_daemon.mcp_url, _with_claims(other, iss=pool.issuer, client_id=pool.client_id))
    # No signature at all.
    none_header = _b64(json.dumps({"alg": "none", "kid": "dummy"}).encode())
    assert_unauthorized(cognito_daemon.mcp_url, f"{none_header}.{payload}.")


def test_expired_and_misused_tokens_are_refused(cognito_daemon, idp, pool):
    good = _claims(_tokens(idp, pool.client_id)["access"])
    now = int(time.time())
    # Sanity: the same claims, re-signed with moto's key, are accepted.
    assert_mcp_works(cognito_daemon.mcp_url, _signed_by_moto(good))
    expired = good | {"iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}
    assert_unauthorized(cognito_daemon.mcp_url, _signed_by_moto(expired))
    # An access token that says it is something else (token_use is how Cognito tells them apart).
    assert_unauthorized(cognito_daemon.mcp_url, _signed_by_moto(good | {"token_use": "refresh"}))


@pytest.mark.parametrize("kind", ["access", "id"])
def test_cognito_groups_are_roles(roles_daemon, idp, pool, kind):
    """`cognito:groups` become roles: a tool with `roles` is listed and callable only for them.
    The principal is the token's `sub`."""
    for username, groups in ((USER, ["admins"]), (NO_GROUP_USER, [])):
        token = _tokens(idp, pool.client_id, username)[kind]
        assert _claims(token).get("cognito:groups", []) == groups
        client = McpHttp(roles_daemon.mcp_url, token)
        client.initialize()
        listed = {t["name"] for t in client.call("tools/list")["tools"]}
        assert "hello" in listed and "testkit_whoami" in listed, listed
        for tool, roles in TOOL_ROLES.items():
            allowed = bool(set(roles) & set(groups))
            assert (tool in listed) == allowed, f"{username} (groups {groups}) and {tool} (roles {roles}): {listed}"
        resp, message = client.request("tools/call", {"name": "test_simple_text", "arguments": {}})
        refused = resp.status_code == 403 or (
            message is not None and ("error" in message or message.get("result", {}).get("isError") is True)
        )
        assert refused, f"{username} called test_simple_text (roles auditors): {resp.status_code} {resp.text[:1000]}"
        if "admins" in groups:
            result = client.call("tools/call", {"name": "add_numbers", "arguments": {"a": 2, "b": 3}})
            assert result["content"][0]["text"] == "5", result
        whoami = client.call("tools/call", {"name": "testkit_whoami", "arguments": {}})
        who = whoami.get("structuredContent") or json.loads(whoami["content"][0]["text"])
        assert _claims(token)["sub"] in who["subject"], f"principal {who} for sub {_claims(token)['sub']}"


# --- the daemon's own authorization server, whose login page asks Cognito


def _login_page(daemon: Daemon) -> tuple[FormClient, AuthRequest, Page]:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    client_id = registered_client_id(daemon.base, redirect_uri, "Cognito Login Test")
    auth = AuthRequest.new(daemon.base, client_id, redirect_uri)
    browser = FormClient(daemon.base)
    resp = browser.get(auth.url)
    assert resp.status_code == 200, f"GET /authorize -> {resp.status_code} {resp.text[:2000]}"
    check_page_headers(resp)
    page = Page.of(resp)
    form = page.form_with("sign-in")
    names = [name for name, _ in form.fields]
    assert "username" in names and "password" in names, form
    return browser, auth, page


def test_login_page_checks_the_password_with_cognito(cognito_daemon, pool):
    browser, auth, login = _login_page(cognito_daemon)
    form = login.form_with("sign-in")
    consent = browser.follow_to_page(browser.submit(login, form, {"username": USER, "password": PASSWORD}))
    approve = consent.form_with("approve")
    assert "Cognito Login Test" in consent.text, consent.text

    query = redirect_query(browser.submit(consent, approve, {}, button_id="approve"), auth.redirect_uri)
    assert query.get("state") == auth.state, query
    assert query.get("iss") == issuer_of(cognito_daemon.base), query
    # The daemon's own token (not Cognito's) opens /mcp in cognito mode too.
    assert_mcp_works(cognito_daemon.mcp_url, access_token_from(auth.redeem(query["code"])))


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "Wrong-Passw0rd!"), ("nobody", PASSWORD)], ids=["wrong-password", "unknown-user"]
)
def test_login_page_refuses_what_cognito_refuses(cognito_daemon, pool, username, password):
    browser, _, login = _login_page(cognito_daemon)
    form = login.form_with("sign-in")
    resp = browser.submit(login, form, {"username": username, "password": password})
    assert resp.status_code not in (301, 302, 303, 307) or "/callback" not in resp.headers.get("Location", ""), (
        f"redirected to the client after a refused login: {resp.headers.get('Location')}"
    )
    # The login page again: 200, or an error status (400/401/403) with the page.
    page = browser.follow_to_page(resp, statuses=(200, 400, 401, 403))
    assert not any(b.get("id") == "approve" for f in page.forms for b in f.buttons + f.inputs), (
        f"consent page after a refused login:\n{page.text}"
    )
    page.form_with("sign-in")
    assert password not in page.resp.text, "password echoed back in the page"
