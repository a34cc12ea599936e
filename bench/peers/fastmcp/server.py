"""Benchmark peer: the tools `add(a, b)` and `echo(message)` served by FastMCP over its
streamable HTTP transport, stateful sessions in memory (FastMCP's defaults).

    python server.py [PORT]        (or PORT in the environment; default 8003)
"""

import os
import sys

from fastmcp import FastMCP

mcp = FastMCP("bench-peer-fastmcp")


@mcp.tool
def add(a: int | float, b: int | float) -> str:
    """Add two numbers and return the sum as text."""
    return str(a + b)


@mcp.tool
def echo(message: str) -> str:
    """Return the message unchanged."""
    return message


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8003"))
    mcp.run(
        transport="http",
        host="127.0.0.1",
        port=port,
        path="/mcp",
        show_banner=False,
        log_level="warning",
    )
