"""The built-in demo set over every transport, driven by the official `mcp` client (legacy mode).

Streamable HTTP (`/mcp`), legacy HTTP+SSE (`/sse` + `/messages?session_id=`) and
stdio (`mcp-daemon --transport stdio`) must all behave identically.
"""

from __future__ import annotations


import pytest
from conftest import TRANSPORTS, only_text, status_resource
from mcp_types import TextContent
from mcp_types.version import LATEST_HANDSHAKE_VERSION

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport", TRANSPORTS)]



async def test_initialize_negotiates_latest_handshake_version(connect_demo, transport):
    async with connect_demo(transport) as client:
        # The client offers its newest handshake-era version; the server supports it, so
        # it must answer with the same version.
        assert LATEST_HANDSHAKE_VERSION == "2025-11-25"
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None
        assert client.server_info.name, "serverInfo.name must be non-empty"
        assert client.server_info.version, "serverInfo.version must be non-empty"
        caps = client.server_capabilities
        assert caps.tools is not None, f"tools capability missing: {caps}"
        assert caps.resources is not None, f"resources capability missing: {caps}"
        assert caps.prompts is not None, f"prompts capability missing: {caps}"


async def test_list_tools_has_demo_tools(connect_demo, transport):
    async with connect_demo(transport) as client:
        result = await client.list_tools()
        tools = {t.name: t for t in result.tools}
        assert "hello" in tools, f"tools: {sorted(tools)}"
        assert "add_numbers" in tools, f"tools: {sorted(tools)}"
        add_schema = tools["add_numbers"].input_schema
        assert add_schema.get("type") == "object"
        assert set(add_schema.get("required", [])) >= {"a", "b"}, add_schema
        assert set(add_schema.get("properties", {})) >= {"a", "b"}, add_schema
        assert "name" in tools["hello"].input_schema.get("properties", {}), tools["hello"].input_schema


async def test_call_hello_default_name(connect_demo, transport):
    async with connect_demo(transport) as client:
        result = await client.call_tool("hello", {})
        assert only_text(result) == "Hello, World!"


async def test_call_hello_with_name(connect_demo, transport):
    async with connect_demo(transport) as client:
        result = await client.call_tool("hello", {"name": "Interop"})
        assert only_text(result) == "Hello, Interop!"


async def test_call_add_numbers(connect_demo, transport):
    async with connect_demo(transport) as client:
        assert only_text(await client.call_tool("add_numbers", {"a": 2, "b": 3})) == "5"
        assert only_text(await client.call_tool("add_numbers", {"a": 1.5, "b": 2})) == "3.5"


async def test_read_status_resource(connect_demo, transport):
    async with connect_demo(transport) as client:
        result = await client.read_resource("status://server")
        body = status_resource(result)
        assert body.get("status") == "ok", body


async def test_get_example_prompt(connect_demo, transport):
    async with connect_demo(transport) as client:
        result = await client.get_prompt("example-prompt", {"arg1": "zebra-42"})
        assert len(result.messages) == 1, result.messages
        message = result.messages[0]
        assert message.role == "user"
        assert isinstance(message.content, TextContent), message.content
        assert "zebra-42" in message.content.text
