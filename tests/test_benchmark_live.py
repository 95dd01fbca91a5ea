"""Live providers, offline: real SDK clients over a mock transport that answers canned SSE streams."""

from __future__ import annotations

import importlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from llmvoice.adapters import OpenAICompatibleAdapter
from llmvoice.benchmark.base import Target
from llmvoice.benchmark.live import LiveProvider, ProviderUnavailable, live_available
from llmvoice.errors import ConfigurationError

pytest.importorskip("openai")
pytest.importorskip("anthropic")


def _http(sdk_name: str) -> Any:
    base = importlib.import_module(f"{sdk_name}._base_client")
    for name in ("httpx2", "httpx"):
        if hasattr(base, name):
            return getattr(base, name)
    raise RuntimeError("no http module")


def _sse_openai(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def _sse_anthropic(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


class _Server:
    """A mock transport answering every request with one canned SSE body, recording the requests."""

    def __init__(self, sdk_name: str, body: bytes) -> None:
        self.http = _http(sdk_name)
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.headers: list[dict[str, str]] = []

        def handle(request: Any) -> Any:
            self.bodies.append(json.loads(bytes(request.content)))
            self.urls.append(str(request.url))
            self.headers.append(dict(request.headers))
            return self.http.Response(200, headers={"content-type": "text/event-stream"}, content=body)

        self.client = self.http.Client(transport=self.http.MockTransport(handle))


def _counter(start: float = 100.0) -> Callable[[], float]:
    """A clock that advances by exactly 1 s per reading."""
    ticks = itertools.count(start)
    return lambda: float(next(ticks))


def _chunk(delta: dict[str, Any] | None, *, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": choices,
        **extra,
    }


OPENAI_USAGE = {
    "prompt_tokens": 2000,
    "completion_tokens": 3,
    "total_tokens": 2003,
    "prompt_tokens_details": {"cached_tokens": 1920},
}
OPENAI_TEXT_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk({}, finish="stop"),
    _chunk(None, usage=OPENAI_USAGE),
]
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


class TestAvailability:
    def test_openai_without_key(self, no_keys: None) -> None:
        target = Target("openai", "gpt-4o-mini")
        assert live_available(target) == "set OPENAI_API_KEY to run --provider openai"
        with pytest.raises(ProviderUnavailable, match="set OPENAI_API_KEY to run --provider openai"):
            LiveProvider(target)

    def test_anthropic_without_key(self, no_keys: None) -> None:
        target = Target("anthropic", "claude-sonnet-4-6")
        assert live_available(target) == "set ANTHROPIC_API_KEY to run --provider anthropic"
        with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
            LiveProvider(target)

    def test_key_from_env_or_argument(self, no_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
        target = Target("openai", "gpt-4o-mini")
        assert live_available(target, api_key="sk-x") is None
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        assert live_available(target) is None
        assert LiveProvider(target).client.api_key == "sk-env"

    def test_compatible_needs_no_key(self, no_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
        target = Target("openai-compatible", "m", base_url="http://127.0.0.1:9/v1")
        assert live_available(target) is None
        monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
        provider = LiveProvider(target)
        assert provider.client.api_key == "none"  # the OpenAI key is not sent to another server
        assert LiveProvider(target, api_key="local-key").client.api_key == "local-key"
        assert str(provider.client.base_url).startswith("http://127.0.0.1:9/v1")

    def test_local_is_not_live(self) -> None:
        reason = live_available(Target("local", "m"))
        assert reason is not None and "LocalEngine" in reason

    def test_missing_sdk(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openai" else real(name, *a))
        reason = live_available(Target("openai", "gpt-4o-mini"), api_key="sk-x")
        assert reason == "the openai package is not installed: pip install 'llmvoice[openai]'"

    def test_error_is_a_subclass(self) -> None:
        assert issubclass(ProviderUnavailable, ConfigurationError)


class TestOpenAI:
    def _provider(self, chunks: list[dict[str, Any]], target: Target | None = None) -> tuple[LiveProvider, _Server]:
        server = _Server("openai", _sse_openai(chunks))
        provider = LiveProvider(
            target or Target("openai", "gpt-4o-mini"), api_key="sk-test", http_client=server.client, clock=_counter()
        )
        return provider, server

    def test_ttft_is_first_content_not_role_chunk(self) -> None:
        provider, server = self._provider(OPENAI_TEXT_STREAM)
        result = provider.send(REQUEST, now=5.0)
        # clock: 100 before the call, then 101 (role chunk), 102 (first content)
        assert result.ttft_s == 2.0
        body = server.bodies[-1]
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert body["max_tokens"] == 20
        assert body["messages"] == REQUEST["messages"]
        assert server.urls[-1].endswith("/chat/completions")

    def test_role_and_content_in_one_chunk(self) -> None:
        provider, _ = self._provider([_chunk({"role": "assistant", "content": "Hi"}), _chunk(None, usage=OPENAI_USAGE)])
        assert provider.send(REQUEST, now=0).ttft_s == 1.0

    def test_tool_call_counts_as_output(self) -> None:
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
        chunks = [
            _chunk({"role": "assistant", "content": None}),
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"tool_calls": [call]}),
            _chunk({}, finish="tool_calls"),
            _chunk(None, usage=OPENAI_USAGE),
        ]
        provider, _ = self._provider(chunks)
        assert provider.send(REQUEST, now=0).ttft_s == 3.0

    def test_usage_and_cost(self) -> None:
        provider, _ = self._provider(OPENAI_TEXT_STREAM)
        result = provider.send(REQUEST, now=0)
        assert (result.input_tokens, result.cached_tokens, result.cache_write_tokens) == (2000, 1920, 0)
        assert result.response["model"] == "gpt-4o-mini"
        assert result.response["usage"]["prompt_tokens_details"]["cached_tokens"] == 1920
        # gpt-4o-mini: 0.15 / 0.075 (cached) / 0.60 per million
        assert result.cost_usd == pytest.approx((80 * 0.15 + 1920 * 0.075 + 3 * 0.60) * 1e-6)

    def test_caller_stream_options_are_replaced(self) -> None:
        provider, server = self._provider(OPENAI_TEXT_STREAM)
        provider.send({**REQUEST, "stream": False, "stream_options": {"include_usage": False}}, now=0)
        assert server.bodies[-1]["stream"] is True
        assert server.bodies[-1]["stream_options"] == {"include_usage": True}

    def test_no_output_chunk_ttft_is_end_of_stream(self) -> None:
        provider, _ = self._provider([_chunk({"role": "assistant"}), _chunk({}, finish="stop")])
        result = provider.send(REQUEST, now=0)
        assert result.ttft_s == 2.0
        assert (result.input_tokens, result.cached_tokens) == (0, 0)

    def test_llamacpp_server_timings(self) -> None:
        chunks = [
            _chunk({"role": "assistant", "content": "Hi"}),
            _chunk({}, finish="stop", timings={"cache_n": 500, "prompt_n": 20, "prompt_ms": 150.0}),
        ]
        target = Target("llamacpp", "smol", base_url="http://127.0.0.1:8080/v1")
        provider, server = self._provider(chunks, target)
        result = provider.send(REQUEST, now=0)
        assert (result.input_tokens, result.cached_tokens, result.cost_usd) == (520, 500, 0.0)
        assert result.response["timings"]["cache_n"] == 500
        usage = OpenAICompatibleAdapter("http://x/v1", "m", server="llamacpp").parse_usage(result.response)
        assert usage is not None and usage.cached_tokens == 500
        assert server.urls[-1] == "http://127.0.0.1:8080/v1/chat/completions"

    def test_compatible_cost_is_zero(self) -> None:
        target = Target("openai-compatible", "gpt-4o-mini", base_url="http://127.0.0.1:8000/v1")
        provider, _ = self._provider(OPENAI_TEXT_STREAM, target)
        result = provider.send(REQUEST, now=0)
        assert result.cost_usd == 0.0
        assert result.cached_tokens == 1920

    def test_http_error_raises(self) -> None:
        http = _http("openai")
        client = http.Client(transport=http.MockTransport(lambda request: http.Response(500, json={"error": {}})))
        provider = LiveProvider(Target("openai", "gpt-4o-mini"), api_key="k", http_client=client)
        openai = importlib.import_module("openai")
        with pytest.raises(openai.APIStatusError):
            provider.send(REQUEST, now=0)

    def test_reset_is_a_no_op(self) -> None:
        provider, _ = self._provider(OPENAI_TEXT_STREAM)
        provider.reset()
        assert provider.name == "openai"


ANTHROPIC_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "output_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
        },
    },
}
ANTHROPIC_END = [
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    },
    {"type": "message_stop"},
]
ANTHROPIC_TEXT = [
    ANTHROPIC_START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    *ANTHROPIC_END,
]
ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-6",
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}


class TestAnthropic:
    def _provider(self, events: list[dict[str, Any]]) -> tuple[LiveProvider, _Server]:
        server = _Server("anthropic", _sse_anthropic(events))
        target = Target("anthropic", "claude-sonnet-4-6")
        return LiveProvider(target, api_key="sk-ant", http_client=server.client, clock=_counter(0.0)), server

    def test_ttft_is_first_text_delta(self) -> None:
        provider, server = self._provider(ANTHROPIC_TEXT)
        result = provider.send(ANTHROPIC_REQUEST, now=0)
        # clock: 0 before the call, 1 message_start, 2 empty text block start, 3 first text delta
        assert result.ttft_s == 3.0
        body = server.bodies[-1]
        assert body["stream"] is True
        assert body["max_tokens"] == 64
        assert body["system"] == ANTHROPIC_REQUEST["system"]
        assert server.urls[-1].endswith("/v1/messages")

    def test_request_max_tokens_wins(self) -> None:
        provider, server = self._provider(ANTHROPIC_TEXT)
        provider.send({**ANTHROPIC_REQUEST, "max_tokens": 7}, now=0)
        assert server.bodies[-1]["max_tokens"] == 7

    def test_tool_use_block_counts_as_output(self) -> None:
        events = [
            ANTHROPIC_START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}},
            },
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
            *ANTHROPIC_END,
        ]
        provider, _ = self._provider(events)
        assert provider.send(ANTHROPIC_REQUEST, now=0).ttft_s == 2.0

    def test_usage_and_cost(self) -> None:
        provider, _ = self._provider(ANTHROPIC_TEXT)
        result = provider.send(ANTHROPIC_REQUEST, now=0)
        assert (result.input_tokens, result.cached_tokens, result.cache_write_tokens) == (2110, 2000, 100)
        assert result.response["usage"]["output_tokens"] == 5
        assert result.response["usage"]["cache_read_input_tokens"] == 2000
        # Sonnet 4.6: $3 input, $15 output; reads 0.1x, 5-minute writes 1.25x
        assert result.cost_usd == pytest.approx(((10 + 2000 * 0.1 + 100 * 1.25) * 3.0 + 5 * 15.0) * 1e-6)

    def test_one_hour_writes_cost_double(self) -> None:
        start = json.loads(json.dumps(ANTHROPIC_START))
        start["message"]["usage"]["cache_creation"] = {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60}
        provider, _ = self._provider([start, *ANTHROPIC_TEXT[1:]])
        result = provider.send(ANTHROPIC_REQUEST, now=0)
        expected = (10 + 2000 * 0.1 + 40 * 1.25 + 60 * 2.0) * 3.0 + 5 * 15.0
        assert result.cost_usd == pytest.approx(expected * 1e-6)
