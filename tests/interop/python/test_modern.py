"""The 2026-07-28 stateless era on `/mcp`, driven by the official `mcp` client in its default
`mode="auto"`: it probes `server/discover`, adopts 2026-07-28, and from then on sends every
request self-contained (per-request `_meta`, `Mcp-Method`/`Mcp-Name` headers, no session).
Server-to-client input arrives as input-required results, which the client fulfils through
its elicitation callback and retries with `inputResponses` (and the echoed `requestState`);
change notifications arrive on a `subscriptions/listen` stream.

The wire assertions guard against a silent downgrade: auto mode falls back to the
`initialize` handshake on almost any discover failure, and every call would still pass.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from conftest import WireLog, only_text, status_resource
from mcp.client.context import ClientRequestContext
from mcp.client.subscriptions import ResourceUpdated
from mcp_types import (
    ElicitRequest,
    ElicitRequestParams,
    ElicitResult,
    InputRequiredResult,
    TextContent,
)
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
# Methods whose target travels in the `Mcp-Name` header, and the param that names it.
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}



def assert_modern_wire(wire: WireLog) -> None:
    """The client negotiated with `server/discover` only, never got a session, and stamped
    every request with the 2026-07-28 `_meta` and headers."""
    log = wire.describe()
    requests = wire.requests()
    assert requests, f"no requests recorded\n{log}"
    assert requests[0].rpc_method == "server/discover", f"first request is not the probe\n{log}"
    assert wire.requests("initialize") == [], f"auto mode fell back to initialize\n{log}"
    assert wire.session_ids() == set(), f"the stateless era must not assign Mcp-Session-Id\n{log}"
    assert {x.method for x in wire.exchanges} == {"POST"}, f"unexpected non-POST traffic\n{log}"
    for x in requests:
        assert x.path == "/mcp", log
        assert x.status == 200, f"{x.rpc_method} answered HTTP {x.status}\n{log}"
        assert x.headers.get("mcp-method") == x.rpc_method, f"Mcp-Method header of {x.body}"
        assert x.headers.get("mcp-protocol-version") == MODERN, f"MCP-Protocol-Version header of {x.body}"
        meta = (x.body.get("params") or {}).get("_meta") or {}
        assert meta.get(PROTOCOL_VERSION_KEY) == MODERN, f"_meta of {x.body}"
        if (param := NAME_PARAM.get(x.rpc_method)) is not None:
            assert x.headers.get("mcp-name") == x.body["params"][param], f"Mcp-Name header of {x.body}"


class Elicitor:
    """An elicitation callback answering from a queue; records (input key, params) per call."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[Any, ElicitRequestParams]] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        # For input-required results the SDK passes the server-assigned input key as request_id.
        self.seen.append((context.request_id, params))
        assert self.answers, f"unexpected elicitation: {params}"
        return ElicitResult(action="accept", content=self.answers.pop(0))


def assert_asks_for(params: ElicitRequestParams, message: str, field: str) -> None:
    assert params.message == message, params
    schema = params.requested_schema
    assert schema.get("type") == "object", schema
    assert schema.get("properties", {}).get(field, {}).get("type") == "string", schema


# --------------------------------------------------------------------------- negotiation


async def test_auto_mode_negotiates_2026_07_28_via_discover(connect_modern):
    wire = WireLog()
    async with connect_modern(wire=wire) as client:
        assert LATEST_MODERN_VERSION == MODERN
        assert client.protocol_version == MODERN
        discover = client.session.discover_result
        assert discover is not None, "client did not adopt a DiscoverResult"
        assert client.session.initialize_result is None
        assert MODERN in discover.supported_versions, discover
        assert client.server_info is not None and client.server_info.name, client.server_info
        caps = client.server_capabilities
        assert caps.tools is not None, f"tools capability missing: {caps}"
        assert caps.resources is not None, f"resources capability missing: {caps}"
        assert caps.prompts is not None, f"prompts capability missing: {caps}"
        # A request after the probe must be served in the modern era too.
        assert only_text(await client.call_tool("hello", {})) == "Hello, World!"
    methods = [x.rpc_method for x in wire.requests()]
    # (The SDK may also list tools, to validate the result against the tool's output schema.)
    assert methods[0] == "server/discover" and methods.count("tools/call") == 1, wire.describe()
    assert set(methods) <= {"server/discover", "tools/list", "tools/call"}, wire.describe()
    assert_modern_wire(wire)


# --------------------------------------------------------------------------- basic features


async def test_list_tools(connect_modern):
    wire = WireLog()
    async with connect_modern(wire=wire) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"hello", "add_numbers", "test_input_required_result_elicitation"} <= set(tools), sorted(tools)
    schema = tools["add_numbers"].input_schema
    assert schema.get("type") == "object", schema
    assert set(schema.get("required", [])) >= {"a", "b"}, schema
    assert_modern_wire(wire)


async def test_call_hello_and_add_numbers(connect_modern):
    wire = WireLog()
    async with connect_modern(wire=wire) as client:
        assert only_text(await client.call_tool("hello", {})) == "Hello, World!"
        assert only_text(await client.call_tool("hello", {"name": "Modern"})) == "Hello, Modern!"
        assert only_text(await client.call_tool("add_numbers", {"a": 2, "b": 3})) == "5"
        assert only_text(await client.call_tool("add_numbers", {"a": 1.5, "b": 2})) == "3.5"
    assert [x.headers.get("mcp-name") for x in wire.requests("tools/call")] == ["hello"] * 2 + ["add_numbers"] * 2
    assert_modern_wire(wire)


async def test_read_status_resource(connect_modern):
    wire = WireLog()
    async with connect_modern(wire=wire) as client:
        result = await client.read_resource("status://server")
    body = status_resource(result)
    assert body.get("status") == "ok", body
    assert len(wire.requests("resources/read")) == 1, wire.describe()
    assert_modern_wire(wire)


async def test_get_example_prompt(connect_modern):
    wire = WireLog()
    async with connect_modern(wire=wire) as client:
        result = await client.get_prompt("example-prompt", {"arg1": "okapi-7"})
    assert len(result.messages) == 1, result.messages
    message = result.messages[0]
    assert message.role == "user"
    assert isinstance(message.content, TextContent), message.content
    assert "okapi-7" in message.content.text, message.content.text
    assert [x.headers.get("mcp-name") for x in wire.requests("prompts/get")] == ["example-prompt"], wire.describe()
    assert_modern_wire(wire)


# --------------------------------------------------------------------------- input-required results


async def test_input_required_elicitation_round_trip(connect_modern):
    wire = WireLog()
    elicit = Elicitor({"name": "Alice"})
    async with connect_modern(wire=wire, elicitation_callback=elicit) as client:
        result = await client.call_tool("test_input_required_result_elicitation", {})
        assert only_text(result) == "Hello, Alice!"

    assert len(elicit.seen) == 1, elicit.seen
    key, params = elicit.seen[0]
    assert key == "user_name", key
    assert_asks_for(params, "What is your name?", "name")

    # Two legs on the wire: the original call, then a retry (fresh id) carrying the answer.
    calls = wire.requests("tools/call")
    assert len(calls) == 2, wire.describe()
    first, retry = (c.body for c in calls)
    assert "inputResponses" not in first["params"] and "requestState" not in first["params"], first
    assert retry["id"] != first["id"], (first, retry)
    assert retry["params"]["name"] == first["params"]["name"] == "test_input_required_result_elicitation"
    assert retry["params"]["inputResponses"] == {"user_name": {"action": "accept", "content": {"name": "Alice"}}}
    # The client declared the capability the server needs, on every request.
    for c in calls:
        assert "elicitation" in c.body["params"]["_meta"][CLIENT_CAPABILITIES_KEY], c.body
    assert_modern_wire(wire)


async def test_input_required_result_surfaces_when_driven_manually(connect_modern):
    """`session.call_tool(..., allow_input_required=True)` shows the raw InputRequiredResult;
    answering it by hand completes the call."""
    wire = WireLog()
    # The callback is never invoked here; it makes the client declare the elicitation capability,
    # without which the server refuses to ask (MissingRequiredClientCapability).
    async with connect_modern(wire=wire, elicitation_callback=Elicitor()) as client:
        first = await client.session.call_tool(
            "test_input_required_result_elicitation", {}, allow_input_required=True
        )
        assert isinstance(first, InputRequiredResult), first
        assert set(first.input_requests or {}) == {"user_name"}, first
        request = first.input_requests["user_name"]
        assert isinstance(request, ElicitRequest), request
        assert request.method == "elicitation/create"
        assert_asks_for(request.params, "What is your name?", "name")

        final = await client.session.call_tool(
            "test_input_required_result_elicitation",
            {},
            input_responses={"user_name": ElicitResult(action="accept", content={"name": "Bob"})},
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert only_text(final) == "Hello, Bob!"
    assert_modern_wire(wire)


async def test_input_required_multi_round(connect_modern):
    wire = WireLog()
    elicit = Elicitor({"name": "Alice"}, {"color": "blue"})
    async with connect_modern(wire=wire, elicitation_callback=elicit) as client:
        result = await client.call_tool("test_input_required_result_multi_round", {})
        assert only_text(result) == "Alice likes blue"

    assert [key for key, _ in elicit.seen] == ["step1", "step2"], elicit.seen
    assert_asks_for(elicit.seen[0][1], "What is your name?", "name")
    assert_asks_for(elicit.seen[1][1], "What is your favorite color?", "color")

    calls = [c.body["params"] for c in wire.requests("tools/call")]
    assert len(calls) == 3, wire.describe()
    assert "inputResponses" not in calls[0] and "requestState" not in calls[0], calls[0]
    assert calls[1]["inputResponses"] == {"step1": {"action": "accept", "content": {"name": "Alice"}}}, calls[1]
    assert calls[2]["inputResponses"] == {"step2": {"action": "accept", "content": {"color": "blue"}}}, calls[2]
    # Each round echoes the sealed state of the result before it; the state advances per round.
    states = [c.get("requestState") for c in calls[1:]]
    assert all(isinstance(s, str) and s for s in states), calls
    assert states[0] != states[1], states
    assert_modern_wire(wire)


# --------------------------------------------------------------------------- subscriptions/listen


async def test_listen_delivers_only_the_subscribed_resource_update(connect_modern):
    wire = WireLog()
    watched = "test://watched-resource"
    async with connect_modern(wire=wire) as client:
        async with client.listen(resource_subscriptions=[watched]) as sub:
            assert sub.honored.resource_subscriptions == [watched], sub.honored
            # A uri this stream did not subscribe to must not be delivered.
            await client.call_tool("testkit_notify_resource", {"uri": "test://static-text"})
            await client.call_tool("testkit_notify_resource", {"uri": watched})
            events: list[Any] = []
            with anyio.move_on_after(5.0):
                async for event in sub:
                    events.append(event)
                    if isinstance(event, ResourceUpdated) and event.uri == watched:
                        break
    assert events == [ResourceUpdated(uri=watched)], events
    assert len(wire.requests("subscriptions/listen")) == 1, wire.describe()
    assert_modern_wire(wire)


# --------------------------------------------------------------------------- both eras, one server


async def test_legacy_and_auto_clients_share_one_server(connect_modern):
    legacy_wire, modern_wire = WireLog(), WireLog()
    legacy = connect_modern(wire=legacy_wire, mode="legacy")
    modern = connect_modern(wire=modern_wire)
    async with legacy as old, modern as new:
        assert old.protocol_version == LATEST_HANDSHAKE_VERSION == "2025-11-25"
        assert new.protocol_version == MODERN
        names = {"legacy": "Legacy", "auto": "Auto"}
        texts: dict[str, str] = {}

        async def hello(label: str, client: Any) -> None:
            for _ in range(3):
                texts[label] = only_text(await client.call_tool("hello", {"name": names[label]}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(hello, "legacy", old)
            tg.start_soon(hello, "auto", new)
        assert texts == {"legacy": "Hello, Legacy!", "auto": "Hello, Auto!"}, texts

    # The legacy client got a session from initialize; the auto client never did.
    assert legacy_wire.requests("initialize"), legacy_wire.describe()
    assert legacy_wire.requests("server/discover") == [], legacy_wire.describe()
    assert len(legacy_wire.session_ids()) == 1, legacy_wire.describe()
    assert len(modern_wire.requests("tools/call")) == 3, modern_wire.describe()
    assert_modern_wire(modern_wire)
