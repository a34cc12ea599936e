# The Python side of mcp-daemon's worker processes (stdlib only, so it never clashes with a
# bundle's own dependencies). The daemon starts it as `python -I -B -c <this file> <config>`
# behind its sandbox launcher and speaks length-prefixed JSON frames (4-byte big-endian length,
# then UTF-8 JSON) on the worker's stdin/stdout. Those two descriptors are moved away at once:
# fd 0 becomes /dev/null and fd 1 points at the log pipe (fd 2), so `print` and C-level writes
# land in the daemon's log instead of corrupting the frames.
#
# asyncio and inspect are imported on first need: together they add ~25 ms and several MB to
# every worker, and most functions are plain synchronous ones.
#
# One call at a time runs on the main thread, called the way the original Python daemon calls
# it: `cls(logger, **setting)` (a fresh instance per call), tools `fn(**arguments)`, resources
# `fn(uri)`, prompts `fn(name, **arguments)`, coroutines run with asyncio.

import base64
import datetime
import decimal
import importlib
import json
import logging
import os
import re
import resource
import select
import signal
import struct
import sys
import threading
import types

_HEADER = struct.Struct(">I")
_MARK_LOG = "\x1e"  # a log-pipe line from a logger: \x1e<level letter><message>
_MARK_FN = "\x1d"  # a log-pipe line naming the function whose output follows


class InputRequired(BaseException):
    """Stateless era: the client has to answer first. A BaseException so that the function's
    own `except Exception` does not swallow it: the call must unwind and end with an
    input_required result, and the client retries it with the answer."""


class ClientError(Exception):
    """A request to the client failed (not supported, rejected, timed out)."""


class _Cancelled(BaseException):
    pass


# ---- frames -------------------------------------------------------------------------------


class _Pipe:
    """Frames in and out. Several threads may wait for frames (the main loop for calls, a
    function's context for the client's answers); one of them reads at a time and keeps frames
    meant for others until they take them.

    Cancellation raises KeyboardInterrupt from a signal handler, which must never land between
    reading bytes and keeping them, or in the middle of a frame being written: the main thread
    marks those stretches critical, and a cancellation that arrives there is raised when the
    stretch ends (or while waiting for data, where nothing has been consumed yet)."""

    def __init__(self, fd_in, fd_out, max_frame):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.max_frame = max_frame
        self.buf = bytearray()
        self.cv = threading.Condition(threading.Lock())
        self.kept = []
        self.reading = False
        self.wlock = threading.Lock()

    def send(self, obj):
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_plain).encode()
        if len(data) > self.max_frame:
            raise _TooLarge(len(data))
        frame = _HEADER.pack(len(data)) + data
        _enter()
        try:
            with self.wlock:
                view = memoryview(frame)
                while view:
                    n = os.write(self.fd_out, view)
                    view = view[n:]
        finally:
            _leave()

    def _frame(self):
        # Reads into a buffer kept across calls, so an interrupted wait never loses bytes.
        while True:
            if len(self.buf) >= 4:
                (size,) = _HEADER.unpack_from(self.buf)
                if len(self.buf) >= 4 + size:
                    body = bytes(self.buf[4 : 4 + size])
                    del self.buf[: 4 + size]
                    return json.loads(body)
            if _state.in_function:
                _wait_readable(self.fd_in)
            chunk = os.read(self.fd_in, 1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv(self, want):
        _enter()
        try:
            with self.cv:
                while True:
                    for i, f in enumerate(self.kept):
                        if want(f):
                            return self.kept.pop(i)
                    if not self.reading:
                        self.reading = True
                        break
                    _interruptible(self.cv.wait)
            try:
                while True:
                    f = self._frame()
                    if want(f):
                        return f
                    with self.cv:
                        self.kept.append(f)
                        self.cv.notify_all()
            finally:
                with self.cv:
                    self.reading = False
                    self.cv.notify_all()
        finally:
            _leave()


_MAIN = threading.get_ident()


def _enter():
    if threading.get_ident() == _MAIN:
        _state.critical += 1


def _leave():
    if threading.get_ident() != _MAIN:
        return
    _state.critical -= 1
    if _state.critical == 0 and _state.pending and _state.in_function:
        _state.pending = False
        raise KeyboardInterrupt("cancelled")


def _interruptible(wait, *args):
    """Runs a blocking wait that has consumed nothing, where a cancellation may land."""
    if threading.get_ident() != _MAIN:
        return wait(*args)
    saved = _state.critical
    _state.critical = 0
    try:
        if _state.pending and _state.in_function:
            _state.pending = False
            raise KeyboardInterrupt("cancelled")
        return wait(*args)
    finally:
        _state.critical = saved


def _wait_readable(fd):
    _interruptible(select.select, [fd], [], [])


class _TooLarge(Exception):
    def __init__(self, size):
        super().__init__(size)
        self.size = size


def _plain(o):
    """JSON for values json does not know (the Python daemon serialises with orjson)."""
    if isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    if isinstance(o, datetime.datetime):
        s = o.isoformat()
        return s[:-6] + "Z" if s.endswith("+00:00") else s
    if isinstance(o, (datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, (bytes, bytearray)):
        return base64.b64encode(bytes(o)).decode()
    return str(o)


# ---- logging ------------------------------------------------------------------------------

_LEVEL_LETTER = {
    logging.DEBUG: "D",
    logging.INFO: "I",
    logging.WARNING: "W",
    logging.ERROR: "E",
    logging.CRITICAL: "C",
}


class _LogPipe(logging.Handler):
    """Log records as lines on the log pipe, each marked with its level; the daemon logs them
    under the function's name (lines of one record are marked separately, so a traceback
    keeps its level)."""

    def emit(self, record):
        try:
            letter = _LEVEL_LETTER.get(record.levelno)
            if letter is None:
                letter = "E" if record.levelno > logging.ERROR else "W" if record.levelno > logging.INFO else "D"
            text = self.format(record)
            out = "".join(_MARK_LOG + letter + line + "\n" for line in text.splitlines() or [""])
            _write_log(out)
        except Exception:
            pass


def _write_log(text):
    data = text.encode("utf-8", "replace")
    view = memoryview(data)
    while view:
        n = os.write(2, view)
        view = view[n:]


# ---- the context object -------------------------------------------------------------------


class Context:
    """Optional: a function that declares a parameter annotated with `Context`
    (`from mcp_daemon import Context`) gets one. It reports progress, logs to the client at
    MCP levels, asks the client (elicitation, sampling, any request) and tells whether the
    call was cancelled. Awaitable variants (`a...`) are for `async def` functions."""

    def __init__(self, call):
        self._call = call

    @property
    def entry(self):
        """The tool or prompt name, or the resource's name, that was called."""
        return self._call.entry

    @property
    def cancelled(self):
        """True once the client cancelled the call (the function also gets a
        KeyboardInterrupt, or a CancelledError in a coroutine)."""
        return self._call.cancelled

    def report_progress(self, progress, total=None, message=None):
        msg = {"t": "progress", "id": self._call.id, "progress": float(progress)}
        if total is not None:
            msg["total"] = float(total)
        if message is not None:
            msg["message"] = str(message)
        _state.pipe.send(msg)

    def log(self, level, data, logger=None):
        msg = {"t": "mcplog", "id": self._call.id, "level": str(level), "data": data}
        if logger is not None:
            msg["logger"] = str(logger)
        _state.pipe.send(msg)

    def request(self, method, params=None, key=None):
        """Sends `method` to the client and returns its result (a dict). Stateless era: the
        first round ends the call with an input_required result (InputRequired unwinds the
        function); the client's retry carries the answer under `key` (automatic keys count
        the requests in order, which is stable because every round re-runs the function)."""
        return self._call.ask(method, params or {}, key)

    def elicit(self, message, schema, key=None):
        """`elicitation/create`: returns the client's result, e.g.
        {"action": "accept", "content": {...}}."""
        return self.request("elicitation/create", {"message": message, "requestedSchema": schema}, key)

    def sample(self, messages, max_tokens=1000, system_prompt=None, key=None, **extra):
        """`sampling/createMessage`; `messages` may be a str (one user message)."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": {"type": "text", "text": messages}}]
        params = {"messages": messages, "maxTokens": int(max_tokens)}
        if system_prompt is not None:
            params["systemPrompt"] = system_prompt
        params.update(extra)
        return self.request("sampling/createMessage", params, key)

    async def areport_progress(self, progress, total=None, message=None):
        self.report_progress(progress, total, message)

    async def alog(self, level, data, logger=None):
        self.log(level, data, logger)

    async def arequest(self, method, params=None, key=None):
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.request, method, params, key)

    async def aelicit(self, message, schema, key=None):
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.elicit, message, schema, key)

    async def asample(self, messages, max_tokens=1000, system_prompt=None, key=None, **extra):
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: self.sample(messages, max_tokens, system_prompt, key, **extra)
        )


def _level_method(level):
    def method(self, data, logger=None):
        self.log(level, data, logger)

    method.__name__ = level
    method.__doc__ = "Logs `data` to the client at MCP level %s." % level
    return method


for _level in ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"):
    setattr(Context, _level, _level_method(_level))


# ---- one call -----------------------------------------------------------------------------


class _Call:
    def __init__(self, msg, fdef):
        self.id = msg["id"]
        self.entry = msg.get("entry") or fdef.entry
        self.cancelled = False
        self.done = False
        self.next_rid = 0
        self.client_failure = None  # the rid whose failure unwinds the function

    def ask(self, method, params, key):
        if self.done:
            raise ClientError("the call has already ended")
        self.next_rid += 1
        rid = "%d.%d" % (self.id, self.next_rid)
        msg = {"t": "ask", "id": self.id, "rid": rid, "method": method, "params": params}
        if key is not None:
            msg["key"] = str(key)
        _state.pipe.send(msg)
        answer = _state.pipe.recv(lambda f: f.get("t") == "answer" and f.get("rid") == rid)
        if "error" in answer:
            err = answer["error"]
            self.client_failure = rid
            if err.get("kind") == "input_required":
                raise InputRequired(rid)
            raise ClientError(err.get("message", "the client request failed"))
        return answer.get("result")


class _Def:
    """A function as the daemon bound it, resolved (imported) on first use and cached."""

    def __init__(self, d):
        self.kind = d["kind"]
        self.entry = d["entry"]
        self.module = d["module"]
        self.cls = d.get("class")
        self.function = d["function"]
        self.setting = d.get("setting") or {}
        self.return_type = d.get("return_type") or "text"
        self.is_async = bool(d.get("is_async"))
        self.target = None
        self.ctx_param = None
        self.takes_logger = False
        self.norm_setting = None

    def resolve(self):
        if self.target is not None:
            return self.target
        try:
            mod = importlib.import_module(self.module)
        except BaseException as e:
            raise _Failure("cannot import module '%s': %s: %s" % (self.module, type(e).__name__, e))
        leaf = self.module.rsplit(".", 1)[-1]
        name = self.cls or self.function
        # The Python daemon reads `getattr(__import__(m), m)` for installed packages (the
        # submodule named like the package) and the package itself for bundles: accept both.
        holder = _holder(mod, leaf, name)
        if holder is None and self.cls is not None:
            # The Python daemon's README names `class_name: MCPFunctionDemo` for a demo module
            # whose functions are module-level: what it meant works, the function is called.
            holder = _holder(mod, leaf, self.function)
            if holder is not None:
                _write_log("module '%s' has no class '%s'; calling its module-level function '%s'"
                           % (self.module, self.cls, self.function) + "\n")
                self.cls = None
                name = self.function
        if holder is None:
            what = "class" if self.cls else "function"
            raise _Failure("module '%s' has no %s '%s'" % (self.module, what, name))
        self.target = getattr(holder, name)
        if self.cls is None:
            self.ctx_param = _context_param(self.target)
            self.takes_logger = _takes_logger(self.target)
        else:
            method = getattr(self.target, self.function, None)
            if method is None:
                raise _Failure("class '%s' has no method '%s'" % (self.cls, self.function))
            self.ctx_param = _context_param(method)
        self.norm_setting = _normalize(self.setting)
        return self.target


class _Failure(Exception):
    pass


def _holder(mod, leaf, name):
    """Where `name` lives: the package, or its submodule named like it (the Python daemon reads
    `getattr(__import__(m), m)` for installed packages and the package itself for bundles)."""
    if hasattr(mod, name):
        return mod
    sub = getattr(mod, leaf, None)
    if isinstance(sub, types.ModuleType) and hasattr(sub, name):
        return sub
    return None


def _takes_logger(fn):
    """Module-level functions written like the Python daemon's demo module take the logger and
    the setting first: `hello(logger, setting, **arguments)`."""
    try:
        import inspect

        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[0].name == "logger" and params[1].name == "setting"


def _context_param(fn):
    """The name of the parameter annotated with `Context`, if any (string annotations from
    `from __future__ import annotations` count too)."""
    try:
        annotations = getattr(fn, "__annotations__", None)
        if annotations is None and callable(fn):
            annotations = getattr(type(fn).__call__, "__annotations__", None)
    except Exception:
        return None
    for name, a in (annotations or {}).items():
        if name == "return":
            continue
        if a is Context or (isinstance(a, str) and a.rsplit(".", 1)[-1] == "Context"):
            return name
    return None


_CO_COROUTINE = 0x80


def _is_coroutine_function(fn):
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is not None:
        return bool(code.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(fn)


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")


def _normalize(v):
    """What the Python daemon's `Serializer.json_normalize` does to a setting before
    `cls(logger, **setting)`: numbers become Decimal, ISO date-times become datetime."""
    if isinstance(v, dict):
        return {k: _normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return decimal.Decimal(str(v))
    if isinstance(v, str) and _ISO.match(v):
        try:
            return datetime.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
        except ValueError:
            return v
    return v


class _State:
    def __init__(self):
        self.pipe = None
        self.call = None
        self.in_function = False
        self.loop = None
        self.task = None
        self.defs = {}
        self.last_entry = None
        self.cpu_per_call = None
        self.cpu_soft = None
        self.cpu_seen = 0.0
        self.partition = ("default", None)
        self.critical = 0
        self.pending = False


_state = _State()


def _on_cancel(signum, frame):
    # The daemon signals (SIGUSR1) when the client cancels: a real signal interrupts blocking
    # system calls (sleep, socket reads), which `_thread.interrupt_main` would not.
    call = _state.call
    if call is None:
        return
    call.cancelled = True
    if _state.task is not None and _state.loop is not None:
        _state.loop.call_soon_threadsafe(_state.task.cancel)
        return
    if _state.in_function and _state.critical == 0:
        raise KeyboardInterrupt("cancelled")
    _state.pending = True


def _arm_cpu():
    # RLIMIT_CPU counts the whole process's CPU time: before each call the soft limit moves to
    # "used so far + the per-call allowance" (the hard limit, set by the launcher, caps the
    # worker's lifetime and cannot be raised from here).
    if not _state.cpu_per_call:
        return
    # The CPU used as of the end of the previous call (what ran in between is negligible).
    used = _state.cpu_seen
    soft = int(used) + 1 + _state.cpu_per_call
    if soft != _state.cpu_soft:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
            _state.cpu_soft = soft
        except (ValueError, OSError):
            pass


def _cpu_used():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    _state.cpu_seen = ru.ru_utime + ru.ru_stime
    return _state.cpu_seen


def _children_left():
    """Whether processes the function started are still running (the launcher made this
    worker their subreaper, so orphaned grandchildren count too). Reaps finished ones."""
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return True
    except ChildProcessError:
        return False


def _run(fdef, call, msg):
    target = fdef.resolve()
    args = msg.get("args") or {}
    kwargs = {}
    if fdef.kind == "tool":
        pos, kwargs = (), dict(args)
    elif fdef.kind == "resource":
        pos = (msg.get("uri"),)
    else:
        pos, kwargs = (msg.get("name") or call.entry,), dict(args)
    if fdef.ctx_param:
        kwargs[fdef.ctx_param] = Context(call)
    if fdef.cls is None:
        fn = target
        if fdef.takes_logger:
            pos = (_logger_for(fdef), fdef.norm_setting) + tuple(pos)
    else:
        obj = target(_logger_for(fdef), **fdef.norm_setting)
        # Classes that declare both get the partition key's parts (the Python daemon does
        # `obj.endpoint_id, obj.part_id = partition_key.split("#")`).
        if hasattr(obj, "endpoint_id") and hasattr(obj, "part_id"):
            obj.endpoint_id, obj.part_id = _state.partition
        fn = getattr(obj, fdef.function)
    _state.in_function = True
    try:
        if fdef.is_async or _is_coroutine_function(fn):
            return _run_async(fn, pos, kwargs)
        result = fn(*pos, **kwargs)
        if hasattr(result, "__await__"):
            return _run_async(_identity, (result,), {})
        return result
    finally:
        _state.in_function = False


def _identity(awaitable):
    return awaitable


def _run_async(fn, pos, kwargs):
    import asyncio

    loop = asyncio.new_event_loop()
    _state.loop = loop
    try:
        asyncio.set_event_loop(loop)
        task = loop.create_task(_await(fn, pos, kwargs))
        _state.task = task
        if _state.call is not None and _state.call.cancelled:
            task.cancel()
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            raise _Cancelled()
    finally:
        _state.task = None
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            _state.loop = None


async def _await(fn, pos, kwargs):
    return await fn(*pos, **kwargs)


_loggers = {}


def _logger_for(fdef):
    lg = _loggers.get(fdef.module)
    if lg is None:
        lg = logging.getLogger(fdef.module)
        lg.setLevel(logging.DEBUG)
        _loggers[fdef.module] = lg
    return lg


# ---- result mapping (the Python daemon's rules, section 1.5 of the compatibility notes) ---


def _dumps(v):
    return json.dumps(v, indent=2, ensure_ascii=False, default=_plain)


def _passthrough(kind, r):
    if not isinstance(r, dict):
        return None
    keys = {"tool": ("content", "structuredContent"), "resource": ("contents",), "prompt": ("messages",)}[kind]
    if not any(k in r for k in keys):
        return None
    r = json.loads(json.dumps(r, default=_plain))
    if kind == "tool" and "content" not in r:
        r["content"] = [{"type": "text", "text": json.dumps(r["structuredContent"], ensure_ascii=False)}]
    return {"k": "result", "v": r}


def _shape(fdef, call, msg, r):
    passed = _passthrough(fdef.kind, r)
    if passed is not None:
        return passed
    if fdef.kind == "resource":
        return {"k": "content", "v": [{"uri": msg.get("uri"), "mimeType": "text/plain", "text": str(r)}]}
    if fdef.kind == "prompt":
        return {"k": "text", "v": r if isinstance(r, str) else str(r)}
    rt = fdef.return_type
    if rt == "text":
        return {"k": "text", "v": _dumps(r) if isinstance(r, dict) else str(r)}
    if rt == "image":
        if isinstance(r, dict):
            item = {"type": "image", "data": r.get("data", ""), "mimeType": r.get("mimeType", "image/png")}
        elif isinstance(r, str):
            item = {"type": "image", "data": r, "mimeType": "image/png"}
        else:
            raise _Failure("return_type image needs a dict or a str, got %s" % type(r).__name__)
        return {"k": "content", "v": [item]}
    if rt == "embedded_resource":
        d = r.get("resource", r) if isinstance(r, dict) else r
        uri = None
        if isinstance(d, dict) and "text" in d:
            text = str(d["text"])
            mime = d.get("mimeType")
            if not mime:
                try:
                    json.loads(text)
                    mime = "application/json"
                except ValueError:
                    mime = "text/plain"
            uri = d.get("uri")
        elif isinstance(d, dict):
            text, mime, uri = _dumps(d), d.get("mimeType", "application/json"), d.get("uri")
        else:
            text, mime = str(d), "text/plain"
        # The original builds the resource without a uri, which MCP requires: the result's own
        # `uri` when it has one, else one naming the function call.
        res = {"uri": str(uri) if uri else "mcp://function-call/" + call.entry, "mimeType": mime, "text": text}
        return {"k": "content", "v": [{"type": "resource", "resource": res}]}
    raise _Failure("Invalid return type %s" % rt)


# ---- the loop -----------------------------------------------------------------------------


def _handle(msg):
    fid = msg["f"]
    if "def" in msg:
        _state.defs[fid] = _Def(msg["def"])
    fdef = _state.defs.get(fid)
    if fdef is None:
        _state.pipe.send({"t": "err", "id": msg["id"], "kind": "protocol", "msg": "unknown function %s" % fid})
        return
    call = _Call(msg, fdef)
    if "partition" in msg:
        p = msg["partition"]
        _state.partition = (p[0], p[1])
    if call.entry != _state.last_entry:
        _flush_std()
        _write_log(_MARK_FN + call.entry + "\n")
        _state.last_entry = call.entry
    _arm_cpu()
    _state.pending = False
    _state.call = call
    reply = None
    try:
        result = _run(fdef, call, msg)
        reply = {"t": "ok", "id": call.id, "out": _shape(fdef, call, msg, result)}
    except InputRequired:
        reply = {"t": "err", "id": call.id, "kind": "client", "rid": call.client_failure}
    except ClientError as e:
        if call.client_failure is not None:
            reply = {"t": "err", "id": call.id, "kind": "client", "rid": call.client_failure, "msg": str(e)}
        else:
            reply = _error(call, e)
    except (KeyboardInterrupt, _Cancelled) as e:
        if call.cancelled:
            reply = {"t": "err", "id": call.id, "kind": "cancelled", "msg": "cancelled"}
        else:
            reply = _error(call, e)
    except MemoryError:
        reply = {"t": "err", "id": call.id, "kind": "memory", "msg": "ran out of memory"}
    except _Failure as e:
        reply = {"t": "err", "id": call.id, "kind": "failed", "msg": str(e)}
    except _TooLarge as e:
        reply = _too_large(call, e)
    except BaseException as e:
        reply = _error(call, e)
    finally:
        call.done = True
        _state.call = None
    _flush_std()
    reply["cpu"] = _cpu_used()
    if _children_left():
        reply["kids"] = True
    try:
        _state.pipe.send(reply)
    except _TooLarge as e:
        _state.pipe.send(_too_large(call, e))


def _too_large(call, e):
    return {"t": "err", "id": call.id, "kind": "too_large", "msg": "the result is %d bytes, over the limit of %d" % (e.size, _state.pipe.max_frame)}


def _error(call, e):
    # The message goes to the client; the traceback only to the daemon's log.
    logging.getLogger("mcp_daemon.worker").error("%s raised %s", call.entry, type(e).__name__, exc_info=e)
    text = str(e) or type(e).__name__
    return {"t": "err", "id": call.id, "kind": "exception", "msg": text}


def _flush_std():
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


def main():
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except Exception:
        pass
    for p in reversed(cfg.get("paths") or []):
        if p not in sys.path:
            sys.path.insert(0, p)
    _state.pipe = _Pipe(fd_in, fd_out, int(cfg.get("max_frame") or (16 << 20)))
    _state.cpu_per_call = cfg.get("cpu_per_call")
    handler = _LogPipe()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    mod = types.ModuleType("mcp_daemon")
    mod.Context = Context
    mod.InputRequired = InputRequired
    mod.ClientError = ClientError
    sys.modules["mcp_daemon"] = mod
    signal.signal(signal.SIGUSR1, _on_cancel)
    _cpu_used()
    _state.pipe.send({"t": "ready", "pid": os.getpid(), "python": sys.version.split()[0]})
    while True:
        try:
            msg = _state.pipe.recv(lambda f: f.get("t") == "call")
        except EOFError:
            return
        except KeyboardInterrupt:
            continue
        # Answers still kept belong to calls that have ended.
        _state.pipe.kept = [f for f in _state.pipe.kept if f.get("t") != "answer"]
        _handle(msg)


main()
