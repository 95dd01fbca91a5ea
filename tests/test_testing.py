"""Unit tests for llmvoice.testing: RecordingClient, prompt_bytes and breakpoint_offsets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter
from llmvoice.manager import PromptManager
from llmvoice.testing import RecordingClient, breakpoint_offsets, prompt_bytes
from llmvoice.tokens import EstimateCounter

EPHEMERAL = {"type": "ephemeral"}
EPHEMERAL_1H = {"type": "ephemeral", "ttl": "1h"}
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "Find.", "parameters": {"type": "object", "properties": {}}},
}
ANTHROPIC_TOOL = {"name": "lookup", "description": "Find.", "input_schema": {"type": "object", "properties": {}}}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _text(text: str, control: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if control is not None:
        block["cache_control"] = control
    return block


def _strip(value: Any) -> Any:
    """A copy of a JSON value with every cache_control key removed."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _anthropic_body() -> bytes:
    """A body with a 1h system marker, a lookback marker and a 5m history-end marker."""
    return _dumps(
        {
            "max_tokens": 64,
            "messages": [
                {"role": "user", "content": [_text("héllo")]},
                {"role": "assistant", "content": [_text("hi", EPHEMERAL)]},
                {"role": "user", "content": [_text("a"), _text("b", EPHEMERAL)]},
                {"role": "user", "content": [_text("<context>\nctx\n</context>")]},
            ],
            "model": "claude-sonnet-4-6",
            "system": [_text("Rules."), _text("More rules.", EPHEMERAL_1H)],
            "tools": [ANTHROPIC_TOOL],
        }
    )


class TestPromptBytes:
    """prompt_bytes reduces a body to the cache-relevant bytes."""

    def test_anthropic_strips_markers_and_orders(self) -> None:
        """Anthropic: tools, system, messages in that order with every marker removed."""
        data = json.loads(_anthropic_body())
        assert prompt_bytes(_anthropic_body(), "anthropic") == _dumps(
            [[ANTHROPIC_TOOL], _strip(data["system"]), _strip(data["messages"])]
        )

    def test_anthropic_exact_bytes(self) -> None:
        """A small body reduces to the exact expected bytes."""
        body = _dumps(
            {
                "messages": [{"role": "user", "content": [_text("hi", EPHEMERAL)]}],
                "system": [_text("S", EPHEMERAL_1H)],
            }
        )
        assert prompt_bytes(body, "anthropic") == (
            b'[[],[{"type":"text","text":"S"}],[{"role":"user","content":[{"type":"text","text":"hi"}]}]]'
        )

    def test_anthropic_marker_positions_do_not_matter(self) -> None:
        """Two bodies differing only in where markers sit give the same bytes."""
        first = _dumps({"messages": [{"role": "user", "content": [_text("a", EPHEMERAL), _text("b")]}]})
        second = _dumps({"messages": [{"role": "user", "content": [_text("a"), _text("b", EPHEMERAL_1H)]}]})
        assert prompt_bytes(first, "anthropic") == prompt_bytes(second, "anthropic")

    def test_anthropic_marker_text_in_content_kept(self) -> None:
        """Text that merely mentions cache_control is content and is kept."""
        text = '"cache_control":{"type":"ephemeral"}'
        body = _dumps({"messages": [{"role": "user", "content": [_text(text)]}]})
        assert json.loads(prompt_bytes(body, "anthropic"))[2][0]["content"][0]["text"] == text

    def test_sdk_body_with_1h_markers(self) -> None:
        """A 1h-marked adapter request sent through the SDK reduces to the marker-free prompt."""
        adapter = AnthropicAdapter("claude-haiku-4-5", ttl="1h", counter=EstimateCounter(4.0))
        manager = PromptManager("Be brief.", adapter=adapter, tools=[TOOL], session_id="s1")
        manager.append({"role": "user", "content": "hi"})
        manager.append({"role": "assistant", "content": "hello"})
        request = manager.build_request()
        flat = prompt_bytes(RecordingClient("anthropic").send(request), "anthropic")
        assert flat == _dumps([[ANTHROPIC_TOOL], [_text("Be brief.")], _strip(request["messages"])])

    def test_openai_tools_then_messages(self) -> None:
        """OpenAI: tools then messages, other keys dropped."""
        messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "hé"}]
        body = _dumps({"model": "gpt-4o", "messages": messages, "tools": [TOOL], "prompt_cache_key": "s1"})
        assert prompt_bytes(body, "openai") == _dumps([[TOOL], messages])

    def test_openai_without_tools(self) -> None:
        """OpenAI without tools starts with an empty tools list."""
        body = _dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        assert prompt_bytes(body, "openai") == b'[[],[{"role":"user","content":"hi"}]]'

    def test_formatting_of_the_body_does_not_matter(self) -> None:
        """A body with spaces and escaped non-ASCII gives the same bytes as a compact one."""
        data = {"model": "gpt-4o", "messages": [{"role": "user", "content": "héllo"}]}
        assert prompt_bytes(json.dumps(data, indent=2).encode(), "openai") == prompt_bytes(_dumps(data), "openai")


class TestBreakpointOffsets:
    """breakpoint_offsets gives the offsets just after each marked block."""

    def test_anthropic_offsets_exact(self) -> None:
        """Offsets after the marked system block, the lookback block and the history-end block."""
        body = _anthropic_body()
        data = json.loads(body)
        tools, system, messages = [ANTHROPIC_TOOL], _strip(data["system"]), _strip(data["messages"])
        assert breakpoint_offsets(body, "anthropic") == [
            len(_dumps([tools, system])) - 2,
            len(_dumps([tools, system, messages[:2]])) - 4,
            len(_dumps([tools, system, [*messages[:2], {"role": "user", "content": [_text("a"), _text("b")]}]])) - 4,
        ]

    def test_anthropic_offsets_end_at_the_marked_blocks(self) -> None:
        """The prompt bytes up to each offset end with the marked block, markers removed."""
        body = _anthropic_body()
        flat = prompt_bytes(body, "anthropic")
        blocks = [_dumps(_text("More rules.")), _dumps(_text("hi")), _dumps(_text("b"))]
        offsets = breakpoint_offsets(body, "anthropic")
        assert [flat[:offset].endswith(block) for offset, block in zip(offsets, blocks, strict=True)] == [
            True,
            True,
            True,
        ]

    def test_anthropic_tool_marker(self) -> None:
        """A marked tool (no system) ends right after that tool, before the empty system list."""
        marked = {**ANTHROPIC_TOOL, "name": "ping", "cache_control": EPHEMERAL}
        body = _dumps({"messages": [{"role": "user", "content": [_text("hi")]}], "tools": [ANTHROPIC_TOOL, marked]})
        unmarked = {**ANTHROPIC_TOOL, "name": "ping"}
        [offset] = breakpoint_offsets(body, "anthropic")
        flat = prompt_bytes(body, "anthropic")
        assert (offset, flat[offset : offset + 5]) == (len(_dumps([[ANTHROPIC_TOOL, unmarked]])) - 2, b"],[],")

    def test_anthropic_repeated_block_text(self) -> None:
        """A marked block whose text also appears earlier still gets the offset of the marked one."""
        body = _dumps(
            {
                "messages": [
                    {"role": "user", "content": [_text("same")]},
                    {"role": "assistant", "content": [_text("same", EPHEMERAL)]},
                ]
            }
        )
        messages = [{"role": "user", "content": [_text("same")]}, {"role": "assistant", "content": [_text("same")]}]
        assert breakpoint_offsets(body, "anthropic") == [len(_dumps([[], [], messages])) - 4]

    def test_anthropic_adapter_request(self) -> None:
        """For a real adapter request sent through the SDK, offsets follow the system and the history end."""
        adapter = AnthropicAdapter("claude-sonnet-4-6", counter=EstimateCounter(4.0))
        manager = PromptManager("Be brief.", adapter=adapter, session_id="s1")
        manager.append({"role": "user", "content": "hi"})
        manager.append({"role": "assistant", "content": "hello"})
        body = RecordingClient("anthropic").send(manager.build_request(dynamic_context="ctx"))
        flat = prompt_bytes(body, "anthropic")
        system = [_text("Be brief.")]
        history = [{"role": "user", "content": [_text("hi")]}, {"role": "assistant", "content": [_text("hello")]}]
        offsets = breakpoint_offsets(body, "anthropic")
        assert (offsets, flat[: offsets[1]] + b"]}]]") == (
            [len(_dumps([[], system])) - 2, len(_dumps([[], system, history])) - 4],
            _dumps([[], system, history]),
        )

    def test_openai_without_history_messages(self) -> None:
        """OpenAI bodies have no markers: without history_messages there are no offsets."""
        body = _dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        assert breakpoint_offsets(body, "openai") == []

    def test_openai_with_history_messages(self) -> None:
        """With history_messages the offset is right after the last history message."""
        adapter = OpenAIAdapter("gpt-4o-mini", counter=EstimateCounter(4.0))
        manager = PromptManager("Be brief.", adapter=adapter, tools=[TOOL], session_id="s1")
        manager.append({"role": "user", "content": "héllo"})
        manager.append({"role": "assistant", "content": "hi"})
        manager.append({"role": "user", "content": "more"})
        body = RecordingClient("openai").send(manager.build_request(dynamic_context="ctx"))
        report = manager.cache_prefix("ctx")
        [offset] = breakpoint_offsets(body, "openai", history_messages=report.messages)
        flat = prompt_bytes(body, "openai")
        history = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "héllo"},
            {"role": "assistant", "content": "hi"},
        ]
        head = _dumps([[TOOL], history])
        assert (report.messages, offset, flat[:offset], flat[offset : offset + 1]) == (
            3,
            len(head) - 2,
            head[:-2],
            b",",
        )

    def test_openai_offset_matches_cache_prefix_bytes(self) -> None:
        """Without tools, the OpenAI offset is the cache_prefix byte count minus one."""
        adapter = OpenAIAdapter("gpt-4o-mini", counter=EstimateCounter(4.0))
        manager = PromptManager("Be brief.", adapter=adapter, session_id="s1")
        manager.append({"role": "user", "content": "héllo"})
        manager.append({"role": "assistant", "content": "hi"})
        body = RecordingClient("openai").send(manager.build_request())
        report = manager.cache_prefix()
        # cache_prefix: [[S],[]] + H = len(S) + 7 + len(H); the offset: [[],[S,H = 5 + len(S) + 1 + len(H).
        assert breakpoint_offsets(body, "openai", history_messages=report.messages) == [report.bytes - 1]


class TestRecordingClient:
    """RecordingClient records bodies instead of sending them."""

    def test_unknown_provider(self) -> None:
        """An unknown provider raises ValueError."""
        with pytest.raises(ValueError, match="provider"):
            RecordingClient("cohere")

    def test_records_every_body_and_path(self) -> None:
        """Each request's body and path are recorded in order."""
        rec = RecordingClient("openai")
        rec.send({"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}]})
        rec.send({"model": "gpt-4o", "messages": [{"role": "user", "content": "b"}]})
        assert ([json.loads(b)["messages"][0]["content"] for b in rec.bodies], rec.paths) == (
            ["a", "b"],
            ["/v1/chat/completions", "/v1/chat/completions"],
        )

    def test_anthropic_default_max_tokens(self) -> None:
        """send adds max_tokens 64 for Anthropic when the request has none."""
        rec = RecordingClient("anthropic")
        body = json.loads(rec.send({"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "a"}]}))
        assert (body["max_tokens"], rec.paths) == (64, ["/v1/messages"])

    def test_custom_response(self) -> None:
        """A custom response is what the SDK returns."""
        response = {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "custom"}, "finish_reason": "stop"}],
        }
        rec = RecordingClient("openai", response=response)
        reply = rec.client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}])
        assert reply.choices[0].message.content == "custom"
