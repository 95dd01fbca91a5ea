"""Unit tests for llmvoice.manager.PromptManager."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmvoice import functional as fn
from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter
from llmvoice.errors import (
    AdapterError,
    ConfigurationError,
    InvalidMessageError,
    StateClosedError,
    ToolCallError,
)
from llmvoice.manager import PromptManager
from llmvoice.messages import Message, ToolCall
from llmvoice.state import State
from llmvoice.testing import RecordingClient

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "Find.", "parameters": {"type": "object", "properties": {}}},
}


def _manager(**options: Any) -> PromptManager:
    options.setdefault("adapter", OpenAIAdapter("gpt-4o"))
    return PromptManager("P", session_id="s1", **options)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _response(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }


class TestInit:
    """Construction."""

    def test_default_adapter(self) -> None:
        """Without an adapter the manager uses OpenAIAdapter for gpt-4o-mini."""
        manager = PromptManager("P")
        assert (type(manager.adapter), manager.adapter.model) == (OpenAIAdapter, "gpt-4o-mini")

    def test_state_from_options(self) -> None:
        """The options build the same state as functional.new_state."""
        manager = PromptManager("P", tools=[TOOL], transition_mode="manual", dynamic_mode="append", session_id="s1")
        assert manager.state == fn.new_state(
            "P", tools=[TOOL], transition_mode="manual", dynamic_mode="append", session_id="s1"
        )

    def test_given_state_is_used(self) -> None:
        """A state passed in is used as is."""
        state = fn.new_state("Q", session_id="s2")
        assert PromptManager(state=state).state is state

    def test_bad_adapter(self) -> None:
        """An adapter that is not a ProviderAdapter raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            PromptManager("P", adapter="openai")  # type: ignore[arg-type]

    def test_bad_state(self) -> None:
        """A state that is not a State raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            PromptManager(state={"version": 1})  # type: ignore[arg-type]

    def test_bad_mode(self) -> None:
        """An unknown mode raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            PromptManager("P", dynamic_mode="prepend")


class TestChaining:
    """Mutating methods return the manager itself."""

    def test_append_returns_self(self) -> None:
        """append returns the manager."""
        manager = _manager()
        assert manager.append({"role": "user", "content": "hi"}) is manager

    def test_append_many_returns_self(self) -> None:
        """append_many returns the manager."""
        manager = _manager()
        assert manager.append_many([{"role": "user", "content": "hi"}]) is manager

    def test_transition_returns_self(self) -> None:
        """transition returns the manager."""
        manager = _manager(transition_mode="manual")
        assert manager.transition() is manager

    def test_close_returns_self(self) -> None:
        """close returns the manager."""
        manager = _manager()
        assert manager.close() is manager

    def test_chain(self) -> None:
        """A chain of calls applies every step in order."""
        manager = (
            _manager(transition_mode="manual")
            .append({"role": "user", "content": "hi"})
            .append_many([{"role": "assistant", "content": "hello"}])
            .transition()
            .close()
        )
        assert list(manager.state.committed) == [Message("user", "hi", id=0), Message("assistant", "hello", id=1)]
        assert (manager.state.recent, manager.state.closed) == ((), True)

    def test_closed_manager_refuses(self) -> None:
        """Appending after close raises StateClosedError."""
        manager = _manager().close()
        with pytest.raises(StateClosedError):
            manager.append({"role": "user", "content": "hi"})


class TestBuild:
    """build_request and build_messages."""

    def test_stream_request(self) -> None:
        """build_request(stream=True) for OpenAI adds stream and stream_options with include_usage."""
        manager = _manager().append({"role": "user", "content": "hi"})
        assert manager.build_request("ctx", stream=True) == {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "P"},
                {"role": "system", "content": "ctx"},
                {"role": "user", "content": "hi"},
            ],
            "prompt_cache_key": "s1",
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def test_stream_false(self) -> None:
        """build_request(stream=False) sends stream False without stream_options."""
        manager = _manager().append({"role": "user", "content": "hi"})
        request = manager.build_request(stream=False, temperature=0)
        assert {k: request[k] for k in ("stream", "temperature")} == {"stream": False, "temperature": 0}
        assert "stream_options" not in request

    def test_build_messages(self) -> None:
        """build_messages returns exactly the message list."""
        manager = _manager().append_many([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
        assert manager.build_messages("ctx") == [
            {"role": "system", "content": "P"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
            {"role": "system", "content": "ctx"},
        ]

    def test_build_keeps_marked_state(self) -> None:
        """build_request stores the state with built_committed updated."""
        manager = _manager().append_many([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
        manager.append({"role": "user", "content": "again"})
        manager.build_request()
        assert manager.state.built_committed == 2

    def test_append_mode_context_kept(self) -> None:
        """In append mode the context event is kept in the manager's state, after the turn's message."""
        manager = _manager(dynamic_mode="append").append({"role": "user", "content": "hi"})
        manager.build_request("ctx")
        assert manager.state.recent[-1] == Message("system", "ctx", id=1, kind="context")

    def test_anthropic_adapter(self) -> None:
        """The manager builds with any ProviderAdapter, here Anthropic's system layout."""
        manager = PromptManager("P", adapter=AnthropicAdapter("claude-sonnet-4-5"), session_id="s1")
        manager.append({"role": "user", "content": "hi"})
        request = manager.build_request()
        assert (request["model"], request["messages"][-1]["role"]) == ("claude-sonnet-4-5", "user")


class TestAtomicFailure:
    """A failing call leaves the manager's state untouched."""

    def test_failing_append(self) -> None:
        """An invalid message leaves manager.state the same object."""
        manager = _manager().append({"role": "user", "content": "hi"})
        before = manager.state
        with pytest.raises(InvalidMessageError):
            manager.append({"role": "bot", "content": "x"})
        assert manager.state is before

    def test_failing_append_many(self) -> None:
        """A batch with an invalid last message leaves manager.state the same object."""
        manager = _manager()
        before = manager.state
        with pytest.raises(InvalidMessageError) as info:
            manager.append_many([{"role": "user", "content": "a"}, {"role": "user", "content": None}])
        assert (info.value.index, info.value.field, manager.state is before) == (1, "content", True)

    def test_failing_tool_result(self) -> None:
        """An orphan tool result leaves manager.state the same object."""
        manager = _manager().append({"role": "user", "content": "hi"})
        before = manager.state
        with pytest.raises(ToolCallError):
            manager.append({"role": "tool", "content": "x", "tool_call_id": "nope"})
        assert manager.state is before


class TestJson:
    """to_json and from_json."""

    def test_round_trip_state(self) -> None:
        """from_json(to_json()) restores an equal state."""
        manager = _manager(tools=[TOOL]).append_many(
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "?"},
            ]
        )
        manager.build_request("ctx")
        restored = PromptManager.from_json(manager.to_json(), adapter=OpenAIAdapter("gpt-4o"))
        assert restored.state == manager.state

    def test_round_trip_request_bytes(self) -> None:
        """The restored manager sends the same request bytes through the OpenAI SDK."""
        manager = _manager(tools=[TOOL]).append_many(
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "?"},
            ]
        )
        restored = PromptManager.from_json(manager.to_json().encode(), adapter=OpenAIAdapter("gpt-4o"))
        recorder = RecordingClient("openai")
        original_body = recorder.send(manager.build_request("ctx"))
        restored_body = recorder.send(restored.build_request("ctx"))
        assert restored_body == original_body
        assert _dumps(restored.build_request("ctx")) == _dumps(manager.build_request("ctx"))

    def test_to_json_is_functional_dumps(self) -> None:
        """to_json is the functional dumps of the state."""
        manager = _manager().append({"role": "user", "content": "hi"})
        assert manager.to_json() == fn.dumps(manager.state)

    def test_from_json_default_adapter(self) -> None:
        """from_json without an adapter uses the default OpenAIAdapter."""
        restored = PromptManager.from_json(_manager().to_json())
        assert (type(restored.adapter), restored.state.session_id) == (OpenAIAdapter, "s1")


class TestStateProperty:
    """The state property."""

    def test_setter_rejects_non_state(self) -> None:
        """Setting state to something that is not a State raises ConfigurationError and keeps the old state."""
        manager = _manager()
        before = manager.state
        with pytest.raises(ConfigurationError):
            manager.state = {"version": 1}  # type: ignore[assignment]
        assert manager.state is before

    def test_setter_restores(self) -> None:
        """Setting an earlier state rolls the manager back to it."""
        manager = _manager()
        checkpoint = manager.state
        manager.append({"role": "user", "content": "hi"})
        manager.state = checkpoint
        assert (manager.state is checkpoint, manager.state.next_id) == (True, 0)


class TestCachePrefix:
    """cache_prefix."""

    def test_report(self) -> None:
        """The report has epoch 0 and system plus committed messages in the prefix."""
        manager = _manager().append_many(
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "?"},
            ]
        )
        report = manager.cache_prefix("ctx")
        history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
        expected_bytes = (
            len(_dumps([[{"role": "system", "content": "P"}], []]))
            + sum(len(_dumps(m)) for m in history)
            + (len(history) - 1)
        )
        assert (report.epoch, report.messages, report.blocks, report.bytes, report.min_cacheable_tokens) == (
            0,
            1 + len(manager.state.committed),
            2,
            expected_bytes,
            1024,
        )

    def test_report_does_not_change_state(self) -> None:
        """cache_prefix leaves the manager's state the same object."""
        manager = _manager().append({"role": "user", "content": "hi"})
        before = manager.state
        manager.cache_prefix("ctx")
        assert manager.state is before


class TestAppendResponse:
    """append_response."""

    def test_tool_call_response(self) -> None:
        """An OpenAI-shaped response with tool calls is appended as the assistant message."""
        manager = _manager().append({"role": "user", "content": "find it"})
        response = _response(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":1}'}}
                ],
            }
        )
        assert manager.append_response(response) is manager
        assert manager.state.recent == (
            Message("user", "find it", id=0),
            Message("assistant", None, (ToolCall("c1", "lookup", '{"q":1}'),), id=1),
        )
        assert manager.state.open_tool_calls == ("c1",)

    def test_text_response_commits(self) -> None:
        """A text response ends the agent cycle and commits the turn."""
        manager = _manager().append({"role": "user", "content": "hi"})
        manager.append_response(_response({"role": "assistant", "content": "Hello!"}))
        assert list(manager.state.committed) == [Message("user", "hi", id=0), Message("assistant", "Hello!", id=1)]

    def test_sdk_response_object(self) -> None:
        """An openai ChatCompletion object is appended like its dict."""
        from openai.types.chat import ChatCompletion

        manager = _manager().append({"role": "user", "content": "hi"})
        manager.append_response(ChatCompletion.model_validate(_response({"role": "assistant", "content": "Hey"})))
        assert manager.state.committed[-1] == Message("assistant", "Hey", id=1)

    def test_response_without_choices(self) -> None:
        """A response without choices raises AdapterError and leaves the state unchanged."""
        manager = _manager().append({"role": "user", "content": "hi"})
        before = manager.state
        with pytest.raises(AdapterError):
            manager.append_response({"choices": []})
        assert manager.state is before


def test_state_is_state_instance() -> None:
    """The manager's state is an llmvoice State."""
    assert isinstance(_manager().state, State)
