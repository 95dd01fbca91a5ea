"""Unit tests for llmvoice.adapters.openai_compatible.OpenAICompatibleAdapter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from llmvoice.adapters import OpenAICompatibleAdapter, Usage
from llmvoice.errors import ConfigurationError
from llmvoice.manager import PromptManager
from llmvoice.testing import RecordingClient
from llmvoice.tokens import EstimateCounter

BASE_URL = "http://127.0.0.1:8000/v1"


def _adapter(**options: Any) -> OpenAICompatibleAdapter:
    options.setdefault("counter", EstimateCounter(4.0))
    return OpenAICompatibleAdapter(options.pop("base_url", BASE_URL), "qwen2.5-7b", **options)


def _request(adapter: OpenAICompatibleAdapter, context: str | None = None, **options: Any) -> dict[str, Any]:
    manager = PromptManager("Be brief.", adapter=adapter, session_id="s1")
    manager.append({"role": "user", "content": "hi"})
    return manager.build_request(dynamic_context=context, **options)


class TestValidation:
    """Constructor checks."""

    def test_http_url_accepted(self) -> None:
        """An http:// base_url is kept as given."""
        assert _adapter().base_url == BASE_URL

    def test_https_url_accepted(self) -> None:
        """An https:// base_url is kept as given."""
        assert _adapter(base_url="https://llm.example.com/v1").base_url == "https://llm.example.com/v1"

    def test_url_without_scheme(self) -> None:
        """A base_url without http(s) raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            _adapter(base_url="127.0.0.1:8000/v1")

    def test_url_not_a_string(self) -> None:
        """A base_url that is not a string raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            _adapter(base_url=None)

    @pytest.mark.parametrize("server", ["vllm", "sglang", "llamacpp", None])
    def test_known_servers(self, server: str | None) -> None:
        """vllm, sglang, llamacpp and None are accepted."""
        assert _adapter(server=server).server == server

    def test_unknown_server(self) -> None:
        """An unknown server raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            _adapter(server="ollama")


class TestRequest:
    """The exact request."""

    def test_default_request(self) -> None:
        """No prompt_cache_key, no extra_body, and the dynamic context as a user <context> message."""
        assert _request(_adapter(), "Now: 10:00") == {
            "model": "qwen2.5-7b",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "<context>\nNow: 10:00\n</context>"},
                {"role": "user", "content": "hi"},
            ],
        }

    def test_llamacpp_cache_prompt(self) -> None:
        """server="llamacpp" adds extra_body {"cache_prompt": true}."""
        assert _request(_adapter(server="llamacpp")) == {
            "model": "qwen2.5-7b",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "extra_body": {"cache_prompt": True},
        }

    def test_llamacpp_cache_prompt_disabled(self) -> None:
        """cache_prompt=False overrides the llama.cpp default."""
        assert _request(_adapter(server="llamacpp", cache_prompt=False))["extra_body"] == {"cache_prompt": False}

    @pytest.mark.parametrize("server", ["vllm", "sglang"])
    def test_no_extra_body_for_other_servers(self, server: str) -> None:
        """vLLM and SGLang get no extra_body."""
        assert "extra_body" not in _request(_adapter(server=server))

    def test_stream_options(self) -> None:
        """stream=True adds stream_options include_usage like OpenAI."""
        request = _request(_adapter(), stream=True)
        assert (request["stream"], request["stream_options"]) == (True, {"include_usage": True})

    def test_dynamic_role_system(self) -> None:
        """dynamic_role="system" sends the <context> text as a system message."""
        assert _request(_adapter(dynamic_role="system"), "x")["messages"][1] == {
            "role": "system",
            "content": "<context>\nx\n</context>",
        }

    def test_sdk_body(self) -> None:
        """The openai SDK sends extra_body's keys at the top level of the body."""
        body = json.loads(RecordingClient("openai").send(_request(_adapter(server="llamacpp"), "x")))
        assert body == {
            "model": "qwen2.5-7b",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "<context>\nx\n</context>"},
                {"role": "user", "content": "hi"},
            ],
            "cache_prompt": True,
        }


class TestUsage:
    """parse_usage across servers."""

    def test_prompt_tokens_details(self) -> None:
        """vLLM / SGLang report cached tokens in prompt_tokens_details."""
        response = {
            "usage": {"prompt_tokens": 300, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 288}}
        }
        assert _adapter(server="vllm").parse_usage(response) == Usage(300, 288, None, 9)

    def test_llamacpp_timings_only(self) -> None:
        """llama.cpp timings alone give input = prompt_n + cache_n and cached = cache_n."""
        response = {"timings": {"prompt_n": 12, "cache_n": 250, "predicted_n": 8}}
        assert _adapter(server="llamacpp").parse_usage(response) == Usage(262, 250, None, None)

    def test_llamacpp_timings_with_usage(self) -> None:
        """With usage but no cached count, timings.cache_n fills it and prompt_tokens stays the input."""
        response = {
            "usage": {"prompt_tokens": 262, "completion_tokens": 8, "total_tokens": 270},
            "timings": {"prompt_n": 12, "cache_n": 250},
        }
        assert _adapter(server="llamacpp").parse_usage(response) == Usage(262, 250, None, 8)

    def test_llamacpp_timings_on_sdk_object(self) -> None:
        """llama.cpp timings are read from an openai SDK ChatCompletion (an extra field)."""
        response = ChatCompletion.model_validate(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "qwen2.5-7b",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 262, "completion_tokens": 8, "total_tokens": 270},
                "timings": {"prompt_n": 12, "cache_n": 250},
            }
        )
        assert _adapter(server="llamacpp").parse_usage(response) == Usage(262, 250, None, 8)

    def test_details_win_over_timings(self) -> None:
        """When prompt_tokens_details has the cached count, timings are ignored."""
        response = {
            "usage": {"prompt_tokens": 262, "completion_tokens": 8, "prompt_tokens_details": {"cached_tokens": 256}},
            "timings": {"prompt_n": 12, "cache_n": 250},
        }
        assert _adapter(server="llamacpp").parse_usage(response) == Usage(262, 256, None, 8)

    def test_nothing_reported(self) -> None:
        """Without a cached count anywhere, cached tokens are None (unknown), not 0."""
        response = {"usage": {"prompt_tokens": 300, "completion_tokens": 9}}
        assert _adapter().parse_usage(response) == Usage(300, None, None, 9)

    def test_no_usage_at_all(self) -> None:
        """A response with neither usage nor timings gives None."""
        assert _adapter().parse_usage({"choices": []}) is None


class TestPrewarm:
    """prewarm_request."""

    def test_max_tokens_one(self) -> None:
        """Pre-warm drops the stream keys and max_completion_tokens and sets max_tokens to 1."""
        request = {
            "model": "qwen2.5-7b",
            "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"cache_prompt": True},
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 64,
            "max_tokens": 64,
        }
        assert _adapter().prewarm_request(request) == {
            "model": "qwen2.5-7b",
            "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"cache_prompt": True},
            "max_tokens": 1,
        }


def test_only_a_llamacpp_slot_is_serial() -> None:
    """llama.cpp serves one request at a time; vLLM and unnamed servers batch them."""
    from llmvoice.adapters import OpenAICompatibleAdapter

    serial = [OpenAICompatibleAdapter("http://h/v1", "m", server=name).serial for name in ("llamacpp", "vllm", None)]
    assert serial == [True, False, False]
