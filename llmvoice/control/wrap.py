"""``wrap``: put the TTFT controller around an existing LLM call, without changing the app.

The app keeps its own ever-growing message list and calls the wrapped function with all of it;
llmvoice appends what is new, decides what is sent (cache-stable layout, planned cuts) and
returns whatever the LLM function returned, a stream passed through unchanged::

    async def llm_fn(messages, **kwargs):
        return await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True, **kwargs
        )

    managed = wrap(llm_fn, target_ms=800)
    stream = await managed(messages)          # messages: the app's full list, system first
    async for chunk in stream: ...
    managed.print_report()
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from llmvoice.adapters.anthropic import AnthropicAdapter
from llmvoice.adapters.base import ProviderAdapter
from llmvoice.adapters.openai import OpenAIAdapter
from llmvoice.control.controller import ControllerStats, TTFTController
from llmvoice.control.measure import StreamObserver, warn_buffered_once
from llmvoice.errors import ConfigurationError, InvalidMessageError
from llmvoice.manager import PromptManager

__all__ = ["ManagedLLM", "wrap"]

_log = logging.getLogger("llmvoice.control")

LLMFunction = Callable[..., Awaitable[Any]]


def _fingerprint(message: Mapping[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, ensure_ascii=False, default=str)


class ManagedLLM:
    """The wrapped LLM function returned by :func:`wrap`; call it like the original.

    Attributes:
        controller: the session's :class:`~llmvoice.control.controller.TTFTController`
            (``None`` before the first call).
        last_request: the request llmvoice built for the last call (its ``messages`` were sent).
    """

    def __init__(
        self,
        llm_fn: LLMFunction,
        *,
        target_ms: float | None,
        adapter: ProviderAdapter | None,
        clock: Callable[[], float],
        options: Mapping[str, Any],
    ) -> None:
        if not callable(llm_fn):
            raise ConfigurationError(f"llm_fn must be callable, not {type(llm_fn).__name__}")
        if isinstance(adapter, AnthropicAdapter):
            raise ConfigurationError(
                "wrap() passes OpenAI chat messages to llm_fn; for Anthropic use TTFTController.turn()"
            )
        self._llm_fn = llm_fn
        self._target_ms = target_ms
        self._adapter = adapter
        self._clock = clock
        self._options = dict(options)
        self.controller: TTFTController | None = None
        self.last_request: dict[str, Any] | None = None
        self._seen: list[str] = []
        self._turn_open = False
        # Fail on bad options now rather than at the first call.
        TTFTController(
            PromptManager("", adapter=adapter or OpenAIAdapter()), target_ms=target_ms, clock=clock, **self._options
        )

    # -- keeping up with the app's list ---------------------------------------------------------

    def _start(self, messages: Sequence[Mapping[str, Any]]) -> int:
        system = ""
        first = 0
        if messages and messages[0].get("role") in ("system", "developer"):
            content = messages[0].get("content")
            if not isinstance(content, str):
                raise InvalidMessageError("the system prompt must be a string", index=0, field="content")
            system, first = content, 1
        manager = PromptManager(system, adapter=self._adapter or OpenAIAdapter(), transition_mode="agent_cycle")
        if self.controller is not None:
            _log.warning("the message list was edited before its end; starting a new llmvoice session from it")
        self.controller = TTFTController(manager, target_ms=self._target_ms, clock=self._clock, **self._options)
        self._seen = [_fingerprint(m) for m in messages[:first]]
        self._turn_open = False
        return first

    def _sync(self, messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
            raise ConfigurationError(f"messages must be a list of message dicts, not {type(messages).__name__}")
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping):
                raise InvalidMessageError(f"must be a dict, not {type(message).__name__}", index=index, field="")
        seen = self._seen
        start = len(seen)
        edited = (
            self.controller is None
            or len(messages) < start
            or any(_fingerprint(messages[i]) != seen[i] for i in (0, start - 1) if 0 <= i < start)
        )
        if edited:
            start = self._start(messages)
        return list(messages[start:])

    # -- the call ---------------------------------------------------------------------------------

    async def __call__(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
        """Send the app's conversation through llmvoice and return what ``llm_fn`` returned.

        Args:
            messages: the app's full message list (system first), OpenAI chat shape.
            **kwargs: passed to ``llm_fn`` unchanged.
        """
        started = self._clock()
        new = self._sync(messages)
        controller = self.controller
        assert controller is not None
        if self._turn_open and any(m.get("role") == "user" for m in new):
            controller.end_turn()  # the previous turn ended without a final reply
            self._turn_open = False
        before = controller.manager.state
        try:
            controller.manager.append_many(new)
        except Exception:
            controller.manager.state = before
            raise
        self._seen.extend(_fingerprint(m) for m in new)
        if self._turn_open:
            request = controller.next_request()
        else:
            request = controller.begin_turn(started=started)
            self._turn_open = True
        self.last_request = request
        try:
            result = self._llm_fn(request["messages"], **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except BaseException:
            controller.record(ttft_s=None, censored=True)
            self._finish(tool_calls=False)
            raise
        if hasattr(result, "__aiter__"):
            return self._observe(result, started)
        controller.record(
            ttft_s=self._clock() - started, usage=_safe_usage(controller.manager.adapter, result), streamed=False
        )
        self._finish(tool_calls=_has_tool_calls(result))
        return result

    async def _observe(self, stream: Any, started: float) -> AsyncIterator[Any]:
        controller = self.controller
        assert controller is not None
        observer = StreamObserver(controller.manager.adapter, started=started, clock=self._clock)
        try:
            async with contextlib.aclosing(observer.observe(stream)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            m = observer.measurement
            if m is not None:
                if m.buffered:
                    warn_buffered_once("wrap")
                controller.record(ttft_s=m.ttft_s, usage=m.usage, censored=m.censored, streamed=True)
                self._finish(tool_calls=bool(m.tool_calls))

    def _finish(self, *, tool_calls: bool) -> None:
        if tool_calls or self.controller is None:
            return  # the turn goes on with the tool results
        # Pre-warms go through send_prewarm (a wrap() option) in the background; without it the
        # cut is switched to at the next turn.
        self.controller._background(self.controller.end_turn())
        self._turn_open = False

    # -- reporting ----------------------------------------------------------------------------

    def stats(self) -> ControllerStats | None:
        """The controller's figures (``None`` before the first call)."""
        return None if self.controller is None else self.controller.stats()

    def report(self) -> str:
        """The controller's report."""
        return "no turns yet" if self.controller is None else self.controller.report()

    def print_report(self) -> None:
        """Print :meth:`report`."""
        print(self.report())


def _safe_usage(adapter: ProviderAdapter, response: Any) -> Any:
    try:
        return adapter.parse_usage(response)
    except Exception:  # a value that is not a provider response: no usage
        return None


def _has_tool_calls(response: Any) -> bool:
    try:
        choices = response.choices if hasattr(response, "choices") else response.get("choices")
        message = choices[0].message if hasattr(choices[0], "message") else choices[0]["message"]
        calls = message.tool_calls if hasattr(message, "tool_calls") else message.get("tool_calls")
    except Exception:
        return False
    return bool(calls)


def wrap(
    llm_fn: LLMFunction,
    target_ms: float | None = 800.0,
    *,
    adapter: ProviderAdapter | None = None,
    clock: Callable[[], float] = time.monotonic,
    **options: Any,
) -> ManagedLLM:
    """Wrap ``llm_fn(messages, **kwargs)`` so llmvoice decides what each call sends.

    Args:
        llm_fn: an async function taking an OpenAI-shaped message list (and keyword arguments)
            and returning a stream (an async iterator) or a response.
        target_ms: the P95 TTFT target (``None``: steer by ``max_context_tokens`` and the like).
        adapter: formats and counts (default :class:`~llmvoice.OpenAIAdapter`); an OpenAI-shaped
            adapter, since ``llm_fn`` receives chat messages.
        clock: seconds, monotonic; inject a fake one for tests.
        **options: :class:`~llmvoice.control.controller.TTFTController` options
            (``max_context_tokens``, ``strategy``, ``on_compression``, ``verbose``, ...).

    Returns:
        An async callable with the same call shape, plus ``stats()``, ``report()`` and
        ``print_report()``.
    """
    return ManagedLLM(llm_fn, target_ms=target_ms, adapter=adapter, clock=clock, options=options)
