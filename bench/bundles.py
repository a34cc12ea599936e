"""First calls of Python functions whose bundles come from S3: cold (the bundle never seen:
ETag check, download, verify, unpack, a new worker, the first import), cached (the same
versions after a daemon restart: a new worker and the first import, the bundle already on
disk) and warm (a later call in a warm worker). Two kinds of bundle: `small` (one module) and
`vendored` (a module that imports `requests` with its dependencies vendored at the bundle's
root, the AWS Lambda layout the Python daemon's users ship).

S3 is moto's server on loopback (no network latency: against AWS add a round trip or two for
the ETag check and the download). The daemon and its workers are pinned to SERVER_CPU, moto
and this client to CLIENT_CPU. Run it through bench/bundles.sh, which builds and installs what
it needs. Environment: BUNDLES (10 of each kind), WARM_CALLS (20 per bundle), SERVER_CPU (1),
CLIENT_CPU (0), DAEMON (the binary; default target/release/mcp-daemon). Output: a markdown table on stdout and in bench/results/<date>-bundles.md, raw
figures next to it as JSON.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
DAEMON = Path(os.environ.get("DAEMON", ROOT / "target" / "release" / "mcp-daemon"))
MOTO = Path(sys.executable).parent / "moto_server"
BUNDLES = int(os.environ.get("BUNDLES", "10"))
WARM_CALLS = int(os.environ.get("WARM_CALLS", "20"))
SERVER_CPU = os.environ.get("SERVER_CPU", "1")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "0")
BUCKET = "bench-bundles"
VENDORED = ("requests", "urllib3", "idna", "certifi", "charset_normalizer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited at start ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{proc.args[0]} did not listen on {port}")


def module_source(kind: str, i: int) -> str:
    head = "import requests\n" if kind == "vendored" else ""
    return (
        f"{head}\nclass Bench{i}:\n"
        "    def __init__(self, logger, **setting):\n"
        "        pass\n\n"
        "    def add(self, a, b):\n"
        "        return a + b\n"
    )


def bundle(kind: str, i: int) -> tuple[bytes, int]:
    """The zip of bundle `i` of `kind`, and its entry count. Vendored sources only: no
    `__pycache__`, as `pip install -t` followed by a careful `zip -x '*.pyc'` leaves them."""
    module = f"{kind}_{i}"
    buf = io.BytesIO()
    entries = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{module}/__init__.py", f"from .tools import Bench{i}\n")
        z.writestr(f"{module}/tools.py", module_source(kind, i))
        entries += 2
        if kind == "vendored":
            site = Path(sysconfig.get_paths()["purelib"])
            for package in VENDORED:
                for path in sorted((site / package).rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts:
                        z.write(path, path.relative_to(site).as_posix())
                        entries += 1
    return buf.getvalue(), entries


def config(kinds: list[str]) -> dict:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }
    tools, links, modules = [], [], []
    for kind in kinds:
        for i in range(BUNDLES):
            name = f"{kind}_{i}"
            tools.append({"name": name, "description": f"add from bundle {name}", "inputSchema": schema})
            links.append({"type": "tool", "name": name, "module_name": name,
                          "class_name": f"Bench{i}", "function_name": "add", "return_type": "text"})
            modules.append({"package_name": name, "module_name": name, "class_name": f"Bench{i}",
                            "setting": {}, "source": "s3"})
    return {"tools": tools, "resources": [], "prompts": [], "module_links": links, "modules": modules}


class Client:
    """Plain streamable HTTP on one keep-alive connection (JSON answers)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.session = ""
        self.next_id = 0
        reply = self.post({"method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench-bundles", "version": "1"}}})
        assert reply["result"]["protocolVersion"] == "2025-11-25", reply
        self.post({"method": "notifications/initialized"}, notification=True)

    def post(self, message: dict, notification: bool = False) -> dict:
        message = {"jsonrpc": "2.0", **message}
        if not notification:
            self.next_id += 1
            message["id"] = self.next_id
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if self.session:
            headers["mcp-session-id"] = self.session
        self.conn.request("POST", "/mcp", json.dumps(message), headers)
        resp = self.conn.getresponse()
        body = resp.read()
        self.session = resp.getheader("mcp-session-id") or self.session
        if notification:
            assert resp.status == 202, (resp.status, body)
            return {}
        assert resp.status == 200, (resp.status, body)
        return json.loads(body)

    def add(self, tool: str) -> float:
        """One call of `tool`; its wall time in ms."""
        start = time.perf_counter()
        reply = self.post({"method": "tools/call", "params": {"name": tool, "arguments": {"a": 2, "b": 3}}})
        ms = (time.perf_counter() - start) * 1000
        result = reply.get("result", {})
        if result.get("isError") or result.get("content", [{}])[0].get("text") != "5":
            raise SystemExit(f"{tool} answered {reply}")
        return ms


def start_daemon(work: Path, config_file: Path, moto_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "FUNCT_BUCKET_NAME": BUCKET,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{moto_port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "FUNCT_ZIP_PATH": str(work / "zips"),
        "FUNCT_EXTRACT_PATH": str(work / "functs"),
        "WORKER_SCRATCH_DIR": str(work / "scratch"),
        "DATA_DIR": str(work / "data"),
        # The base interpreter (not this venv's, not a pyenv shim): the bundles bring their own.
        "PYTHON_BIN": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "LOG_LEVEL": "warn",
    }
    log = open(work / "daemon.log", "ab")
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, str(DAEMON), "--port", str(port), "--config", str(config_file)],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )
    wait_port(port, proc)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def summary(values: list[float]) -> dict:
    return {"p50": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> None:
    if not DAEMON.is_file() or not MOTO.is_file():
        raise SystemExit("run through bash bench/bundles.sh (it builds the daemon and installs moto)")
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    kinds = ["small", "vendored"]
    work = Path(tempfile.mkdtemp(prefix="mcp-bench-bundles."))
    moto_port = free_port()
    moto = subprocess.Popen(["taskset", "-c", CLIENT_CPU, str(MOTO), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = None
    try:
        wait_port(moto_port, moto)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        s3.create_bucket(Bucket=BUCKET)
        sizes = {}
        for kind in kinds:
            for i in range(BUNDLES):
                data, entries = bundle(kind, i)
                s3.put_object(Bucket=BUCKET, Key=f"{kind}_{i}.zip", Body=data)
                sizes[kind] = {"bytes": len(data), "entries": entries}
        config_file = work / "bench-bundles.json"
        config_file.write_text(json.dumps(config(kinds)))

        figures: dict[str, dict[str, list[float]]] = {k: {"cold": [], "cached": [], "warm": []} for k in kinds}
        daemon, port = start_daemon(work, config_file, moto_port)
        client = Client(port)
        client.add("small_0")  # the interpreter described once, off the record
        for kind in kinds:
            for i in range(1 if kind == "small" else 0, BUNDLES):
                tool = f"{kind}_{i}"
                figures[kind]["cold"].append(client.add(tool))
                warm = [client.add(tool) for _ in range(WARM_CALLS)]
                figures[kind]["warm"].append(statistics.median(warm))
        stop(daemon)

        # The same versions after a restart: on disk already, a new worker each.
        daemon, port = start_daemon(work, config_file, moto_port)
        client = Client(port)
        client.add("small_0")
        for kind in kinds:
            for i in range(1 if kind == "small" else 0, BUNDLES):
                figures[kind]["cached"].append(client.add(f"{kind}_{i}"))
        stop(daemon)
        daemon = None
    finally:
        if daemon is not None:
            daemon.kill()
        moto.kill()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)

    stamp = time.strftime("%Y-%m-%d-%H%M%S", time.gmtime())
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    raw = {"figures": figures, "sizes": sizes, "bundles": BUNDLES, "warm_calls": WARM_CALLS,
           "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU}
    (out / f"{stamp}-bundles.json").write_text(json.dumps(raw, indent=2))
    lines = [
        f"First calls of bundles from S3 (moto on loopback), {stamp}, daemon on CPU {SERVER_CPU}",
        "",
        "| bundle | zip | cold first call p50 (min-max) | cached, new worker p50 | warm call p50 | cold / warm |",
        "|---|---|---|---|---|---|",
    ]
    for kind in kinds:
        f = {k: summary(v) for k, v in figures[kind].items()}
        z = sizes[kind]
        lines.append(
            f"| {kind} | {z['bytes'] / 1024:,.0f} KiB, {z['entries']} entries "
            f"| {f['cold']['p50']:.1f} ms ({f['cold']['min']:.1f}-{f['cold']['max']:.1f}) "
            f"| {f['cached']['p50']:.1f} ms ({f['cached']['min']:.1f}-{f['cached']['max']:.1f}) "
            f"| {f['warm']['p50']:.3f} ms | {f['cold']['p50'] / f['warm']['p50']:,.0f}x |"
        )
    text = "\n".join(lines) + "\n"
    (out / f"{stamp}-bundles.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
