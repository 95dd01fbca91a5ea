"""Unit tests for llmvoice.adapters.openai.OpenAIAdapter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llmvoice.adapters import OpenAIAdapter, Usage
from llmvoice.errors import AdapterError
from llmvoice.manager import PromptManager
from llmvoice.testing import RecordingClient
from llmvoice.tokens import EstimateCounter

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Find an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"order_id":"42"}'}}


def _adapter(**options: Any) -> OpenAIAdapter:
    return OpenAIAdapter("gpt-4o-mini", counter=EstimateCounter(4.0), **options)


def _manager(adapter: OpenAIAdapter | None = None, **options: Any) -> PromptManager:
    return PromptManager("Be brief.", adapter=adapter or _adapter(), session_id="s1", **options)


def _conversation(adapter: OpenAIAdapter | None = None) -> PromptManager:
    """System, a committed tool cycle, and a new user turn in recent."""
    manager = _manager(adapter, tools=[TOOL])
    manager.append({"role": "user", "content": "Where is order 42?"})
    manager.append({"role": "assistant", "content": None, "tool_calls": [CALL]})
    manager.append({"role": "tool", "tool_call_id": "call_1", "content": "shipped"})
    manager.append({"role": "assistant", "content": "It has shipped."})
    manager.append({"role": "user", "content": "Thanks!"})
    return manager


HISTORY = [
    {"role": "user", "content": "Where is order 42?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "content": "shipped", "tool_call_id": "call_1"},
    {"role": "assistant", "content": "It has shipped."},
]


def _completion(message: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }


def _chunk(content: str | None, usage: dict[str, Any] | None = None) -> ChatCompletionChunk:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": choices,
            "usage": usage,
        }
    )


class TestRequest:
    """The exact request for a conversation."""

    def test_conversation_with_tools_and_context(self) -> None:
        """System → history → dynamic context (role system) → recent, tools and the session's cache key."""
        assert _conversation().build_request(dynamic_context="Now: 10:00") == {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                *HISTORY,
                {"role": "system", "content": "Now: 10:00"},
                {"role": "user", "content": "Thanks!"},
            ],
            "tools": [TOOL],
            "prompt_cache_key": "s1",
        }

    def test_dynamic_role_developer(self) -> None:
        """dynamic_role="developer" sends the dynamic context as a developer message."""
        request = _conversation(_adapter(dynamic_role="developer")).build_request(dynamic_context="Now: 10:00")
        assert request["messages"][-2:] == [
            {"role": "developer", "content": "Now: 10:00"},
            {"role": "user", "content": "Thanks!"},
        ]

    def test_dynamic_template(self) -> None:
        """dynamic_template words the dynamic context."""
        request = _conversation(_adapter(dynamic_template="[{context}]")).build_request(dynamic_context="x")
        assert request["messages"][-2] == {"role": "system", "content": "[x]"}

    def test_system_role_developer(self) -> None:
        """system_role="developer" sends the static prompt as a developer message."""
        manager = _manager(_adapter(system_role="developer"))
        manager.append({"role": "user", "content": "hi"})
        assert manager.build_request() == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "prompt_cache_key": "s1",
        }

    def test_invalid_system_role(self) -> None:
        """An unknown system_role raises AdapterError."""
        with pytest.raises(AdapterError):
            _adapter(system_role="user")

    def test_mid_conversation_system_message_kept(self) -> None:
        """A system message inside the conversation is sent as it is."""
        manager = _manager(transition_mode="none")
        manager.append({"role": "system", "content": "Be formal now."})
        assert manager.build_request()["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Be formal now."},
        ]


class TestCacheOptions:
    """prompt_cache_key and prompt_cache_retention."""

    def _request(self, adapter: OpenAIAdapter) -> dict[str, Any]:
        manager = _manager(adapter)
        manager.append({"role": "user", "content": "hi"})
        return manager.build_request()

    def test_default_key_is_the_session_id(self) -> None:
        """By default prompt_cache_key is the state's session id."""
        assert self._request(_adapter())["prompt_cache_key"] == "s1"

    def test_explicit_key(self) -> None:
        """An explicit key is sent as given."""
        assert self._request(_adapter(prompt_cache_key="tenant-7"))["prompt_cache_key"] == "tenant-7"

    def test_no_key(self) -> None:
        """prompt_cache_key=None sends no key at all."""
        assert self._request(_adapter(prompt_cache_key=None)) == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        }

    def test_retention_24h(self) -> None:
        """prompt_cache_retention="24h" is sent after the key."""
        assert self._request(_adapter(prompt_cache_retention="24h")) == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "prompt_cache_key": "s1",
            "prompt_cache_retention": "24h",
        }

    def test_retention_in_memory(self) -> None:
        """prompt_cache_retention="in_memory" is accepted and sent."""
        assert self._request(_adapter(prompt_cache_retention="in_memory"))["prompt_cache_retention"] == "in_memory"

    def test_no_retention_by_default(self) -> None:
        """Without a retention the key is absent."""
        assert "prompt_cache_retention" not in self._request(_adapter())

    def test_invalid_retention(self) -> None:
        """An unknown retention raises AdapterError."""
        with pytest.raises(AdapterError):
            _adapter(prompt_cache_retention="1h")


class TestStreamAndOptions:
    """Streaming keys and extra options."""

    def _manager(self) -> PromptManager:
        manager = _manager(_adapter(prompt_cache_key=None))
        manager.append({"role": "user", "content": "hi"})
        return manager

    def test_stream_true(self) -> None:
        """stream=True adds stream_options with include_usage."""
        assert self._manager().build_request(stream=True) == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def test_stream_false(self) -> None:
        """stream=False adds only stream False."""
        assert self._manager().build_request(stream=False) == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "stream": False,
        }

    def test_stream_none(self) -> None:
        """Without stream no streaming key is added."""
        request = self._manager().build_request()
        assert ("stream" in request, "stream_options" in request) == (False, False)

    def test_extra_options_pass_through(self) -> None:
        """temperature and max_completion_tokens pass through after the prompt."""
        assert self._manager().build_request(temperature=0.2, max_completion_tokens=50) == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "max_completion_tokens": 50,
        }


class TestUsage:
    """parse_usage and parse_stream_usage."""

    def test_dict_with_cached_tokens(self) -> None:
        """A dict response gives prompt, cached and completion tokens."""
        response = _completion(
            {"role": "assistant", "content": "ok"},
            {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920},
            },
        )
        assert _adapter().parse_usage(response) == Usage(2006, 1920, None, 300)

    def test_dict_without_details(self) -> None:
        """Without prompt_tokens_details the cached tokens are unknown (None), not 0."""
        response = _completion({"role": "assistant", "content": "ok"})
        assert _adapter().parse_usage(response) == Usage(10, None, None, 2)

    def test_dict_without_usage(self) -> None:
        """A response without usage gives None."""
        assert _adapter().parse_usage({"choices": []}) is None

    def test_sdk_chat_completion(self) -> None:
        """An openai SDK ChatCompletion object is read through its attributes."""
        response = ChatCompletion.model_validate(
            _completion(
                {"role": "assistant", "content": "ok"},
                {
                    "prompt_tokens": 1500,
                    "completion_tokens": 20,
                    "total_tokens": 1520,
                    "prompt_tokens_details": {"cached_tokens": 1280, "audio_tokens": 0},
                },
            )
        )
        assert _adapter().parse_usage(response) == Usage(1500, 1280, None, 20)

    def test_stream_usage_on_the_final_chunk(self) -> None:
        """Only the final chunk carries usage, and parse_stream_usage returns it."""
        chunks = [
            _chunk("Hel"),
            _chunk("lo"),
            _chunk(
                None,
                {
                    "prompt_tokens": 1200,
                    "completion_tokens": 2,
                    "total_tokens": 1202,
                    "prompt_tokens_details": {"cached_tokens": 1152},
                },
            ),
        ]
        adapter = _adapter()
        assert [adapter.usage_from_chunk(c) for c in chunks[:2]] == [None, None]
        assert adapter.parse_stream_usage(chunks) == Usage(1200, 1152, None, 2)

    def test_stream_without_usage(self) -> None:
        """A stream without include_usage gives None."""
        assert _adapter().parse_stream_usage([_chunk("Hel"), _chunk("lo")]) is None


class TestPrewarm:
    """prewarm_request."""

    def test_drops_stream_and_limits_output(self) -> None:
        """Stream keys and max_tokens go; max_completion_tokens becomes 1; the rest is kept."""
        request = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "prompt_cache_key": "s1",
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 100,
            "max_completion_tokens": 200,
            "temperature": 0.2,
        }
        assert _adapter().prewarm_request(request) == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "prompt_cache_key": "s1",
            "temperature": 0.2,
            "max_completion_tokens": 1,
        }

    def test_does_not_change_the_request(self) -> None:
        """The request given is left unchanged."""
        request = {"model": "gpt-4o-mini", "messages": [], "stream": True}
        _adapter().prewarm_request(request)
        assert request == {"model": "gpt-4o-mini", "messages": [], "stream": True}


class TestParseMessage:
    """parse_message."""

    def test_text(self) -> None:
        """A text reply becomes {"role": "assistant", "content": text}."""
        response = _completion({"role": "assistant", "content": "Hello."})
        assert _adapter().parse_message(response) == {"role": "assistant", "content": "Hello."}

    def test_tool_calls_dict(self) -> None:
        """Tool calls of a dict response are kept in the OpenAI shape."""
        response = _completion({"role": "assistant", "content": None, "tool_calls": [CALL]})
        assert _adapter().parse_message(response) == {"role": "assistant", "content": None, "tool_calls": [CALL]}

    def test_tool_calls_sdk_object(self) -> None:
        """Tool calls of an SDK ChatCompletion become plain dicts."""
        second = {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        response = ChatCompletion.model_validate(
            _completion({"role": "assistant", "content": "Checking.", "tool_calls": [CALL, second]})
        )
        assert _adapter().parse_message(response) == {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [CALL, second],
        }

    def test_parsed_message_appends(self) -> None:
        """The parsed message can be appended and is sent back unchanged."""
        manager = _manager(transition_mode="none", tools=[TOOL])
        manager.append({"role": "user", "content": "Where is order 42?"})
        manager.append_response(_completion({"role": "assistant", "content": None, "tool_calls": [CALL]}))
        manager.append({"role": "tool", "tool_call_id": "call_1", "content": "shipped"})
        assert manager.build_request()["messages"][1:] == HISTORY[:3]

    def test_no_choices(self) -> None:
        """A response without choices raises AdapterError."""
        with pytest.raises(AdapterError):
            _adapter().parse_message({"choices": []})


class TestRealSDK:
    """The request is accepted by the real openai SDK."""

    def test_sdk_sends_the_messages(self) -> None:
        """The body the SDK sends holds exactly the request's messages, tools and cache key."""
        request = _conversation(_adapter(prompt_cache_retention="24h")).build_request(
            dynamic_context="Now: 10:00", stream=False, temperature=0.2
        )
        rec = RecordingClient("openai")
        body = json.loads(rec.send(request))
        assert body == request
        assert rec.paths == ["/v1/chat/completions"]

    def test_sdk_parses_the_response(self) -> None:
        """The SDK's response object parses into a message and usage."""
        manager = _conversation()
        rec = RecordingClient("openai")
        response = rec.client.chat.completions.create(**manager.build_request())
        adapter = manager.adapter
        assert (adapter.parse_message(response), adapter.parse_usage(response)) == (
            {"role": "assistant", "content": "ok"},
            Usage(1, None, None, 1),
        )
