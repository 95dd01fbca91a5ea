"""Unit tests for llmvoice.adapters.anthropic.AnthropicAdapter."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from anthropic.types import (
    Message as SDKMessage,
)
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
)

from llmvoice import functional as fn
from llmvoice.adapters import AnthropicAdapter, Usage, anthropic_min_cacheable_tokens
from llmvoice.errors import AdapterError, ConfigurationError
from llmvoice.manager import PromptManager
from llmvoice.messages import Message
from llmvoice.testing import RecordingClient
from llmvoice.tokens import EstimateCounter

MODEL = "claude-sonnet-4-6"
EPHEMERAL = {"type": "ephemeral"}
EPHEMERAL_1H = {"type": "ephemeral", "ttl": "1h"}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}
BARE_TOOL = {"type": "function", "function": {"name": "ping"}}
LOOKUP_SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}}


def _adapter(**options: Any) -> AnthropicAdapter:
    options.setdefault("counter", EstimateCounter(4.0))
    return AnthropicAdapter(options.pop("model", MODEL), **options)


def _manager(system: str = "Be brief.", adapter: AnthropicAdapter | None = None, **options: Any) -> PromptManager:
    return PromptManager(system, adapter=adapter or _adapter(), session_id="s1", **options)


def _call(call_id: str, arguments: str = "{}", name: str = "lookup") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _text(text: str, control: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if control is not None:
        block["cache_control"] = control
    return block


def _marks(request: dict[str, Any]) -> list[tuple[Any, int]]:
    """Positions of every cache_control marker: ("system"|"tools", i) or (message, block)."""
    out: list[tuple[Any, int]] = []
    for key in ("system", "tools"):
        out.extend((key, i) for i, item in enumerate(request.get(key, [])) if "cache_control" in item)
    for i, message in enumerate(request["messages"]):
        out.extend((i, j) for j, block in enumerate(message["content"]) if "cache_control" in block)
    return out


def _tool_cycle(manager: PromptManager, n: int, *, text: str | None = None, prefix: str = "c") -> None:
    """An assistant turn calling n tools, then the n results."""
    calls = [_call(f"{prefix}{i}") for i in range(n)]
    manager.append({"role": "assistant", "content": text, "tool_calls": calls})
    for i in range(n):
        manager.append({"role": "tool", "tool_call_id": f"{prefix}{i}", "content": f"r{i}"})


class TestRequest:
    """The exact request."""

    def test_conversation_with_tools_and_context(self) -> None:
        """System blocks, converted tools, tool_use/tool_result, history marker and the context block."""
        manager = _manager(tools=[TOOL])
        manager.append({"role": "user", "content": "Where is order 42?"})
        manager.append({"role": "assistant", "content": None, "tool_calls": [_call("call_1", '{"order_id":"42"}')]})
        manager.append({"role": "tool", "tool_call_id": "call_1", "content": "shipped"})
        manager.append({"role": "assistant", "content": "It has shipped."})
        manager.append({"role": "user", "content": "Thanks!"})
        assert manager.build_request(dynamic_context="Now: 10:00") == {
            "model": MODEL,
            "system": [_text("Be brief.", EPHEMERAL)],
            "messages": [
                {"role": "user", "content": [_text("Where is order 42?")]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"order_id": "42"}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "shipped"}]},
                {"role": "assistant", "content": [_text("It has shipped.", EPHEMERAL)]},
                {"role": "user", "content": [_text("<context>\nNow: 10:00\n</context>")]},
                {"role": "user", "content": [_text("Thanks!")]},
            ],
            "tools": [{"name": "lookup", "description": "Find an order.", "input_schema": LOOKUP_SCHEMA}],
        }

    def test_max_tokens_option(self) -> None:
        """max_tokens given to the adapter is sent after the model."""
        manager = _manager(adapter=_adapter(max_tokens=256))
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_request() == {
            "model": MODEL,
            "max_tokens": 256,
            "system": [_text("Be brief.", EPHEMERAL)],
            "messages": [{"role": "user", "content": [_text("hi")]}],
        }

    def test_invalid_max_tokens(self) -> None:
        """A max_tokens below 1 raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            _adapter(max_tokens=0)

    def test_ttl_1h(self) -> None:
        """ttl="1h" marks the system and the history end with {"type": "ephemeral", "ttl": "1h"}."""
        manager = _manager(adapter=_adapter(ttl="1h"), transition_mode="none")
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_request() == {
            "model": MODEL,
            "system": [_text("Be brief.", EPHEMERAL_1H)],
            "messages": [{"role": "user", "content": [_text("hi", EPHEMERAL_1H)]}],
        }

    def test_static_ttl_longer_than_ttl(self) -> None:
        """static_ttl="1h" with ttl="5m" marks the static part 1h and the history 5m."""
        manager = _manager(adapter=_adapter(ttl="5m", static_ttl="1h"), transition_mode="none")
        manager.append({"role": "user", "content": "hi"})
        request = manager.build_request()
        assert (request["system"], request["messages"]) == (
            [_text("Be brief.", EPHEMERAL_1H)],
            [{"role": "user", "content": [_text("hi", EPHEMERAL)]}],
        )

    def test_static_marker_on_last_tool_without_system(self) -> None:
        """Without a system prompt the static marker goes on the last tool, and there is no "system"."""
        manager = _manager("", tools=[TOOL, BARE_TOOL])
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_request() == {
            "model": MODEL,
            "messages": [{"role": "user", "content": [_text("hi")]}],
            "tools": [
                {"name": "lookup", "description": "Find an order.", "input_schema": LOOKUP_SCHEMA},
                {"name": "ping", "input_schema": {"type": "object", "properties": {}}, "cache_control": EPHEMERAL},
            ],
        }

    def test_tools_unmarked_with_system(self) -> None:
        """With a system prompt the tools carry no marker (the system block ends the static prefix)."""
        manager = _manager(tools=[TOOL])
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_request()["tools"] == [
            {"name": "lookup", "description": "Find an order.", "input_schema": LOOKUP_SCHEMA}
        ]

    def test_recent_only_has_no_history_marker(self) -> None:
        """Without committed history only the static marker is placed."""
        manager = _manager()
        manager.append({"role": "user", "content": "hi"})
        assert _marks(manager.build_request(dynamic_context="ctx")) == [("system", 0)]


class TestEmptyAndSystemOnly:
    """States without conversation turns."""

    def test_system_only_gets_a_leading_user_turn(self) -> None:
        """A state with only the static prompt sends the system and the leading user turn (agent speaks first)."""
        assert fn.build_request(fn.new_state("Be brief.", session_id="s1"), _adapter()).payload == {
            "model": MODEL,
            "system": [_text("Be brief.", EPHEMERAL)],
            "messages": [{"role": "user", "content": [_text("(The conversation starts.)")]}],
        }

    def test_nothing_to_send(self) -> None:
        """A state with no prompt, tools, context or turns cannot be built (AdapterError, as for OpenAI)."""
        with pytest.raises(AdapterError):
            fn.build_request(fn.new_state(session_id="s1"), _adapter())


class CountingAnthropicAdapter(AnthropicAdapter):
    """AnthropicAdapter that counts format_message calls per (kind, message id)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[tuple[str, int]] = Counter()

    def format_message(self, message: Message) -> dict[str, Any]:
        self.calls[(message.kind, message.id)] += 1
        return super().format_message(message)


class TestIncremental:
    """Memoised formatting with Anthropic's merged tool results."""

    def test_each_committed_message_formatted_once(self) -> None:
        """Across builds with merged tool results, each committed message is formatted exactly once."""
        adapter = CountingAnthropicAdapter(MODEL, counter=EstimateCounter(4.0))
        manager = _manager(adapter=adapter, transition_mode="none")
        for turn in range(4):
            manager.append({"role": "user", "content": f"q{turn}"})
            manager.build_request(dynamic_context="ctx")
            _tool_cycle(manager, 3, prefix=f"t{turn}_")
            manager.build_request(dynamic_context="ctx")
            manager.append({"role": "assistant", "content": f"a{turn}"})
            manager.build_request(dynamic_context="ctx")
        committed = len(manager.state.committed)
        assert (committed, {k: v for k, v in adapter.calls.items() if k[0] == "message"}) == (
            24,
            {("message", i): 1 for i in range(24)},
        )

    def test_rolled_back_state_rebuilds_the_same_request(self) -> None:
        """An earlier State of the session builds exactly its earlier request, markers included."""
        adapter = _adapter()
        state = fn.new_state("Be brief.", session_id="s1", transition_mode="none")
        state = fn.append_messages(state, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}])
        state = fn.build_request(state, adapter).state
        calls = [_call(f"c{i}") for i in range(10)]
        earlier = fn.append_messages(
            state,
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                *({"role": "tool", "tool_call_id": f"c{i}", "content": "r"} for i in range(10)),
            ],
        )
        built = fn.build_request(earlier, adapter, "ctx")
        expected = copy.deepcopy(built.payload)
        later = fn.append_messages(built.state, [{"role": "assistant", "content": "done"}])
        fn.build_request(later, adapter, "other")
        assert (_marks(expected), fn.build_request(earlier, adapter, "ctx").payload) == (
            [("system", 0), (1, 0), (4, 9)],
            expected,
        )


class TestMessageFormatting:
    """Canonical messages in Anthropic's shape."""

    def _messages(self, *messages: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
        manager = _manager(adapter=_adapter(**options), transition_mode="manual")
        manager.append_many(messages)
        return manager.build_messages()

    def test_tool_arguments_parsed(self) -> None:
        """tool_calls become tool_use blocks after any text, with input parsed from the arguments JSON."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [_call("a", '{"order_id":"42","n":2}')]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"},
        )
        assert messages[1] == {
            "role": "assistant",
            "content": [
                _text("Checking."),
                {"type": "tool_use", "id": "a", "name": "lookup", "input": {"order_id": "42", "n": 2}},
            ],
        }

    def test_invalid_json_arguments(self) -> None:
        """Arguments that are not JSON are kept as {"arguments": raw}."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("a", "not json")]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"},
        )
        assert messages[1]["content"] == [
            {"type": "tool_use", "id": "a", "name": "lookup", "input": {"arguments": "not json"}}
        ]

    def test_non_object_json_arguments(self) -> None:
        """JSON arguments that are not an object are wrapped as {"arguments": value}."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("a", "[1, 2]")]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"},
        )
        assert messages[1]["content"][0]["input"] == {"arguments": [1, 2]}

    def test_empty_arguments(self) -> None:
        """Blank arguments become an empty input object."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("a", " ")]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"},
        )
        assert messages[1]["content"][0]["input"] == {}

    def test_tool_ids_sanitised_consistently(self) -> None:
        """Characters Anthropic refuses in ids become "_" in both the tool_use and its tool_result."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("call.1/x")]},
            {"role": "tool", "tool_call_id": "call.1/x", "content": "ok"},
        )
        assert (messages[1]["content"][0]["id"], messages[2]["content"][0]["tool_use_id"]) == ("call_1_x", "call_1_x")

    def test_consecutive_tool_results_merged(self) -> None:
        """Consecutive tool results become one user message with one tool_result block each."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("a"), _call("b"), _call("c")]},
            {"role": "tool", "tool_call_id": "a", "content": "ra"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "rb"}]},
            {"role": "tool", "tool_call_id": "c", "content": "rc"},
        )
        assert messages[2:] == [
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "ra"},
                    {"type": "tool_result", "tool_use_id": "b", "content": [_text("rb")]},
                    {"type": "tool_result", "tool_use_id": "c", "content": "rc"},
                ],
            }
        ]

    def test_merged_committed_tool_results(self) -> None:
        """Tool results committed one by one are merged in the history, marker on the last block."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "user", "content": "go"})
        manager.append({"role": "assistant", "content": None, "tool_calls": [_call("a"), _call("b")]})
        manager.append({"role": "tool", "tool_call_id": "a", "content": "ra"})
        manager.append({"role": "tool", "tool_call_id": "b", "content": "rb"})
        assert manager.build_request()["messages"][2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "ra"},
                {"type": "tool_result", "tool_use_id": "b", "content": "rb", "cache_control": EPHEMERAL},
            ],
        }

    def test_user_text_not_merged_with_tool_results(self) -> None:
        """A user text after tool results stays its own message."""
        messages = self._messages(
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("a")]},
            {"role": "tool", "tool_call_id": "a", "content": "ra"},
            {"role": "user", "content": "and?"},
        )
        assert messages[2:] == [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "ra"}]},
            {"role": "user", "content": [_text("and?")]},
        ]

    def test_leading_user_message(self) -> None:
        """A conversation starting with the assistant gets a leading user turn, marker after it."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "assistant", "content": "Welcome!"})
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_request()["messages"] == [
            {"role": "user", "content": [_text("(The conversation starts.)")]},
            {"role": "assistant", "content": [_text("Welcome!")]},
            {"role": "user", "content": [_text("hi", EPHEMERAL)]},
        ]

    def test_custom_leading_user_text(self) -> None:
        """leading_user_text words the leading user turn."""
        messages = self._messages({"role": "assistant", "content": "Welcome!"}, leading_user_text="(call connected)")
        assert messages[0] == {"role": "user", "content": [_text("(call connected)")]}

    def test_no_leading_user_when_context_first(self) -> None:
        """With no history, a dynamic context (a user message) needs no leading user turn."""
        manager = _manager(transition_mode="manual")
        manager.append({"role": "assistant", "content": "Welcome!"})
        assert manager.build_request(dynamic_context="ctx")["messages"] == [
            {"role": "user", "content": [_text("<context>\nctx\n</context>")]},
            {"role": "assistant", "content": [_text("Welcome!")]},
        ]

    def test_mid_conversation_system_message(self) -> None:
        """A system message inside the conversation becomes a user text "<system>\\n...\\n</system>"."""
        messages = self._messages({"role": "user", "content": "hi"}, {"role": "system", "content": "Be formal."})
        assert messages[1] == {"role": "user", "content": [_text("<system>\nBe formal.\n</system>")]}

    def test_mid_conversation_developer_message(self) -> None:
        """A developer message becomes a user text "<developer>\\n...\\n</developer>"."""
        messages = self._messages({"role": "user", "content": "hi"}, {"role": "developer", "content": "Be formal."})
        assert messages[1] == {"role": "user", "content": [_text("<developer>\nBe formal.\n</developer>")]}

    def test_dynamic_template(self) -> None:
        """dynamic_template words the context block."""
        manager = _manager(adapter=_adapter(dynamic_template="CTX: {context}"))
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_messages("x")[0] == {"role": "user", "content": [_text("CTX: x")]}

    def test_image_parts(self) -> None:
        """image_url parts become image blocks: https URLs as url sources, data: URLs as base64."""
        messages = self._messages(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            }
        )
        assert messages == [
            {
                "role": "user",
                "content": [
                    _text("Compare these."),
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                ],
            }
        ]

    def test_empty_text_becomes_placeholder(self) -> None:
        """An empty message gets a "(empty)" text block (Anthropic refuses empty content)."""
        messages = self._messages({"role": "user", "content": ""})
        assert messages == [{"role": "user", "content": [_text("(empty)")]}]


class TestLookback:
    """The third breakpoint at the previous request's history end."""

    def _start(self) -> PromptManager:
        manager = _manager()
        manager.append({"role": "user", "content": "hi"})
        manager.append({"role": "assistant", "content": "hello"})
        manager.build_request()
        manager.append({"role": "user", "content": "go"})
        return manager

    def test_marker_after_twenty_blocks(self) -> None:
        """After 20 blocks (user, 9 tool_use, 9 tool_result, answer) the previous end is marked too."""
        manager = self._start()
        _tool_cycle(manager, 9)
        manager.append({"role": "assistant", "content": "done"})
        request = manager.build_request()
        assert [len(m["content"]) for m in request["messages"]] == [1, 1, 1, 9, 9, 1]
        assert _marks(request) == [("system", 0), (1, 0), (5, 0)]
        assert request["messages"][1]["content"][0] == _text("hello", EPHEMERAL)

    def test_marker_after_twelve_tool_calls(self) -> None:
        """An assistant turn with 12 tool calls and 12 results (26 blocks) adds the lookback marker."""
        manager = self._start()
        _tool_cycle(manager, 12)
        manager.append({"role": "assistant", "content": "done"})
        assert _marks(manager.build_request()) == [("system", 0), (1, 0), (5, 0)]

    def test_no_marker_after_nineteen_blocks(self) -> None:
        """After 19 blocks (user, text + 8 tool_use, 8 tool_result, answer) no lookback marker is placed."""
        manager = self._start()
        _tool_cycle(manager, 8, text="Checking.")
        manager.append({"role": "assistant", "content": "done"})
        request = manager.build_request()
        assert [len(m["content"]) for m in request["messages"]] == [1, 1, 1, 9, 8, 1]
        assert _marks(request) == [("system", 0), (5, 0)]

    def test_no_marker_for_a_short_turn(self) -> None:
        """A plain exchange adds no lookback marker."""
        manager = self._start()
        manager.append({"role": "assistant", "content": "done"})
        assert _marks(manager.build_request()) == [("system", 0), (3, 0)]

    def test_marker_inside_merged_tool_results(self) -> None:
        """When the previous history ended on merged tool results, the lookback marks that exact block."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "user", "content": "go"})
        _tool_cycle(manager, 2, prefix="a")
        manager.build_request()
        _tool_cycle(manager, 10, prefix="b")
        request = manager.build_request()
        assert _marks(request) == [("system", 0), (2, 1), (4, 9)]

    def test_marker_shifted_by_leading_user(self) -> None:
        """With a leading user turn inserted, the lookback position is shifted by one message."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "assistant", "content": "Welcome!"})
        manager.build_request()
        manager.append({"role": "user", "content": "go"})
        _tool_cycle(manager, 10)
        request = manager.build_request()
        assert (request["messages"][0], _marks(request)) == (
            {"role": "user", "content": [_text("(The conversation starts.)")]},
            [("system", 0), (1, 0), (4, 9)],
        )

    def test_marker_gone_on_the_next_build(self) -> None:
        """The next build with nothing new marks only the static part and the history end."""
        manager = self._start()
        _tool_cycle(manager, 9)
        manager.append({"role": "assistant", "content": "done"})
        manager.build_request()
        assert _marks(manager.build_request()) == [("system", 0), (5, 0)]

    def test_marking_leaves_earlier_requests_unchanged(self) -> None:
        """Placing markers copies blocks: an earlier request keeps exactly its own markers."""
        manager = _manager()
        manager.append({"role": "user", "content": "hi"})
        manager.append({"role": "assistant", "content": "hello"})
        first = manager.build_request()
        snapshot = copy.deepcopy(first)
        manager.append({"role": "user", "content": "go"})
        _tool_cycle(manager, 10)
        manager.append({"role": "assistant", "content": "done"})
        manager.build_request()
        assert first == snapshot

    def test_functional_state_carries_the_mark(self) -> None:
        """A stateless caller keeping the returned state gets the same lookback marker."""
        adapter = _adapter()
        state = fn.new_state("Be brief.", session_id="s1")
        state = fn.append_messages(state, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}])
        state = fn.build_request(state, adapter).state
        calls = [_call(f"c{i}") for i in range(10)]
        state = fn.append_messages(
            state,
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                *({"role": "tool", "tool_call_id": f"c{i}", "content": "r"} for i in range(10)),
                {"role": "assistant", "content": "done"},
            ],
        )
        assert _marks(fn.build_request(state, adapter).payload) == [("system", 0), (1, 0), (5, 0)]

    def test_never_more_than_four_markers(self) -> None:
        """Across a long session of small and large turns no request carries more than 4 markers."""
        manager = _manager(tools=[TOOL])
        counts: list[int] = []
        for turn in range(12):
            manager.append({"role": "user", "content": f"q{turn}"})
            counts.append(json.dumps(manager.build_request(dynamic_context=f"t{turn}")).count("cache_control"))
            _tool_cycle(manager, 3 + 5 * (turn % 3), prefix=f"t{turn}_")
            counts.append(json.dumps(manager.build_request(dynamic_context=f"t{turn}")).count("cache_control"))
            manager.append({"role": "assistant", "content": f"a{turn}"})
        assert (max(counts), 3 in counts) == (3, True)


class TestConfiguration:
    """TTL validation and minimum cacheable lengths."""

    def test_static_ttl_shorter_than_ttl(self) -> None:
        """static_ttl="5m" with ttl="1h" raises ConfigurationError (longer TTLs must come first)."""
        with pytest.raises(ConfigurationError):
            _adapter(ttl="1h", static_ttl="5m")

    def test_invalid_ttl(self) -> None:
        """An unknown ttl raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            _adapter(ttl="10m")

    def test_invalid_static_ttl(self) -> None:
        """An unknown static_ttl raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            _adapter(static_ttl="2h")

    @pytest.mark.parametrize(
        ("model", "tokens"),
        [
            ("claude-haiku-4-5", 4096),
            ("claude-sonnet-4-5", 1024),
            ("claude-opus-4-1", 1024),
            ("claude-opus-4-6", 4096),
            ("claude-3-5-haiku-20241022", 2048),
            ("claude-opus-5", 512),
            ("some-unknown-model", 1024),
        ],
    )
    def test_min_cacheable_tokens(self, model: str, tokens: int) -> None:
        """anthropic_min_cacheable_tokens gives the documented minimum per model."""
        assert anthropic_min_cacheable_tokens(model) == tokens

    def test_adapter_min_cacheable_tokens(self) -> None:
        """The adapter takes its model's minimum, reported in cache_prefix."""
        manager = _manager(adapter=_adapter(model="claude-haiku-4-5"), transition_mode="none")
        manager.append({"role": "user", "content": "hi"})
        assert manager.cache_prefix().min_cacheable_tokens == 4096

    def test_prefix_counts_leading_user(self) -> None:
        """cache_prefix counts the inserted leading user turn among the prefix messages."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "assistant", "content": "Welcome!"})
        manager.append({"role": "user", "content": "hi"})
        assert (manager.cache_prefix().messages, manager.cache_prefix().blocks) == (3, 2)


def _start_event() -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
                "output_tokens": 1,
            },
        },
    }


def _delta_event() -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 15},
    }


def _text_delta_event() -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}


def _response(content: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }


class TestUsage:
    """parse_usage and parse_stream_usage."""

    def test_input_includes_cache_reads_and_writes(self) -> None:
        """input 10 + read 100 + write 20 gives Usage(130, 100, 20, output)."""
        response = _response(
            [_text("ok")],
            {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 7},
        )
        assert _adapter().parse_usage(response) == Usage(130, 100, 20, 7)

    def test_missing_cache_fields_are_zero(self) -> None:
        """Without cache fields the cached and written tokens are 0 and the input is input_tokens."""
        assert _adapter().parse_usage(_response([_text("ok")])) == Usage(10, 0, 0, 5)

    def test_sdk_message(self) -> None:
        """An anthropic SDK Message is read through its attributes."""
        response = SDKMessage.model_validate(
            _response(
                [_text("ok")],
                {
                    "input_tokens": 10,
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 20,
                    "output_tokens": 7,
                },
            )
        )
        assert _adapter().parse_usage(response) == Usage(130, 100, 20, 7)

    def test_no_usage(self) -> None:
        """A response without usage gives None."""
        assert _adapter().parse_usage({"content": []}) is None

    def test_stream_dicts(self) -> None:
        """message_start gives the input side, message_delta the final output tokens."""
        events = [_start_event(), _text_delta_event(), _delta_event(), {"type": "message_stop"}]
        assert _adapter().parse_stream_usage(events) == Usage(130, 100, 20, 15)

    def test_stream_sdk_events(self) -> None:
        """The same stream as anthropic SDK event objects gives the same usage."""
        events = [
            RawMessageStartEvent.model_validate(_start_event()),
            RawContentBlockDeltaEvent.model_validate(_text_delta_event()),
            RawMessageDeltaEvent.model_validate(_delta_event()),
        ]
        assert _adapter().parse_stream_usage(events) == Usage(130, 100, 20, 15)

    def test_stream_delta_with_cumulative_input(self) -> None:
        """A message_delta reporting cumulative input and cache counts gives the same totals."""
        delta = _delta_event()
        delta["usage"] = {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 15,
        }
        assert _adapter().parse_stream_usage([_start_event(), delta]) == Usage(130, 100, 20, 15)

    def test_text_event_has_no_usage(self) -> None:
        """A content event carries no usage."""
        assert _adapter().usage_from_chunk(_text_delta_event()) is None


class TestPrewarm:
    """prewarm_request."""

    def test_max_tokens_zero_without_stream(self) -> None:
        """Pre-warm drops stream and sets max_tokens to 0, keeping the prompt."""
        request = {
            "model": MODEL,
            "max_tokens": 256,
            "system": [_text("Be brief.", EPHEMERAL)],
            "messages": [{"role": "user", "content": [_text("hi")]}],
            "stream": True,
        }
        assert _adapter().prewarm_request(request) == {
            "model": MODEL,
            "system": [_text("Be brief.", EPHEMERAL)],
            "messages": [{"role": "user", "content": [_text("hi")]}],
            "max_tokens": 0,
        }


class TestParseMessage:
    """parse_message gives the canonical OpenAI-shaped message."""

    def test_text_and_tool_use(self) -> None:
        """Text blocks join into content and tool_use blocks become tool_calls with JSON arguments."""
        response = _response(
            [
                _text("Let me "),
                _text("check."),
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"order_id": "42", "city": "Zürich"}},
            ]
        )
        assert _adapter().parse_message(response) == {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"order_id":"42","city":"Zürich"}'},
                }
            ],
        }

    def test_tool_use_only(self) -> None:
        """A reply with only tool_use blocks has content None."""
        response = _response([{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}])
        assert _adapter().parse_message(response) == {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        }

    def test_sdk_message(self) -> None:
        """An anthropic SDK Message parses the same way."""
        response = SDKMessage.model_validate(
            _response([_text("Checking."), {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"a": 1}}])
        )
        assert _adapter().parse_message(response) == {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": '{"a":1}'}}
            ],
        }

    def test_round_trip(self) -> None:
        """A parsed tool_use reply appended to the state is sent back as the same tool_use block."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "user", "content": "go"})
        manager.append_response(
            _response([_text("Checking."), {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"a": 1}}])
        )
        manager.append({"role": "tool", "tool_call_id": "toolu_1", "content": "ok"})
        assert manager.build_messages()[1] == {
            "role": "assistant",
            "content": [_text("Checking."), {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"a": 1}}],
        }


class TestRealSDK:
    """The request goes through the real anthropic SDK."""

    def test_system_top_level(self) -> None:
        """The SDK body has the system top-level, only user/assistant messages, and the request's content."""
        manager = _manager(tools=[TOOL])
        manager.append({"role": "user", "content": "Where is order 42?"})
        manager.append({"role": "assistant", "content": None, "tool_calls": [_call("call_1", '{"order_id":"42"}')]})
        manager.append({"role": "tool", "tool_call_id": "call_1", "content": "shipped"})
        manager.append({"role": "system", "content": "Be formal."})
        manager.append({"role": "assistant", "content": "It has shipped."})
        request = manager.build_request(dynamic_context="Now: 10:00")
        rec = RecordingClient("anthropic")
        body = json.loads(rec.send(request))
        assert (body["system"], body["messages"], body["tools"]) == (
            request["system"],
            request["messages"],
            request["tools"],
        )
        assert {m["role"] for m in body["messages"]} == {"user", "assistant"}
        assert rec.paths == ["/v1/messages"]

    def test_haiku_request(self) -> None:
        """A claude-haiku-4-5 request with a 1h TTL is accepted by the SDK as is."""
        manager = _manager(adapter=_adapter(model="claude-haiku-4-5", ttl="1h", max_tokens=32))
        manager.append({"role": "user", "content": "hi"})
        request = manager.build_request()
        assert json.loads(RecordingClient("anthropic").send(request)) == request
