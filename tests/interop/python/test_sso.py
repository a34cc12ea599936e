"""Upstream sign-in ("Sign in with <provider>") against a real OpenID Connect provider.

The provider is panva's certified `oidc-provider` (tests/interop/oidc/provider.mjs, the package
pinned in tests/interop/ts/package.json and installed by run.sh into .tooling/node) on a free
loopback port, with one confidential client (client_secret_basic, PKCE required) whose redirect
URI is the daemon's `<base>/authorize/callback`, and its built-in development login and consent
pages: any login name signs in as the account whose `sub` is that name; `carol` has
`groups: ["ops"]`.

The daemon runs with `--auth-provider local`, `--config tests/fixtures/auth.json` (whose
`ops_only` tool needs the role `ops`) and `--oidc-issuer/-client-id/-client-secret/-name`.

In headless Chromium (selenium, Debian's chromium and chromedriver, as in test_browser.py) a
client registered through DCR opens /authorize, the person clicks `#sso`, signs in and consents
at the provider, approves on our consent page, and the client redeems the code: the token's
subject is the provider's `sub` and its `groups` are roles. Then the refusals: a replayed
callback, a callback in another browser, an unknown state, and the provider's own
`access_denied` (its "[ Cancel ]" link) each end on our error page (`#error`, HTTP 4xx), never
at the client.

Screenshots go to target/test-artifacts/auth-pages/sso-*.png (with the HTML beside them).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import (
    AuthRequest,
    CallbackServer,
    FormClient,
    McpHttp,
    Page,
    _note_source,
    access_token_from,
    check_page_headers,
    issuer_of,
    redirect_query,
    registered_client_id,
)
from daemon import REPO_ROOT, Daemon, free_port
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from test_browser import _await_callback, _binary, _snapshot, _visible_text, _wait_for

ADMIN_PASSWORD = "admin-password-1"
PROVIDER_NAME = "Test IdP"
OIDC_CLIENT_ID = "mcp-daemon-sso-test"
OIDC_CLIENT_SECRET = "oidc-client-secret-" + "0123456789abcdef"
CLIENT_NAME = "SSO Test Client"
AUTH_CONFIG = REPO_ROOT / "tests" / "fixtures" / "auth.json"
PROVIDER_SCRIPT = REPO_ROOT / "tests" / "interop" / "oidc" / "provider.mjs"
WAIT_S = 15


# --- the OpenID provider --------------------------------------------------------------------


def _node_modules() -> Path:
    return Path(os.environ.get("MCP_INTEROP_NODE_MODULES") or REPO_ROOT / ".tooling" / "node" / "node_modules")


class OidcProvider:
    """tests/interop/oidc/provider.mjs as a child process (stdout and stderr in one log)."""

    def __init__(self, log_dir: Path, redirect_uris: list[str]) -> None:
        self.name = "oidc-provider"  # the failure report's section title says "mcp-daemon oidc-provider"
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.redirect_uris = redirect_uris
        self.log_path = log_dir / "oidc-provider.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.discovery: dict[str, Any] = {}

    def start(self) -> None:
        node = shutil.which(os.environ.get("OIDC_PROVIDER_NODE") or "node")
        if node is None:
            raise RuntimeError("node not found on PATH (set OIDC_PROVIDER_NODE)")
        package = _node_modules() / "oidc-provider" / "package.json"
        if not package.is_file():
            raise RuntimeError(f"{package} missing: run tests/interop/run.sh (it installs oidc-provider into .tooling/node)")
        args = [node, str(PROVIDER_SCRIPT), "--port", str(self.port)]
        args += ["--client-id", OIDC_CLIENT_ID, "--client-secret", OIDC_CLIENT_SECRET]
        for uri in self.redirect_uris:
            args += ["--redirect-uri", uri]
        env = dict(os.environ, MCP_INTEROP_NODE_MODULES=str(_node_modules()))
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        finally:
            log.close()
        deadline = time.monotonic() + 20
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    self.discovery = json.load(resp)
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"oidc-provider not answering {url} within 20s:\n{self.stderr()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stderr(self, limit: int = 20000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return text if len(text) <= limit else "...<truncated>...\n" + text[-limit:]


@pytest.fixture(scope="module")
def sso_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth-sso")


@pytest.fixture(scope="module")
def _unstarted_daemon(sso_work: Path) -> Daemon:
    """The daemon object (its port is chosen now): the provider must know its callback first."""
    return Daemon(
        "auth-sso",
        sso_work,
        config=AUTH_CONFIG,
        args=["--auth-provider", "local", "--admin-password", ADMIN_PASSWORD, "--data-dir", str(sso_work / "data")],
    )


@pytest.fixture(scope="module")
def oidc_provider(sso_work: Path, _unstarted_daemon: Daemon) -> Iterator[OidcProvider]:
    provider = OidcProvider(sso_work, [f"{_unstarted_daemon.base}/authorize/callback"])
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def sso_daemon(_unstarted_daemon: Daemon, oidc_provider: OidcProvider) -> Iterator[Daemon]:
    d = _unstarted_daemon
    d.extra_args += [
        "--oidc-issuer", oidc_provider.issuer,
        "--oidc-client-id", OIDC_CLIENT_ID,
        "--oidc-client-secret", OIDC_CLIENT_SECRET,
        "--oidc-name", PROVIDER_NAME,
    ]  # fmt: skip
    d.start()
    yield d
    d.stop()


@pytest.fixture(autouse=True)
def _report_provider_log(request: pytest.FixtureRequest, oidc_provider: OidcProvider) -> None:
    """A failing test's report shows the provider's request log too (conftest's hook)."""
    _note_source(request.node, oidc_provider)


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """test_browser.py's headless Chromium, plus its performance log (the network events: the
    URLs the browser was sent to and the statuses it got)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("CHROMIUM_BIN", "chromium", "chromium-browser")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1024,900",
        "--no-first-run",
        "--password-store=basic",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(_binary("CHROMEDRIVER_BIN", "chromedriver")), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


class Network:
    """The documents a browser requested and the statuses it got, from its performance log
    (Network.requestWillBeSent, with the previous hop of a redirect in `redirectResponse`, and
    Network.responseReceived)."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver
        self.requests: list[tuple[str, str]] = []  # (method, url)
        self.statuses: list[tuple[str, int, str]] = []  # (url, status, Location)

    def poll(self) -> Network:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent" and params.get("type") == "Document":
                redirect = params.get("redirectResponse")
                if redirect:
                    location = {k.lower(): v for k, v in redirect.get("headers", {}).items()}.get("location", "")
                    self.statuses.append((redirect["url"], redirect["status"], location))
                self.requests.append((params["request"]["method"], params["request"]["url"]))
            elif message.get("method") == "Network.responseReceived" and params.get("type") == "Document":
                response = params["response"]
                self.statuses.append((response["url"], response["status"], ""))
        return self

    def requested(self, prefix: str) -> list[str]:
        return [url for _, url in self.poll().requests if url.startswith(prefix)]

    def status_of(self, url: str) -> int | None:
        """The status of the last response to `url` the browser saw."""
        found = [status for u, status, _ in self.poll().statuses if u == url]
        return found[-1] if found else None

    def describe(self) -> str:
        return "\n".join(f"  {status} {url}" + (f" -> {loc}" if loc else "") for url, status, loc in self.statuses)


def _new_auth(daemon: Daemon, callback: CallbackServer) -> AuthRequest:
    client_id = registered_client_id(daemon.base, callback.url, CLIENT_NAME)
    return AuthRequest.new(daemon.base, client_id, callback.url)


def _open_login_and_click_sso(driver: WebDriver, auth: AuthRequest, provider: OidcProvider, shot: str) -> None:
    """Our login page -> `#sso` -> the provider's login page."""
    driver.get(auth.url)
    _wait_for(driver, (By.ID, "sso"), "the #sso button on the login page", shot)
    button = driver.find_element(By.ID, "sso")
    assert " ".join(button.text.split()) == f"Sign in with {PROVIDER_NAME}", button.get_attribute("outerHTML")
    assert button.get_attribute("type") in ("submit", None, ""), button.get_attribute("outerHTML")
    _snapshot(driver, f"{shot}-login")
    button.click()
    _wait_for(driver, (By.CSS_SELECTOR, "input[name=prompt][value=login]"), "the provider's login form", shot)
    assert driver.current_url.startswith(provider.issuer + "/"), driver.current_url
    _snapshot(driver, f"{shot}-provider-login")


def _sign_in_at_provider(driver: WebDriver, login: str, shot: str) -> bool:
    """Fills in the provider's dev login form and, when it asks, its consent prompt; returns
    whether the consent prompt came."""
    driver.find_element(By.NAME, "login").send_keys(login)
    driver.find_element(By.NAME, "password").send_keys("any password at all")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    consent = (By.CSS_SELECTOR, "input[name=prompt][value=consent]")
    try:
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(*consent) or d.find_elements(By.ID, "approve") or d.find_elements(By.ID, "error")
        )
    except Exception:
        _snapshot(driver, f"{shot}-after-provider-login")
        raise AssertionError(
            f"after the provider's login: browser at {driver.current_url}, page says:\n{_visible_text(driver)[:1000]}"
        ) from None
    if not driver.find_elements(*consent):
        return False
    _snapshot(driver, f"{shot}-provider-consent")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return True


def _provider_token_calls(provider: OidcProvider) -> int:
    """How many code exchanges the provider granted so far (its request log)."""
    return len(re.findall(r"^POST /token -> 200", provider.stderr(limit=10**7), re.M))


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True).items()}


def _is_error_page(resp: requests.Response) -> bool:
    return 400 <= resp.status_code < 500 and re.search(r"""id=["']?error\b""", resp.text) is not None


def _describe(resp: requests.Response) -> str:
    headers = "\n".join(f"  {k}: {v}" for k, v in resp.headers.items())
    return f"{resp.request.method} {resp.request.url}\n-> {resp.status_code}\n{headers}\n{resp.text[:1500]}"


# --- the whole flow in Chromium -------------------------------------------------------------


@pytest.mark.parametrize(("login", "roles"), [("carol", ["ops"]), ("dave", [])], ids=["carol-ops", "dave-no-groups"])
def test_sign_in_at_the_provider_then_consent_and_token(sso_daemon, oidc_provider, callback_server, browser, login, roles):
    shot = f"sso-{login}"
    net = Network(browser)
    auth = _new_auth(sso_daemon, callback_server)
    issuer = issuer_of(sso_daemon.base)

    token_calls = _provider_token_calls(oidc_provider)
    _open_login_and_click_sso(browser, auth, oidc_provider, shot)
    # The hand-over: a 303 from POST /authorize/upstream to the provider's authorization endpoint.
    hops = net.requested(oidc_provider.discovery["authorization_endpoint"] + "?")
    assert len(hops) == 1, f"want one request to the provider's authorization endpoint:\n{net.describe()}"
    upstream = [s for s in net.statuses if s[0] == f"{sso_daemon.base}/authorize/upstream"]
    assert upstream and upstream[0][1] == 303, f"POST /authorize/upstream: {upstream}\n{net.describe()}"
    ask = _query(hops[0])
    assert ask.get("response_type") == "code", ask
    assert ask.get("client_id") == OIDC_CLIENT_ID, ask
    assert ask.get("redirect_uri") == f"{sso_daemon.base}/authorize/callback", ask
    assert ask.get("code_challenge_method") == "S256" and len(ask.get("code_challenge", "")) == 43, ask
    assert ask.get("state") and ask.get("nonce"), ask
    assert ask.get("scope", "").split() == ["openid", "email", "profile"], ask

    asked_consent = _sign_in_at_provider(browser, login, shot)
    assert asked_consent, "the provider's consent prompt did not come (its dev interactions always ask)"
    _wait_for(browser, (By.ID, "approve"), "our consent page after the provider's sign-in", shot)
    _snapshot(browser, f"{shot}-consent")
    callbacks = net.requested(f"{sso_daemon.base}/authorize/callback?")
    assert len(callbacks) == 1, net.describe()
    back = _query(callbacks[0])
    assert back.get("state") == ask["state"] and back.get("code"), back
    assert back.get("iss") == oidc_provider.issuer, back  # RFC 9207: the provider says who it is
    consent = _visible_text(browser)
    assert login in consent, f"our consent page does not name {login!r}:\n{consent}"
    assert CLIENT_NAME in consent, f"our consent page does not name the client:\n{consent}"
    assert not callback_server.hits, "the MCP client's redirect_uri was reached before consent"
    # The daemon redeemed the provider's code with client_secret_basic (the only method the
    # provider allows this client) and the PKCE verifier (required by the provider).
    assert _provider_token_calls(oidc_provider) == token_calls + 1, oidc_provider.stderr()

    browser.find_element(By.ID, "approve").click()
    hit = _await_callback(browser, callback_server, f"{shot}-callback")
    assert "error" not in hit, hit
    assert hit.get("code") and hit.get("state") == auth.state and hit.get("iss") == issuer, hit

    token = access_token_from(auth.redeem(hit["code"]))
    claims = _claims(token)
    # Provider accounts live in their own namespace next to local users (`oidc:<sub>`).
    want = f"oidc:{login}"
    assert claims.get("sub") == want, f"token subject {claims.get('sub')!r}, want {want!r}: {claims}"
    assert set(roles) <= set(claims.get("roles", [])), f"roles {claims.get('roles')}, want {roles}: {claims}"
    if not roles:
        assert "ops" not in claims.get("roles", []), claims

    client = McpHttp(sso_daemon.mcp_url, token)
    client.initialize()
    listed = {t["name"] for t in client.call("tools/list")["tools"]}
    assert "hello" in listed, listed
    assert ("ops_only" in listed) == ("ops" in roles), f"{login} (groups {roles}): tools {sorted(listed)}"
    resp, message = client.request("tools/call", {"name": "ops_only", "arguments": {"name": login}})
    if "ops" in roles:
        assert message is not None and "result" in message, f"{resp.status_code} {resp.text[:1000]}"
        assert message["result"]["content"][0]["text"] == f"Hello, {login}!", message
    else:
        refused = resp.status_code == 403 or (
            message is not None and ("error" in message or message.get("result", {}).get("isError") is True)
        )
        assert refused, f"{login} (no ops role) called ops_only: {resp.status_code} {resp.text[:1000]}"

    assert OIDC_CLIENT_SECRET not in sso_daemon.stderr(), "the daemon logged the provider's client secret"


def test_consent_page_escapes_the_provider_user_name(sso_daemon, oidc_provider, callback_server, browser):
    """The name the provider sends (here the login name, which its dev login takes as is) is
    shown as text on our consent page, never run or rendered."""
    login = 'mallory <img src=x onerror="window.__xss=1"><script>window.__xss=2</script> & co'
    auth = _new_auth(sso_daemon, callback_server)
    _open_login_and_click_sso(browser, auth, oidc_provider, "sso-escaped")
    _sign_in_at_provider(browser, login, "sso-escaped")
    _wait_for(browser, (By.ID, "approve"), "our consent page after the provider's sign-in", "sso-escaped")
    _snapshot(browser, "sso-escaped-consent")
    assert browser.execute_script("return window.__xss === undefined"), "the provider's user name ran in the page"
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']"), "the provider's user name was rendered"
    text = _visible_text(browser)
    assert "mallory" in text and "& co" in text, f"the provider's user name is not shown:\n{text}"


# --- refusals in Chromium -------------------------------------------------------------------


def test_replayed_callback_shows_the_error_page(sso_daemon, oidc_provider, callback_server, browser):
    """The provider's callback URL, loaded a second time in the same browser, is refused: the
    state was taken by the first visit."""
    net = Network(browser)
    auth = _new_auth(sso_daemon, callback_server)
    _open_login_and_click_sso(browser, auth, oidc_provider, "sso-replay")
    _sign_in_at_provider(browser, "carol", "sso-replay")
    _wait_for(browser, (By.ID, "approve"), "our consent page after the provider's sign-in", "sso-replay")
    callbacks = net.requested(f"{sso_daemon.base}/authorize/callback?")
    assert len(callbacks) == 1, net.describe()
    callback_url = callbacks[0]
    assert net.status_of(callback_url) == 200, net.describe()

    # The same browser, the same cookies, the same URL.
    browser.get(callback_url)
    _wait_for(browser, (By.ID, "error"), "the error page for a replayed callback", "sso-replay-again")
    _snapshot(browser, "sso-replay-again")
    status = net.status_of(callback_url)
    assert status is not None and 400 <= status < 500, f"replayed callback -> {status}\n{net.describe()}"
    assert not browser.find_elements(By.ID, "approve"), "the replayed callback shows the consent page again"

    # Over plain HTTP with the browser's cookies: the status and that nothing redirects.
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    resp = requests.get(callback_url, headers={"Cookie": cookies}, allow_redirects=False, timeout=15)
    assert _is_error_page(resp), _describe(resp)
    assert "Location" not in resp.headers, _describe(resp)
    time.sleep(0.3)
    assert not callback_server.hits, f"the MCP client's redirect_uri was reached: {callback_server.hits}"


def test_provider_access_denied_shows_the_error_page(sso_daemon, oidc_provider, callback_server, browser):
    """The person cancels at the provider ("[ Cancel ]" on its login page): the provider sends
    error=access_denied with our state back to /authorize/callback."""
    net = Network(browser)
    auth = _new_auth(sso_daemon, callback_server)
    _open_login_and_click_sso(browser, auth, oidc_provider, "sso-cancel")
    cancel = browser.find_element(By.CSS_SELECTOR, "a[href$='/abort']")
    cancel.click()
    _wait_for(browser, (By.ID, "error"), "our error page after access_denied", "sso-cancel")
    _snapshot(browser, "sso-cancel-error")
    callbacks = net.requested(f"{sso_daemon.base}/authorize/callback?")
    assert len(callbacks) == 1, net.describe()
    back = _query(callbacks[0])
    assert back.get("error") == "access_denied" and back.get("state") and "code" not in back, back
    status = net.status_of(callbacks[0])
    assert status is not None and 400 <= status < 500, f"callback with error=access_denied -> {status}\n{net.describe()}"
    assert browser.current_url.startswith(f"{sso_daemon.base}/authorize/callback"), browser.current_url
    assert browser.find_element(By.ID, "error").text.strip(), "the error page says nothing"
    assert not browser.find_elements(By.ID, "approve")
    time.sleep(0.3)
    assert not callback_server.hits, f"the MCP client's redirect_uri was reached: {callback_server.hits}"


# --- the same over plain HTTP (exact statuses and headers) ----------------------------------


def _start_over_http(daemon: Daemon, callback: CallbackServer) -> tuple[FormClient, AuthRequest, requests.Response]:
    """A FormClient (one browser's daemon cookies) on our login page, then `#sso`: the 303."""
    auth = _new_auth(daemon, callback)
    client = FormClient(daemon.base)
    resp = client.get(auth.url)
    assert resp.status_code == 200, _describe(resp)
    check_page_headers(resp)
    page = Page.of(resp)
    form = page.form_with("sso")
    assert urllib.parse.urljoin(resp.url, form.action) == f"{daemon.base}/authorize/upstream", form
    assert any(b.get("id") == "sso" and f"Sign in with {PROVIDER_NAME}" in page.text for b in form.buttons), page.text
    return client, auth, client.submit(page, form, {}, button_id="sso")


def _provider_sign_in(location: str, login: str, stop_at: str) -> str:
    """Goes through the provider's pages like a browser (its own cookie jar); returns the URL it
    finally redirects to under `stop_at`, without following it."""
    session = requests.Session()
    resp = session.get(location, allow_redirects=False, timeout=15)
    for _ in range(12):
        if resp.status_code in (302, 303):
            target = urllib.parse.urljoin(resp.url, resp.headers["Location"])
            if target.startswith(stop_at):
                return target
            resp = session.get(target, allow_redirects=False, timeout=15)
            continue
        assert resp.status_code == 200, _describe(resp)
        page = Page.of(resp)
        assert len(page.forms) == 1, resp.text[:2000]
        form = page.forms[0]
        data = dict(form.fields)
        if data.get("prompt") == "login":
            data |= {"login": login, "password": "any password at all"}
        resp = session.post(urllib.parse.urljoin(resp.url, form.action), data=data, allow_redirects=False, timeout=15)
    raise AssertionError(f"the provider never redirected to {stop_at}")


def test_upstream_redirect_and_consent_over_http(sso_daemon, oidc_provider, callback_server):
    """The hand-over's 303 and its parameters, the callback's consent page and its headers, and
    the approval's redirect, read over plain HTTP."""
    client, auth, resp = _start_over_http(sso_daemon, callback_server)
    assert resp.status_code == 303, _describe(resp)
    location = resp.headers["Location"]
    assert location.startswith(oidc_provider.discovery["authorization_endpoint"] + "?"), location
    ask = _query(location)
    _, _, again = _start_over_http(sso_daemon, callback_server)
    other = _query(again.headers.get("Location", ""))
    for param in ("state", "nonce", "code_challenge"):
        assert ask[param] != other.get(param), f"{param} repeats across sign-ins: {ask[param]!r}"

    callback_url = _provider_sign_in(location, "carol", f"{sso_daemon.base}/authorize/callback")
    consent_resp = client.get(callback_url)
    assert consent_resp.status_code == 200, _describe(consent_resp)
    check_page_headers(consent_resp)
    consent = Page.of(consent_resp)
    form = consent.form_with("approve")
    assert "carol" in consent.text and CLIENT_NAME in consent.text, consent.text
    approved = client.submit(consent, form, {}, button_id="approve")
    query = redirect_query(approved, auth.redirect_uri)
    assert query.get("code") and query.get("state") == auth.state, query
    assert _claims(access_token_from(auth.redeem(query["code"])))["sub"] == "oidc:carol"


@pytest.mark.parametrize("thief", ["no-cookie", "other-browser-cookie"])
def test_callback_in_another_browser_is_refused(sso_daemon, oidc_provider, callback_server, thief):
    """The provider's callback URL (valid state, valid code) opened by another browser, with
    no CSRF cookie or with that browser's own: refused with the error page."""
    _client, _auth, resp = _start_over_http(sso_daemon, callback_server)
    assert resp.status_code == 303, _describe(resp)
    callback_url = _provider_sign_in(resp.headers["Location"], "carol", f"{sso_daemon.base}/authorize/callback")
    other = FormClient(sso_daemon.base)
    if thief == "other-browser-cookie":
        other_auth = _new_auth(sso_daemon, callback_server)
        assert other.get(other_auth.url).status_code == 200
        assert other.cookies, "the login page set no cookie"
    stolen = other.get(callback_url)
    assert _is_error_page(stolen), _describe(stolen)
    assert "Location" not in stolen.headers, _describe(stolen)
    check_page_headers(stolen)
    time.sleep(0.3)
    assert not callback_server.hits, f"the MCP client's redirect_uri was reached: {callback_server.hits}"


@pytest.mark.parametrize(
    "query",
    [
        {"code": "made-up", "state": "never-issued"},
        {"error": "access_denied", "state": "never-issued"},
        {"code": "made-up"},
        {},
    ],
    ids=["unknown-state", "error-unknown-state", "no-state", "nothing"],
)
def test_callback_without_a_pending_sign_in_is_refused(sso_daemon, oidc_provider, callback_server, query):
    client, _auth, _resp = _start_over_http(sso_daemon, callback_server)  # a browser with a CSRF cookie
    resp = client.get(f"{sso_daemon.base}/authorize/callback?{urllib.parse.urlencode(query)}")
    assert _is_error_page(resp), _describe(resp)
    assert "Location" not in resp.headers, _describe(resp)


def test_unreachable_provider_shows_the_error_page(request, tmp_path, callback_server):
    """A daemon whose provider does not answer still starts (discovery happens on first use);
    `#sso` then ends on our error page with a 5xx, not at the provider or the client."""
    d = Daemon(
        "auth-sso-unreachable",
        tmp_path,
        config=AUTH_CONFIG,
        args=[
            "--auth-provider", "local", "--admin-password", ADMIN_PASSWORD, "--data-dir", str(tmp_path / "data"),
            "--oidc-issuer", f"http://127.0.0.1:{free_port()}",
            "--oidc-client-id", OIDC_CLIENT_ID, "--oidc-client-secret", OIDC_CLIENT_SECRET,
            "--oidc-name", PROVIDER_NAME,
        ],
    )  # fmt: skip
    _note_source(request.node, d)
    d.start()
    try:
        _client, _auth, resp = _start_over_http(d, callback_server)
        assert 500 <= resp.status_code < 600, _describe(resp)
        assert re.search(r"""id=["']?error\b""", resp.text), _describe(resp)
        assert "Location" not in resp.headers, _describe(resp)
        check_page_headers(resp)
        assert not callback_server.hits, callback_server.hits
    finally:
        d.stop()
