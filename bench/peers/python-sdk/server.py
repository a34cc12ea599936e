"""Benchmark peer: the tools `add(a, b)` and `echo(message)` served by the official MCP Python
SDK's high-level server (`mcp.server.mcpserver.MCPServer`, FastMCP's successor in mcp 2.x) over
its streamable HTTP transport, stateful sessions in memory (its defaults). It runs in the
FastMCP peer's venv (.tooling/bench-venv), whose requirements pin `mcp==2.3.0`.

    python server.py [PORT]        (or PORT in the environment; default 8004)
"""

import os
import sys

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bench-peer-python-sdk", log_level="WARNING")


@mcp.tool()
def add(a: int | float, b: int | float) -> str:
    """Add two numbers and return the sum as text."""
    return str(a + b)


@mcp.tool()
def echo(message: str) -> str:
    """Return the message unchanged."""
    return message


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8004"))
    mcp.run(transport="streamable-http", host="127.0.0.1", port=port, streamable_http_path="/mcp")
