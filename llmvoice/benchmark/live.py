"""Live providers for the benchmark: real API calls through the official SDKs, measured.

:class:`LiveProvider` has the simulated providers' interface (``send(request, now)`` and
``reset()``) and sends each request for real, streaming, to measure the time to first token as
a voice agent sees it::

    provider = LiveProvider(Target("openai", "gpt-4o-mini"))     # needs OPENAI_API_KEY
    result = provider.send(request, now=0.0)
    result.ttft_s, result.cached_tokens, result.cost_usd

* ``openai``: ``OpenAI().chat.completions.create(**request, stream=True,
  stream_options={"include_usage": True})``; usage from the final chunk.
* ``openai-compatible`` (and ``vllm`` / ``llamacpp`` servers): the same at ``target.base_url``;
  the API key is optional. Usage from the final chunk, or llama.cpp's ``timings``.
* ``anthropic``: ``Anthropic().messages.create(**request, stream=True)`` with ``max_tokens``
  64 unless the request sets it; usage from ``message_start`` and ``message_delta``.

Time to first token runs from just before the create call to the first chunk that carries
output: text or a tool call, not a role-only delta (OpenAI sends the role first, alone). The
clock is injectable, and it is read once per received chunk. Cost uses the same price tables as
the simulator; self-hosted servers cost 0. The virtual time ``now`` is ignored: a live call
happens when it is made.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from llmvoice.adapters.anthropic import AnthropicAdapter
from llmvoice.adapters.base import ProviderAdapter, Usage, get_field
from llmvoice.adapters.openai import OpenAIAdapter
from llmvoice.adapters.openai_compatible import OpenAICompatibleAdapter
from llmvoice.benchmark.base import Target
from llmvoice.benchmark.simulate import (
    ANTHROPIC_READ,
    ANTHROPIC_WRITE_1H,
    ANTHROPIC_WRITE_5M,
    SimResult,
    anthropic_price,
    openai_price,
)
from llmvoice.control.measure import is_first_token
from llmvoice.errors import ConfigurationError
from llmvoice.tokens import EstimateCounter

__all__ = ["ANTHROPIC_DEFAULT_MAX_TOKENS", "LiveProvider", "ProviderUnavailable", "live_available"]

#: ``max_tokens`` sent to Anthropic when the request does not set it (the API requires one).
ANTHROPIC_DEFAULT_MAX_TOKENS: Final[int] = 64

_KEY_ENV: Final[dict[str, str]] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_SERVER_OF: Final[dict[str, str | None]] = {"openai-compatible": None, "vllm": "vllm", "llamacpp": "llamacpp"}
_PER_TOKEN: Final[float] = 1e-6


class ProviderUnavailable(ConfigurationError):
    """A live provider cannot run here: no API key, or its SDK is not installed."""


def _sdk_name(provider: str) -> str:
    return "anthropic" if provider == "anthropic" else "openai"


def _unavailable(target: Target, api_key: str | None) -> str | None:
    provider = target.provider
    if provider == "local":
        return "--provider local runs the in-process engine (llmvoice.benchmark.local.LocalEngine), not a live API"
    sdk = _sdk_name(provider)
    try:
        found = importlib.util.find_spec(sdk) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return f"the {sdk} package is not installed: pip install 'llmvoice[{sdk}]'"
    env = _KEY_ENV.get(provider)
    if env is not None and not (api_key or os.environ.get(env)):
        return f"set {env} to run --provider {provider}"
    return None


def live_available(target: Target, *, api_key: str | None = None) -> str | None:
    """Whether :class:`LiveProvider` can run for a target.

    Args:
        target: the provider and model.
        api_key: a key given explicitly (otherwise ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``).

    Returns:
        ``None`` when it can, else the reason (``"set OPENAI_API_KEY to run --provider openai"``).
    """
    return _unavailable(target, api_key)


def _plain(value: Any) -> Any:
    """A JSON-like copy of an SDK object (pydantic models dumped), or the value itself."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class LiveProvider:
    """A real provider behind the benchmark's provider interface.

    Args:
        target: the provider (``openai``, ``anthropic``, ``openai-compatible``, or a ``vllm`` /
            ``llamacpp`` server at ``target.base_url``) and the model.
        api_key: the API key (default: ``OPENAI_API_KEY`` or ``ANTHROPIC_API_KEY``; optional for
            OpenAI-compatible servers, which get ``"none"`` without one: ``OPENAI_API_KEY`` is
            never sent to them).
        timeout_s: the HTTP timeout of each call.
        max_retries: SDK retries per call (0 by default: a retried call's TTFT means nothing).
        http_client: an HTTP client for the SDK (tests pass one with a mock transport).
        clock: the clock TTFT is measured with, in seconds.

    Raises:
        ProviderUnavailable: no API key, or the SDK is not installed; the message says what to
            set or install.

    Attributes:
        name: the provider's name (``target.provider``).
        target: the target.
        client: the SDK client.
        adapter: the adapter whose stream-usage parser reads the responses.
    """

    name: str

    def __init__(
        self,
        target: Target,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 0,
        http_client: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        reason = _unavailable(target, api_key)
        if reason is not None:
            raise ProviderUnavailable(reason)
        provider = target.provider
        self.target = target
        self.name = provider
        self.timeout_s = timeout_s
        self._clock = clock
        sdk = importlib.import_module(_sdk_name(provider))
        options: dict[str, Any] = {"timeout": timeout_s, "max_retries": max_retries}
        if http_client is not None:
            options["http_client"] = http_client
        env = _KEY_ENV.get(provider)
        key = api_key or (os.environ.get(env) if env else None)
        counter = EstimateCounter()
        self.adapter: ProviderAdapter
        if provider == "anthropic":
            self.client: Any = sdk.Anthropic(api_key=key, **options)
            self.adapter = AnthropicAdapter(target.model, counter=counter)
        elif provider == "openai":
            self.client = sdk.OpenAI(api_key=key, **options)
            self.adapter = OpenAIAdapter(target.model, counter=counter)
        else:
            key = key or "none"  # a local server's key is never taken from OPENAI_API_KEY
            self.client = sdk.OpenAI(api_key=key, base_url=target.base_url, **options)
            self.adapter = OpenAICompatibleAdapter(
                target.base_url, target.model, server=_SERVER_OF[provider], counter=counter
            )

    def reset(self) -> None:
        """Nothing to reset: a live provider's cache is not ours to empty."""

    def send(self, request: Mapping[str, Any], now: float) -> SimResult:
        """Send one request for real, streaming, and measure it.

        Args:
            request: the keyword arguments of the SDK's create call (``stream`` and
                ``stream_options`` are set here).
            now: virtual time (unused).

        Returns:
            The measured TTFT (to the end of the stream when no output chunk came), the usage
            the provider reported (0 for counts it did not report), a response dict
            ``{"model", "usage"}`` in the provider's own usage shape (plus ``timings`` from
            llama.cpp servers), and the cost.

        Raises:
            Exception: whatever the SDK raises (HTTP errors, timeouts); nothing is retried.
        """
        if self.name == "anthropic":
            return self._send_anthropic(request)
        return self._send_openai(request)

    def _timed(self, stream: Iterable[Any], started: float) -> tuple[float, list[Any]]:
        """Read a whole stream: the time to its first token (text or a tool call), and its chunks."""
        first: float | None = None
        chunks: list[Any] = []
        at = started
        for chunk in stream:
            at = self._clock()
            chunks.append(chunk)
            if first is None and is_first_token(chunk):
                first = at
        return (first if first is not None else at) - started, chunks

    def _send_openai(self, request: Mapping[str, Any]) -> SimResult:
        kwargs = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        started = self._clock()
        stream = self.client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        ttft, chunks = self._timed(stream, started)
        usage = self.adapter.parse_stream_usage(chunks) or Usage()
        model = str(request.get("model") or self.target.model)
        response: dict[str, Any] = {"model": model, "usage": None}
        for chunk in chunks:
            raw_usage = get_field(chunk, "usage")
            if raw_usage is not None:
                response["usage"] = _plain(raw_usage)
            timings = get_field(chunk, "timings")
            if timings is not None:
                response["timings"] = _plain(timings)
        return self._result(response, ttft, usage, self._openai_cost(model, usage))

    def _openai_cost(self, model: str, usage: Usage) -> float:
        if self.name != "openai":
            return 0.0
        price_in, price_cached, price_out = openai_price(model)
        total = usage.input_tokens or 0
        cached = usage.cached_tokens or 0
        return (
            (total - cached) * price_in + cached * price_cached + (usage.output_tokens or 0) * price_out
        ) * _PER_TOKEN

    def _send_anthropic(self, request: Mapping[str, Any]) -> SimResult:
        kwargs = {k: v for k, v in request.items() if k not in ("stream", "max_tokens")}
        max_tokens = request.get("max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS)
        started = self._clock()
        stream = self.client.messages.create(**kwargs, max_tokens=max_tokens, stream=True)
        ttft, events = self._timed(stream, started)
        usage = self.adapter.parse_stream_usage(events) or Usage()
        raw: dict[str, Any] = {}
        for event in events:
            kind = get_field(event, "type")
            part = get_field(event, "message", "usage") if kind == "message_start" else None
            if kind == "message_delta":
                part = get_field(event, "usage")
            if part is not None:
                raw.update({k: v for k, v in _plain(part).items() if v is not None})
        model = str(request.get("model") or self.target.model)
        write_1h = get_field(raw, "cache_creation", "ephemeral_1h_input_tokens")
        return self._result(
            {"model": model, "usage": raw},
            ttft,
            usage,
            self._anthropic_cost(model, usage, write_1h if isinstance(write_1h, int) else 0),
        )

    @staticmethod
    def _anthropic_cost(model: str, usage: Usage, write_1h: int) -> float:
        base, price_out = anthropic_price(model)
        total = usage.input_tokens or 0
        read = usage.cached_tokens or 0
        written = usage.cache_write_tokens or 0
        write_1h = min(write_1h, written)
        plain = total - read - written
        units = (
            plain + read * ANTHROPIC_READ + (written - write_1h) * ANTHROPIC_WRITE_5M + write_1h * ANTHROPIC_WRITE_1H
        )
        return (units * base + (usage.output_tokens or 0) * price_out) * _PER_TOKEN

    @staticmethod
    def _result(response: dict[str, Any], ttft: float, usage: Usage, cost: float) -> SimResult:
        return SimResult(
            response=response,
            ttft_s=ttft,
            input_tokens=usage.input_tokens or 0,
            cached_tokens=usage.cached_tokens or 0,
            cache_write_tokens=usage.cache_write_tokens or 0,
            cost_usd=cost,
        )
