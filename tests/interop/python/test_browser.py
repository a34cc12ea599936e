"""The authorization server's login and consent pages in a real browser (headless Chromium
through selenium and chromedriver, Debian's packages).

A daemon with `--auth-provider local` (no test mode) and a client registered through DCR with a
loopback redirect_uri served by a recording HTTP server: the browser opens the PKCE S256
/authorize URL, signs in as the bootstrap admin, approves (or denies) on the consent page and
lands on the redirect_uri; the code is then redeemed at /token and the token opens /mcp.

Screenshots (and the HTML the browser saw) go to target/test-artifacts/auth-pages/ and are
listed at the end of the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    AuthRequest,
    CallbackServer,
    FormClient,
    Page,
    access_token_from,
    artifact_path,
    assert_mcp_works,
    assert_unauthorized,
    check_page_headers,
    issuer_of,
    register_client,
    registered_client_id,
)
from daemon import Daemon
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

ADMIN_PASSWORD = "Browser-Test-Passw0rd!"
CLIENT_NAME = "Browser Test Client"
WAIT_S = 15


@pytest.fixture(scope="module")
def local_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    work = tmp_path_factory.mktemp("auth-local")
    d = Daemon(
        "auth-local",
        work,
        args=["--auth-provider", "local", "--admin-password", ADMIN_PASSWORD, "--data-dir", str(work / "data")],
    )
    d.start()
    yield d
    d.stop()


def _binary(env: str, *names: str) -> str:
    for candidate in (os.environ.get(env), *names):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise RuntimeError(
        f"{names[0]} not found (set {env}, or run tests/interop/run.sh, which installs Debian's chromium "
        "and chromium-driver)"
    )


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium per test: no cookies carried from one test to the next."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("CHROMIUM_BIN", "chromium", "chromium-browser")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1024,900",
        "--no-first-run",
        "--password-store=basic",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations land there
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download anything
    driver = webdriver.Chrome(service=Service(_binary("CHROMEDRIVER_BIN", "chromedriver")), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def _snapshot(driver: WebDriver, name: str) -> Path:
    png = artifact_path(f"{name}.png")
    driver.save_screenshot(str(png))
    artifact_path(f"{name}.html").write_text(driver.page_source)
    print(f"screenshot: {png}")
    return png


def _wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_S)


def _visible_text(driver: WebDriver) -> str:
    return " ".join(driver.find_element(By.TAG_NAME, "body").text.split())


def _wait_for(driver: WebDriver, locator: tuple[str, str], what: str, shot: str) -> None:
    """Waits for an element; on time-out, says where the browser is and what the page says."""
    try:
        _wait(driver).until(ec.presence_of_element_located(locator))
    except TimeoutException:
        _snapshot(driver, f"{shot}-missing")
        raise AssertionError(
            f"no {what} ({locator[1]}) within {WAIT_S}s; browser at {driver.current_url}, page says:\n"
            f"{_visible_text(driver)[:1000]}"
        ) from None


def _open_login(driver: WebDriver, auth: AuthRequest, shot: str | None) -> None:
    driver.get(auth.url)
    _wait(driver).until(ec.presence_of_element_located((By.NAME, "password")))
    assert driver.find_element(By.NAME, "password").get_attribute("type") == "password"
    if shot:
        _snapshot(driver, shot)


def _sign_in(driver: WebDriver, username: str, password: str) -> None:
    user = driver.find_element(By.NAME, "username")
    user.clear()
    user.send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    button = driver.find_element(By.ID, "sign-in")
    assert button.get_attribute("type") == "submit", button.get_attribute("outerHTML")
    button.click()


def _to_consent(driver: WebDriver, auth: AuthRequest, shot: str) -> str:
    """Login page -> signed in -> consent page (screenshots `<shot>-login`, `<shot>-consent`);
    returns the consent page's visible text."""
    _open_login(driver, auth, f"{shot}-login")
    _sign_in(driver, "admin", ADMIN_PASSWORD)
    _wait_for(driver, (By.ID, "approve"), "consent page after signing in", shot)
    assert driver.find_elements(By.ID, "deny"), "consent page has no #deny"
    _snapshot(driver, f"{shot}-consent")
    return _visible_text(driver)


def _await_callback(driver: WebDriver, callback: CallbackServer, shot: str) -> dict[str, str]:
    """The query the redirect_uri received after a click; on failure, where the browser is and
    what its console said (a CSP `form-action` that blocks the redirect shows up there)."""
    try:
        hit = callback.wait_for_hit()
        _wait(driver).until(lambda d: d.current_url.startswith(callback.url))
    except Exception as exc:
        _snapshot(driver, f"{shot}-stuck")
        console = "\n".join(f"  {e.get('level')}: {e.get('message')}" for e in driver.get_log("browser"))
        raise AssertionError(
            f"{exc}\nbrowser at {driver.current_url}\npage: {_visible_text(driver)[:500]}\nconsole:\n{console}"
        ) from None
    _snapshot(driver, shot)
    return hit


def _new_auth(daemon: Daemon, callback: CallbackServer, name: str = CLIENT_NAME) -> AuthRequest:
    client_id = registered_client_id(daemon.base, callback.url, name)
    return AuthRequest.new(daemon.base, client_id, callback.url)


def test_login_consent_approve_then_token_opens_mcp(local_daemon, callback_server, browser):
    auth = _new_auth(local_daemon, callback_server)
    issuer = issuer_of(local_daemon.base)
    assert issuer == local_daemon.base, f"issuer {issuer!r} (no --public-url: want http://<Host header>)"

    consent = _to_consent(browser, auth, "01-approve")
    assert CLIENT_NAME in consent, f"consent page does not name the client:\n{consent}"
    assert "127.0.0.1" in consent, f"consent page does not name the redirect host:\n{consent}"
    # The scope list itself, not the page text: "mcp" is also in the redirect and resource URLs.
    listed = [li.text.strip() for li in browser.find_elements(By.CSS_SELECTOR, "#scopes li")]
    assert listed == auth.scope.split(), f"consent page lists scopes {listed}, asked for {auth.scope!r}"
    assert not callback_server.hits, "the redirect_uri was reached before consent"

    browser.find_element(By.ID, "approve").click()
    hit = _await_callback(browser, callback_server, "01-approve-callback")
    assert "error" not in hit, hit
    assert hit.get("code"), hit
    assert hit.get("state") == auth.state, hit
    assert hit.get("iss") == issuer, hit

    token = access_token_from(auth.redeem(hit["code"]))
    assert_unauthorized(local_daemon.mcp_url, None)
    assert_mcp_works(local_daemon.mcp_url, token)


def test_wrong_password_stays_on_login_page(local_daemon, callback_server, browser):
    auth = _new_auth(local_daemon, callback_server)
    _open_login(browser, auth, None)
    _sign_in(browser, "admin", ADMIN_PASSWORD + "-wrong")
    # The first page has no #error, so its presence means the re-rendered page is loaded.
    # (Waiting for the old field to go stale raced with chromedriver's DOM bookkeeping:
    # "Node with given id does not belong to the document".)
    _wait_for(browser, (By.ID, "error"), "error on the login page after a wrong password", "02-wrong-password")
    _wait_for(browser, (By.NAME, "password"), "login page after a wrong password", "02-wrong-password")
    _snapshot(browser, "02-wrong-password")

    text = _visible_text(browser)
    assert re.search(r"invalid|incorrect|wrong|failed|not (valid|recogni[sz]ed)|error", text, re.I), (
        f"no error message on the login page after a wrong password:\n{text}"
    )
    assert browser.find_element(By.NAME, "password").get_attribute("value") == "", "password echoed back"
    with pytest.raises(NoSuchElementException):
        browser.find_element(By.ID, "approve")
    assert browser.current_url.startswith(local_daemon.base), browser.current_url
    assert not callback_server.hits, f"redirected to the client after a wrong password: {callback_server.hits}"

    # The same browser can still sign in with the right password afterwards.
    _sign_in(browser, "admin", ADMIN_PASSWORD)
    _wait_for(browser, (By.ID, "approve"), "consent page after signing in", "02-retry")


def test_deny_redirects_with_access_denied(local_daemon, callback_server, browser):
    auth = _new_auth(local_daemon, callback_server)
    issuer = issuer_of(local_daemon.base)
    _to_consent(browser, auth, "03-deny")
    browser.find_element(By.ID, "deny").click()
    hit = _await_callback(browser, callback_server, "03-deny-callback")
    assert hit.get("error") == "access_denied", hit
    assert "code" not in hit, hit
    assert hit.get("state") == auth.state, hit
    assert hit.get("iss") == issuer, hit


def test_pages_forbid_framing_and_use_host_cookies(local_daemon, callback_server):
    """Headers of the login page, of the consent page and of the redirect, read over plain HTTP."""
    auth = _new_auth(local_daemon, callback_server)
    client = FormClient(local_daemon.base)
    login_resp = client.get(auth.url)
    assert login_resp.status_code == 200, f"GET /authorize -> {login_resp.status_code} {login_resp.text[:1000]}"
    check_page_headers(login_resp)
    login = Page.of(login_resp)
    form = login.form_with("sign-in")
    consent = client.follow_to_page(client.submit(login, form, {"username": "admin", "password": ADMIN_PASSWORD}))
    consent.form_with("approve")
    assert CLIENT_NAME in consent.text, consent.text

    # A refused sign-in answers with the login page again, under the same rules.
    client = FormClient(local_daemon.base)
    login = Page.of(client.get(auth.url))
    refused = client.submit(login, login.form_with("sign-in"), {"username": "admin", "password": "not-it"})
    again = client.follow_to_page(refused, statuses=(200, 400, 401, 403))
    again.form_with("sign-in")


def test_consent_page_escapes_client_name(local_daemon, callback_server, browser):
    """A client name with markup is shown as text, never run or rendered."""
    name = 'Evil <img src=x onerror="window.__xss=1"><script>window.__xss=2</script> & Co'
    resp = register_client(local_daemon.base, callback_server.url, name)
    # The test needs a client whose name carries markup: a refusal at /register is a failure
    # (of the precondition), never a silent skip that would leave the escaping untested.
    assert resp.status_code == 201, f"POST /register of a marked-up client_name -> {resp.status_code} {resp.text}"
    auth = AuthRequest.new(local_daemon.base, resp.json()["client_id"], callback_server.url)
    consent = _to_consent(browser, auth, "04-escaped-client-name")
    assert browser.execute_script("return window.__xss === undefined"), "client_name markup ran in the page"
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']"), "client_name markup was rendered"
    assert "Evil" in consent and "& Co" in consent, f"client_name not shown:\n{consent}"
