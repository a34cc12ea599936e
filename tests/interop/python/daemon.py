"""Start/stop helpers for the mcp-daemon binary under test.

Every daemon gets its own free port, its own stderr log file, and is polled on
GET /health until it answers 200 (10 s budget). It runs in its log directory (a
pytest temporary folder), so nothing it writes relative to its working directory
(such as the default `./data`) lands in the checkout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

# Environment knobs the daemon reads; scrubbed so the caller's shell cannot
# change what the tests start.
_DAEMON_ENV_KNOBS = (
    "PORT",
    "HOST",
    "MCP_CONFIG_FILE",
    "MCP_TRANSPORT",
    "SESSION_TTL_SECS",
    "SESSION_REAP_INTERVAL_SECS",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "ALLOWED_HOSTS",
    "ALLOWED_ORIGINS",
    "SSE_KEEPALIVE_SECS",
    "SSE_RETRY_MS",
    "REPLAY_BUFFER_EVENTS",
    "REPLAY_BUFFER_STREAMS",
    "CLIENT_REQUEST_TIMEOUT_SECS",
    "PAGE_SIZE",
    "LOG_FORMAT",
    # Authentication (tests that want it pass flags; the shell must not turn it on for others).
    "AUTH_PROVIDER",
    "PUBLIC_URL",
    "DATA_DIR",
    "JWT_SECRET_KEY",
    "JWT_PREVIOUS_KEYS",
    "ACCESS_TOKEN_EXP",
    "LOCAL_USER_FILE",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "ADMIN_STATIC_TOKEN",
    "OAUTH_TEST_USER",
    "CIMD_ALLOW_PRIVATE",
    "OAUTH_CLIENTS_FILE",
    "COGNITO_USER_POOL_ID",
    "COGNITO_REGION",
    "COGNITO_APP_CLIENT_ID",
    "COGNITO_APP_SECRET",
    "COGNITO_JWKS_URL",
    "COGNITO_ISSUER",
    "COGNITO_ENDPOINT",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_NAME",
    "OIDC_SCOPES",
    "AWS_REGION",
    "REGION_NAME",
)


def daemon_bin() -> Path:
    raw = os.environ.get("MCP_DAEMON_BIN", "target/release/mcp-daemon")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def integration_config() -> Path:
    return REPO_ROOT / "tests" / "fixtures" / "integration.json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    for knob in _DAEMON_ENV_KNOBS:
        env.pop(knob, None)
    env.setdefault("RUST_BACKTRACE", "1")
    # Every test client registers from 127.0.0.1, many within a minute against one daemon; the
    # per-source registration rate has its own test (tests/it/auth_attacks.rs).
    env["OAUTH_REGISTRATIONS_PER_MINUTE"] = "1000"
    return env


class Daemon:
    """One mcp-daemon process in HTTP mode.

    `args` are appended to the command line (e.g. `["--auth-provider", "local", ...]`) and
    `env` is laid over the scrubbed environment.
    """

    def __init__(
        self,
        name: str,
        log_dir: Path,
        config: Path | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.log_dir = log_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def sse_url(self) -> str:
        return f"{self.base}/sse"

    def start(self) -> None:
        binary = daemon_bin()
        if not binary.is_file() or not os.access(binary, os.X_OK):
            raise RuntimeError(f"mcp-daemon binary not found or not executable: {binary} (set MCP_DAEMON_BIN)")
        args = [str(binary), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.config is not None:
            if not self.config.is_file():
                raise RuntimeError(f"daemon config file missing: {self.config}")
            args += ["--config", str(self.config)]
        args += self.extra_args
        env = daemon_env()
        env.update(self.extra_env)
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd=self.log_dir,
            )
        finally:
            log.close()
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 10.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last_error: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon {self.name} exited with {self.proc.returncode} before becoming healthy\n"
                    f"--- stderr ---\n{self.stderr()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"status {resp.status}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"daemon {self.name} not healthy on {self.base}/health within {timeout}s (last: {last_error})\n"
            f"--- stderr ---\n{self.stderr()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
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
            return "<no stderr log>"
        return text if len(text) <= limit else "...<truncated>...\n" + text[-limit:]
