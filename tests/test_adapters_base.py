"""Unit tests for llmvoice.adapters.base: the ProviderAdapter machinery shared by every provider."""

from __future__ import annotations

import copy
import json
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from llmvoice import functional as fn
from llmvoice.adapters.base import CachePrefixReport, ProviderAdapter, Usage, get_field
from llmvoice.errors import AdapterError
from llmvoice.messages import Message
from llmvoice.state import State
from llmvoice.tokens import EstimateCounter

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "Find.", "parameters": {"type": "object", "properties": {}}},
}


class PlainAdapter(ProviderAdapter):
    name = "plain"

    def format_message(self, message: Message) -> dict[str, Any]:
        return {"role": message.role, "content": message.text}


class CountingAdapter(PlainAdapter):
    """PlainAdapter that counts format_message calls per (kind, message id)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[tuple[str, int]] = Counter()

    def format_message(self, message: Message) -> dict[str, Any]:
        self.calls[(message.kind, message.id)] += 1
        return super().format_message(message)


def _adapter(cls: type[PlainAdapter] = PlainAdapter) -> PlainAdapter:
    return cls("m", counter=EstimateCounter(4.0))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _state(*messages: dict[str, Any], tools: list[dict[str, Any]] | None = None, mode: str = "none") -> State:
    state = fn.new_state("Be brief.", tools=tools, transition_mode=mode, session_id="s1")
    return fn.append_messages(state, messages)


class TestCustomSubclass:
    """A subclass that implements only format_message."""

    def test_builds_model_and_messages(self) -> None:
        """The request is exactly {"model", "messages"} in system → history → dynamic order."""
        state = _state({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})
        assert _adapter().build_request(state, "ctx") == {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "ctx"},
            ],
        }

    def test_recent_turns_come_after_the_dynamic_context(self) -> None:
        """Uncommitted turns follow the dynamic context."""
        state = _state({"role": "user", "content": "hi"}, mode="agent_cycle")
        assert _adapter().build_request(state, "ctx")["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "ctx"},
            {"role": "user", "content": "hi"},
        ]

    def test_tools_are_added_as_given(self) -> None:
        """Tools go into "tools" unchanged."""
        state = _state({"role": "user", "content": "hi"}, tools=[TOOL])
        assert _adapter().build_request(state) == {
            "model": "m",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "tools": [TOOL],
        }

    def test_stream_and_options_are_appended(self) -> None:
        """stream=True adds only {"stream": True} and extra options pass through."""
        state = _state({"role": "user", "content": "hi"})
        assert _adapter().build_request(state, stream=True, temperature=0.5) == {
            "model": "m",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "stream": True,
            "temperature": 0.5,
        }

    def test_nothing_to_send(self) -> None:
        """A state without prompt, context or turns raises AdapterError."""
        with pytest.raises(AdapterError):
            _adapter().build_request(fn.new_state(session_id="s1"))

    def test_empty_model_is_refused(self) -> None:
        """An empty model name raises AdapterError."""
        with pytest.raises(AdapterError):
            PlainAdapter("", counter=EstimateCounter(4.0))

    def test_template_without_placeholder_is_refused(self) -> None:
        """A dynamic_template without {context} raises AdapterError."""
        with pytest.raises(AdapterError):
            PlainAdapter("m", counter=EstimateCounter(4.0), dynamic_template="ctx")

    def test_default_prewarm(self) -> None:
        """The default pre-warm drops the stream keys and sets max_tokens to 1."""
        request = {"model": "m", "messages": [], "stream": True, "stream_options": {}, "max_tokens": 50}
        assert _adapter().prewarm_request(request) == {"model": "m", "messages": [], "max_tokens": 1}

    def test_default_parse_message(self) -> None:
        """The default parse_message reads the first choice's message."""
        response = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}
        assert _adapter().parse_message(response) == {"role": "assistant", "content": "ok"}

    def test_parse_message_without_choices(self) -> None:
        """A response without choices raises AdapterError."""
        with pytest.raises(AdapterError):
            _adapter().parse_message({"choices": []})


class TestUsage:
    """The normalised Usage record."""

    def test_uncached_tokens(self) -> None:
        """uncached_tokens is input minus cached tokens."""
        assert Usage(130, 100, 20, 5).uncached_tokens == 30

    def test_uncached_tokens_unknown_cache(self) -> None:
        """uncached_tokens is None when cached tokens are unknown."""
        assert Usage(130, None, None, 5).uncached_tokens is None

    def test_uncached_tokens_unknown_input(self) -> None:
        """uncached_tokens is None when input tokens are unknown."""
        assert Usage(None, 100, None, 5).uncached_tokens is None

    def test_merge_set_fields_win(self) -> None:
        """merge takes every field the other usage sets and keeps the rest."""
        assert Usage(130, 100, 20, 1).merge(Usage(None, None, None, 15)) == Usage(130, 100, 20, 15)

    def test_merge_overrides_with_zero(self) -> None:
        """A field set to 0 in the other usage still wins (0 is not None)."""
        assert Usage(130, 100, 20, 1).merge(Usage(140, 0, 0, None)) == Usage(140, 0, 0, 1)

    def test_merge_none(self) -> None:
        """merge(None) returns the usage itself."""
        usage = Usage(1, 2, 3, 4)
        assert usage.merge(None) is usage

    def test_default_parse_usage(self) -> None:
        """The default parse_usage reads the OpenAI chat usage fields."""
        response = {
            "usage": {
                "prompt_tokens": 1200,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 64},
            }
        }
        assert _adapter().parse_usage(response) == Usage(1200, 1024, 64, 7)

    def test_default_parse_usage_ignores_bools(self) -> None:
        """Boolean values are not taken as token counts."""
        response = {"usage": {"prompt_tokens": True, "completion_tokens": 7}}
        assert _adapter().parse_usage(response) == Usage(None, None, None, 7)

    def test_parse_stream_usage_without_usage(self) -> None:
        """A stream whose chunks carry no usage gives None."""
        assert _adapter().parse_stream_usage([{"usage": None}, {}]) is None


class TestGetField:
    """get_field reads nested dicts and attributes alike."""

    def test_dict_path(self) -> None:
        """A dict path is followed key by key."""
        assert get_field({"a": {"b": 3}}, "a", "b") == 3

    def test_object_path(self) -> None:
        """An attribute path is followed attribute by attribute."""
        assert get_field(SimpleNamespace(a=SimpleNamespace(b=3)), "a", "b") == 3

    def test_mixed_path(self) -> None:
        """Objects holding dicts and dicts holding objects both work."""
        assert get_field(SimpleNamespace(a={"b": SimpleNamespace(c=4)}), "a", "b", "c") == 4

    def test_missing_key(self) -> None:
        """A missing key gives None."""
        assert get_field({"a": {}}, "a", "b") is None

    def test_missing_attribute(self) -> None:
        """A missing attribute gives None."""
        assert get_field(SimpleNamespace(), "a") is None

    def test_none_in_the_middle(self) -> None:
        """A None on the way gives None instead of raising."""
        assert get_field({"a": None}, "a", "b", "c") is None


class TestIncrementalFormatting:
    """Committed messages are formatted once and memoised across builds."""

    def test_each_committed_message_formatted_once(self) -> None:
        """Across twenty builds, format_message runs exactly once per committed message."""
        adapter = _adapter(CountingAdapter)
        assert isinstance(adapter, CountingAdapter)
        state = fn.new_state("Be brief.", transition_mode="none", session_id="s1")
        for i in range(10):
            state = fn.append_message(state, {"role": "user", "content": f"q{i}"})
            state = fn.build_request(state, adapter, "ctx").state
            state = fn.append_message(state, {"role": "assistant", "content": f"a{i}"})
            state = fn.build_request(state, adapter, "ctx").state
        assert {k: v for k, v in adapter.calls.items() if k[0] == "message"} == {("message", i): 1 for i in range(20)}

    def test_unchanged_dynamic_context_formatted_once(self) -> None:
        """An unchanged dynamic context is formatted once for all builds."""
        adapter = _adapter(CountingAdapter)
        assert isinstance(adapter, CountingAdapter)
        state = _state({"role": "user", "content": "hi"})
        for _ in range(5):
            state = fn.build_request(state, adapter, "ctx").state
        assert adapter.calls[("context", -1)] == 1

    def test_changed_dynamic_context_is_reformatted(self) -> None:
        """A new dynamic context text is formatted anew and sent."""
        adapter = _adapter()
        state = _state({"role": "user", "content": "hi"})
        adapter.build_request(state, "old")
        assert adapter.build_request(state, "new")["messages"][-1] == {"role": "system", "content": "new"}

    def test_build_does_not_change_the_history_of_earlier_requests(self) -> None:
        """A later build does not change an earlier returned request."""
        adapter = _adapter()
        state = _state({"role": "user", "content": "hi"})
        first = adapter.build_request(state)
        snapshot = copy.deepcopy(first)
        state = fn.append_message(state, {"role": "assistant", "content": "hello"})
        adapter.build_request(state, "ctx")
        assert first == snapshot


class TestRollback:
    """A state rolled back to an earlier point builds the request it built before."""

    def test_rolled_back_state_rebuilds_the_same_request(self) -> None:
        """After the session went on, the earlier State builds exactly its earlier request."""
        adapter = _adapter()
        earlier = _state({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})
        built = fn.build_request(earlier, adapter, "ctx")
        expected = copy.deepcopy(built.payload)
        later = fn.append_messages(
            built.state, [{"role": "user", "content": "more"}, {"role": "assistant", "content": "sure"}]
        )
        fn.build_request(later, adapter, "ctx")
        assert fn.build_request(earlier, adapter, "ctx").payload == expected

    def test_branch_after_rollback_builds_its_own_history(self) -> None:
        """A branch appended to a rolled-back state sends its own messages, not the abandoned ones."""
        adapter = _adapter()
        earlier = _state({"role": "user", "content": "hi"})
        abandoned = fn.append_message(earlier, {"role": "assistant", "content": "A"})
        fn.build_request(abandoned, adapter)
        branch = fn.append_message(earlier, {"role": "assistant", "content": "B"})
        assert fn.build_request(branch, adapter).payload == {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "B"},
            ],
        }

    def test_abandoned_branch_still_builds_after_the_other(self) -> None:
        """Going back to the abandoned branch after the other one was built sends its messages again."""
        adapter = _adapter()
        earlier = _state({"role": "user", "content": "hi"})
        abandoned = fn.append_message(earlier, {"role": "assistant", "content": "A"})
        first = copy.deepcopy(fn.build_request(abandoned, adapter).payload)
        fn.build_request(fn.append_message(earlier, {"role": "assistant", "content": "B"}), adapter)
        assert fn.build_request(abandoned, adapter).payload == first


def _expected_bytes(system: list[dict[str, Any]], tools: list[dict[str, Any]], history: list[dict[str, Any]]) -> int:
    # The static pair is dumped as one JSON array; the history messages are joined by commas.
    static = len(_dumps([system, tools]))
    if not history:
        return static
    return static + len(_dumps(history)) - 2


class TestCachePrefixReport:
    """cache_prefix measures the prefix up to the end of the committed history."""

    # Counter: ceil(chars / 4). Static: "Be brief." 9 chars → 3; TOOL: "lookup" → 2, "Find." → 2.
    # History: "héllo" → 2 + 3 overhead = 5; "hi there" → 2 + 3 = 5. Dynamic "ctx" → 1 + 3 = 4.
    # Recent "again?" → 2 + 3 = 5.
    HISTORY = ({"role": "user", "content": "héllo"}, {"role": "assistant", "content": "hi there"})

    def _state(self) -> State:
        state = _state(*self.HISTORY, tools=[TOOL], mode="agent_cycle")
        return fn.append_message(state, {"role": "user", "content": "again?"})

    def test_report_values(self) -> None:
        """Epoch, messages, blocks, bytes and tokens have the exact expected values."""
        report = _adapter().cache_prefix(self._state(), "ctx")
        assert report == CachePrefixReport(
            epoch=0,
            messages=3,
            blocks=2,
            bytes=_expected_bytes([{"role": "system", "content": "Be brief."}], [TOOL], list(self.HISTORY)),
            tokens=3 + 4 + 5 + 5,
            request_tokens=3 + 4 + 5 + 5 + 4 + 5,
            min_cacheable_tokens=0,
        )

    def test_bytes_count_utf8(self) -> None:
        """bytes counts UTF-8 bytes (é is two bytes), matching the compact JSON of the prefix."""
        report = _adapter().cache_prefix(self._state())
        text = '[[{"role":"system","content":"Be brief."}],[' + json.dumps(TOOL, separators=(",", ":")) + "]]"
        text += '{"role":"user","content":"héllo"},{"role":"assistant","content":"hi there"}'
        assert report.bytes == len(text.encode("utf-8")) == len(text) + 1

    def test_bytes_follow_growth(self) -> None:
        """After more messages are committed, bytes and tokens cover the new history exactly."""
        adapter = _adapter()
        state = _state(*self.HISTORY, tools=[TOOL])
        adapter.cache_prefix(state)
        state = fn.append_messages(
            state, [{"role": "user", "content": "one more"}, {"role": "assistant", "content": "ok"}]
        )
        history = [*self.HISTORY, {"role": "user", "content": "one more"}, {"role": "assistant", "content": "ok"}]
        report = adapter.cache_prefix(state)
        assert (report.messages, report.blocks, report.bytes, report.tokens) == (
            5,
            4,
            _expected_bytes([{"role": "system", "content": "Be brief."}], [TOOL], history),
            3 + 4 + 5 + 5 + (2 + 3) + (1 + 3),
        )

    def test_empty_history(self) -> None:
        """Without committed history the prefix is the static part alone."""
        state = fn.new_state("Be brief.", session_id="s1")
        report = _adapter().cache_prefix(state)
        assert (report.messages, report.blocks, report.bytes, report.tokens) == (
            1,
            0,
            len(_dumps([[{"role": "system", "content": "Be brief."}], []])),
            3,
        )

    def test_functional_cache_prefix(self) -> None:
        """functional.cache_prefix reports the same prefix without a dynamic context."""
        adapter = _adapter()
        state = self._state()
        assert fn.cache_prefix(state, adapter) == adapter.cache_prefix(state)

    def test_cacheable_at_the_minimum(self) -> None:
        """A prefix exactly as long as the minimum is cacheable."""
        adapter = _adapter()
        adapter.min_cacheable_tokens = 17
        assert adapter.cache_prefix(self._state()).cacheable is True

    def test_not_cacheable_below_the_minimum(self) -> None:
        """A prefix one token shorter than the minimum is not cacheable."""
        adapter = _adapter()
        adapter.min_cacheable_tokens = 18
        assert adapter.cache_prefix(self._state()).cacheable is False

    def test_str_cacheable(self) -> None:
        """str() of a cacheable report has no minimum warning."""
        report = CachePrefixReport(2, 3, 2, 250, 1500, 1600, 1024)
        assert str(report) == "epoch 2: cached prefix 3 messages, 250 bytes, 1500 of 1600 tokens"

    def test_str_below_minimum(self) -> None:
        """str() of a report below the minimum names the minimum."""
        report = CachePrefixReport(0, 3, 2, 250, 17, 26, 18)
        assert str(report) == (
            "epoch 0: cached prefix 3 messages, 250 bytes, 17 of 26 tokens (below the 18-token minimum)"
        )


class TestTokenAccessors:
    """static_tokens, history_tokens, committed_tokens and tail_tokens agree with cache_prefix."""

    def test_committed_tokens_per_block(self) -> None:
        """Each committed block: 3 tokens of overhead plus its text at 4 characters a token."""
        state = _state({"role": "user", "content": "abcdefgh"}, {"role": "assistant", "content": "abcd"})
        assert _adapter().committed_tokens(state) == [5, 4]

    def test_history_tokens_is_their_sum(self) -> None:
        """history_tokens is the total of committed_tokens."""
        state = _state({"role": "user", "content": "abcdefgh"}, {"role": "assistant", "content": "abcd"})
        assert _adapter().history_tokens(state) == 9

    def test_tail_tokens_is_what_follows_the_prefix(self) -> None:
        """tail_tokens equals the report's request tokens minus its prefix tokens."""
        state = _state({"role": "user", "content": "abcd"}, mode="manual")
        adapter = _adapter()
        report = adapter.cache_prefix(state, "ctx12345")
        assert (adapter.tail_tokens(state, "ctx12345"), report.request_tokens - report.tokens) == (9, 9)

    def test_tail_message_counted_once(self) -> None:
        """A recent message still in the tail is not counted again on the next call."""
        state = _state({"role": "user", "content": "abcd"}, mode="manual")
        adapter = _adapter()
        counted: list[Any] = []
        original = adapter.count_message_tokens

        def counting(message: Any) -> int:
            counted.append(message)
            return original(message)

        adapter.count_message_tokens = counting  # type: ignore[method-assign]
        adapter.tail_tokens(state)
        adapter.tail_tokens(state)
        assert len(counted) == 1
