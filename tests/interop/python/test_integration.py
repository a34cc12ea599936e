"""Server-to-client features with `tests/fixtures/integration.json`, driven by the official
`mcp` client in legacy mode: progress, logging, elicitation, sampling, resource
subscriptions, error codes and session isolation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from conftest import TRANSPORTS, only_text
from mcp import MCPError
from mcp.client.context import ClientRequestContext
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    LoggingMessageNotificationParams,
    ResourceUpdatedNotification,
    TextContent,
    TextResourceContents,
)

pytestmark = pytest.mark.anyio

WATCHED_URI = "test://watched-resource"
LOG_MESSAGES = ["Tool execution started", "Tool processing data", "Tool execution completed"]


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Notifications are dispatched on their own tasks, so they may land just after the result."""
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)
    assert predicate(), f"timed out after {timeout}s waiting for {what}"



async def until_delivered(sender: Any, rec: "Recorder", uri: str, timeout: float = 30.0) -> None:
    """Sends resources/updated for `uri` through `sender` until one reaches `rec` (at most one
    every half second): the sign that the receiving session's GET stream is open."""
    with anyio.move_on_after(timeout):
        while uri not in rec.updated_uris():
            await sender.call_tool("testkit_notify_resource", {"uri": uri})
            with anyio.move_on_after(0.5):
                while uri not in rec.updated_uris():
                    await anyio.sleep(0.02)
    assert uri in rec.updated_uris(), f"no resources/updated for {uri} within {timeout}s"


class Recorder:
    """Collects everything the server pushes at one client."""

    def __init__(self) -> None:
        self.progress: list[tuple[float, float | None, str | None]] = []
        self.logs: list[LoggingMessageNotificationParams] = []
        self.messages: list[Any] = []

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append((progress, total, message))

    async def on_log(self, params: LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def on_message(self, message: Any) -> None:
        self.messages.append(message)

    def updated_uris(self) -> list[str]:
        return [str(m.params.uri) for m in self.messages if isinstance(m, ResourceUpdatedNotification)]

    def transport_errors(self) -> list[Exception]:
        return [m for m in self.messages if isinstance(m, Exception)]


async def read_stats(client: Any) -> dict[str, int]:
    result = await client.read_resource("testkit://stats")
    contents = result.contents[0]
    assert isinstance(contents, TextResourceContents), contents
    stats = json.loads(contents.text)
    assert {"started", "completed", "cancelled"} <= set(stats), stats
    return stats


# --------------------------------------------------------------------------- progress


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_progress_callback_receives_increasing_progress(connect_integration, transport):
    rec = Recorder()
    async with connect_integration(transport) as client:
        result = await client.call_tool("test_tool_with_progress", {}, progress_callback=rec.on_progress)
        assert only_text(result)
        await wait_until(lambda: len(rec.progress) >= 3, "3 progress notifications")
        await anyio.sleep(0.1)
    assert [(p, t) for p, t, _ in rec.progress] == [(0, 100), (50, 100), (100, 100)], rec.progress


async def test_testkit_sleep_reports_each_step_and_counts_stats(connect_integration):
    rec = Recorder()
    async with connect_integration("streamable_http") as client:
        before = await read_stats(client)
        result = await client.call_tool(
            "testkit_sleep", {"ms": 200, "steps": 4}, progress_callback=rec.on_progress
        )
        assert only_text(result) == "slept 200 ms"
        await wait_until(lambda: len(rec.progress) >= 4, "4 progress notifications")
        await anyio.sleep(0.1)
        after = await read_stats(client)
    values = [p for p, _, _ in rec.progress]
    assert len(values) == 4, rec.progress
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), f"progress not increasing: {values}"
    last_total = rec.progress[-1][1]
    if last_total is not None:
        assert values[-1] == last_total, rec.progress
    assert after["started"] == before["started"] + 1, (before, after)
    assert after["completed"] == before["completed"] + 1, (before, after)
    assert after["cancelled"] == before["cancelled"], (before, after)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_a_call_sends_cancelled_and_server_stops_work(connect_integration, transport):
    async with connect_integration(transport) as client:
        before = await read_stats(client)
        started = anyio.current_time()
        # Leaving the scope cancels the call; the SDK then sends notifications/cancelled.
        with anyio.move_on_after(0.4) as scope:
            await client.call_tool("testkit_sleep", {"ms": 5000, "steps": 50})
        assert scope.cancelled_caught, "testkit_sleep(5000 ms) finished before being cancelled"
        assert anyio.current_time() - started < 2.0
        stats: dict[str, int] = {}

        async def poll() -> None:
            stats.update(await read_stats(client))

        with anyio.move_on_after(3.0):
            while stats.get("cancelled", before["cancelled"]) == before["cancelled"]:
                await poll()
                await anyio.sleep(0.05)
        assert stats["started"] == before["started"] + 1, (before, stats)
        assert stats["cancelled"] == before["cancelled"] + 1, (before, stats)
        assert stats["completed"] == before["completed"], (before, stats)
        # The session is still usable after a cancellation.
        assert only_text(await client.call_tool("hello", {})) == "Hello, World!"


async def test_no_progress_without_progress_token(connect_integration):
    rec = Recorder()
    async with connect_integration("streamable_http", message_handler=rec.on_message) as client:
        result = await client.call_tool("test_tool_with_progress", {})
        assert only_text(result)
        await anyio.sleep(0.3)
    progress = [m for m in rec.messages if getattr(m, "method", None) == "notifications/progress"]
    assert progress == [], progress


# --------------------------------------------------------------------------- logging


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_logging_callback_receives_three_messages(connect_integration, transport):
    rec = Recorder()
    async with connect_integration(transport, logging_callback=rec.on_log) as client:
        result = await client.call_tool("test_tool_with_logging", {})
        assert only_text(result)
        await wait_until(lambda: len(rec.logs) >= 3, "3 log notifications")
        await anyio.sleep(0.2)
    assert [log.data for log in rec.logs] == LOG_MESSAGES, rec.logs
    assert [log.level for log in rec.logs] == ["info"] * 3, rec.logs


# --------------------------------------------------------------------------- elicitation


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_elicitation_accept_round_trip(connect_integration, transport):
    seen: list[ElicitRequestParams] = []
    answer = {"username": "alice", "email": "alice@example.test"}

    async def on_elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        seen.append(params)
        return ElicitResult(action="accept", content=answer)

    async with connect_integration(transport, elicitation_callback=on_elicit) as client:
        result = await client.call_tool("test_elicitation", {"message": "Please register, interop"})
        text = only_text(result)

    assert len(seen) == 1, seen
    params = seen[0]
    assert params.message == "Please register, interop"
    schema = params.requested_schema
    assert schema.get("type") == "object", schema
    props = schema.get("properties", {})
    assert props.get("username", {}).get("type") == "string", schema
    assert props.get("email", {}).get("type") == "string", schema
    assert set(schema.get("required", [])) >= {"username", "email"}, schema

    assert text.startswith("User response: "), text
    assert "accept" in text, text
    start, end = text.find("{"), text.rfind("}")
    assert 0 <= start < end, f"no JSON object in {text!r}"
    assert json.loads(text[start : end + 1]) == answer, text


async def test_elicitation_decline_round_trip(connect_integration):
    async def on_elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="decline")

    async with connect_integration("streamable_http", elicitation_callback=on_elicit) as client:
        result = await client.call_tool("test_elicitation", {"message": "No thanks"})
        text = only_text(result)
    assert text.startswith("User response: "), text
    assert "decline" in text, text
    assert "accept" not in text, text


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sampling_callback_text_reaches_tool_result(connect_integration, transport):
    seen: list[CreateMessageRequestParams] = []

    async def on_sample(context: ClientRequestContext, params: CreateMessageRequestParams) -> CreateMessageResult:
        seen.append(params)
        return CreateMessageResult(
            role="assistant",
            content=TextContent(text="seven purple bananas"),
            model="interop-test-model",
            stop_reason="endTurn",
        )

    async with connect_integration(transport, sampling_callback=on_sample) as client:
        result = await client.call_tool("test_sampling", {"prompt": "Count the bananas"})
        text = only_text(result)

    assert text == "LLM response: seven purple bananas"
    assert len(seen) == 1, seen
    request_texts = []
    for msg in seen[0].messages:
        blocks = msg.content if isinstance(msg.content, list) else [msg.content]
        request_texts += [b.text for b in blocks if isinstance(b, TextContent)]
    assert any("Count the bananas" in t for t in request_texts), seen[0]
    assert seen[0].max_tokens > 0


# --------------------------------------------------------------------------- subscriptions


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_subscribed_resource_update_reaches_message_handler(connect_integration, transport):
    rec = Recorder()
    async with connect_integration(transport, message_handler=rec.on_message) as client:
        caps = client.server_capabilities
        assert caps.resources is not None and caps.resources.subscribe is True, caps
        await client.subscribe_resource(WATCHED_URI)
        # Streamable HTTP delivers unsolicited notifications on the standalone GET stream,
        # which the SDK opens in the background right after `initialized`; until it is open a
        # notification has nowhere to go. The first update that arrives says it is open.
        await until_delivered(client, rec, WATCHED_URI)
        # A uri this session did not subscribe to must not be delivered; the update after it
        # is the marker that everything before it had its chance.
        await client.call_tool("testkit_notify_resource", {"uri": "test://static-text"})
        await client.call_tool("testkit_notify_resource", {"uri": WATCHED_URI})
        await wait_until(lambda: len(rec.updated_uris()) >= 2, f"the second resources/updated for {WATCHED_URI}")
    assert set(rec.updated_uris()) == {WATCHED_URI}, rec.messages
    assert rec.transport_errors() == [], rec.transport_errors()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_unknown_tool_is_invalid_params_error(connect_integration, transport):
    async with connect_integration(transport) as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("definitely_not_a_tool", {})
        assert info.value.code == -32602, info.value.error
        # The session stays usable after the error.
        assert only_text(await client.call_tool("hello", {"name": "again"})) == "Hello, again!"


async def test_unknown_resource_is_resource_not_found_error(connect_integration):
    async with connect_integration("streamable_http") as client:
        with pytest.raises(MCPError) as info:
            await client.read_resource("test://no-such-resource")
        assert info.value.code == -32002, info.value.error


async def test_error_handling_tool_returns_is_error(connect_integration):
    async with connect_integration("streamable_http") as client:
        result = await client.call_tool("test_error_handling", {})
        assert result.is_error is True, result


async def test_fixture_catalog_is_listed(connect_integration):
    async with connect_integration("streamable_http") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        expected_tools = {
            "hello",
            "add_numbers",
            "test_simple_text",
            "test_tool_with_progress",
            "test_tool_with_logging",
            "test_error_handling",
            "test_sampling",
            "test_elicitation",
            "testkit_sleep",
            "testkit_notify_resource",
        }
        assert expected_tools <= tools, sorted(expected_tools - tools)
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"test://static-text", "test://watched-resource", "status://server"} <= resources, resources
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "test://template/{id}/data" in templates, templates
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"test_simple_prompt", "test_prompt_with_arguments", "example-prompt"} <= prompts, prompts
        static = await client.read_resource("test://static-text")
        assert static.contents[0].text == "This is the content of the static text resource."
        simple = await client.call_tool("test_simple_text", {})
        assert only_text(simple) == "This is a simple text response for testing."


# --------------------------------------------------------------------------- isolation


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_concurrent_sessions_do_not_see_each_others_notifications(connect_integration):
    rec_a, rec_b = Recorder(), Recorder()
    client_a = connect_integration("streamable_http", logging_callback=rec_a.on_log, message_handler=rec_a.on_message)
    client_b = connect_integration("streamable_http", logging_callback=rec_b.on_log, message_handler=rec_b.on_message)

    async def work(client: Any, rec: Recorder, steps: int) -> list[str]:
        sleep_task = client.call_tool("testkit_sleep", {"ms": 300, "steps": steps}, progress_callback=rec.on_progress)
        log_task = client.call_tool("test_tool_with_logging", {})
        slept, logged = await asyncio.gather(sleep_task, log_task)
        return [only_text(slept), only_text(logged)]

    async with client_a as a, client_b as b:
        out_a, out_b = await asyncio.gather(work(a, rec_a, 5), work(b, rec_b, 3))
        assert out_a[0] == "slept 300 ms" and out_b[0] == "slept 300 ms", (out_a, out_b)
        await wait_until(lambda: len(rec_a.logs) >= 3 and len(rec_b.logs) >= 3, "3 logs per session")
        await wait_until(lambda: len(rec_a.progress) >= 5 and len(rec_b.progress) >= 3, "progress per session")
        await anyio.sleep(0.3)
        assert [log.data for log in rec_a.logs] == LOG_MESSAGES, rec_a.logs
        assert [log.data for log in rec_b.logs] == LOG_MESSAGES, rec_b.logs
        assert len(rec_a.progress) == 5, rec_a.progress
        assert len(rec_b.progress) == 3, rec_b.progress

        # Only A subscribes; B triggers the update; only A hears about it.
        await a.subscribe_resource(WATCHED_URI)
        # B's update reaches A once A's GET stream is open (the SDK opens it in the
        # background): repeated until one arrives instead of sleeping and hoping.
        await until_delivered(b, rec_a, WATCHED_URI)
        # One more update, sent after the first arrived, is the marker that anything meant
        # for B (which did not subscribe) had its chance to arrive too.
        await a.call_tool("testkit_notify_resource", {"uri": WATCHED_URI})
        await wait_until(lambda: len(rec_a.updated_uris()) >= 2, "A's second resources/updated")
        assert set(rec_a.updated_uris()) == {WATCHED_URI}, rec_a.messages
        assert rec_b.updated_uris() == [], rec_b.messages
