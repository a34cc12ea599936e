"""The benchmark's two tools as a Python module for mcp-daemon's Python runtime: module-level
functions called as fn(logger, setting, **arguments), the same work as the builtin `mcp_bench`
and the peers' tools."""


def add(logger, setting, a, b):
    return str(a + b)


def echo(logger, setting, message):
    return message
