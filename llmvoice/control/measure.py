"""Honest TTFT measurement of one voice turn.

Time to first token (TTFT) runs from ``started`` (the moment llmvoice received the turn, so its own
overhead counts) to the first *content* token. A :class:`StreamObserver` wraps the provider's
stream, passes every chunk through unchanged and records a :class:`Measurement`::

    observer = StreamObserver(adapter, started=turn_started, clock=time.perf_counter, timeout_s=3.0)
    stream = await client.chat.completions.create(**request)
    async with contextlib.aclosing(observer.observe(stream)) as chunks:
        async for chunk in chunks:
            speak(content_of(chunk))
    measurement = observer.measurement

What counts as the first token (:func:`is_first_token`):

* text the user will hear: ``choices[0].delta.content`` of an OpenAI chat chunk, the ``text`` of an
  Anthropic ``content_block_delta`` whose delta is a ``text_delta``, or a plain ``str`` chunk;
* the start of a tool call (an OpenAI ``delta.tool_calls``, an Anthropic ``content_block_start``
  of a ``tool_use`` block): a turn that ends in a tool call has no text, and its first output is
  the call.

Not counted: role-only and empty deltas, usage-only chunks, Anthropic ``message_start`` and
``content_block_start`` of text blocks, and extended-thinking deltas (``thinking_delta``,
``signature_delta``): thinking is never spoken, so a model that thinks first has a TTFT that
includes its thinking. OpenAI ``refusal`` deltas, audio deltas and Responses-API events are not
read. Pass the SDK's raw chunk stream (``create(..., stream=True)``); Anthropic's ``MessageStream``
works too (its derived ``text`` events are ignored, the raw events it also yields are read).

Errors, timeouts and cancellations before the first token are recorded as *censored* samples,
not dropped: the caller learns that the wait lasted at least ``total_s``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from llmvoice.adapters.base import Usage, get_field
from llmvoice.errors import AdapterError, ConfigurationError, LLMVoiceWarning

if TYPE_CHECKING:
    from llmvoice.adapters.base import ProviderAdapter

__all__ = [
    "BufferedStreamWarning",
    "Measurement",
    "StreamObserver",
    "content_of",
    "is_first_token",
    "warn_buffered_once",
]

T = TypeVar("T")

_MIN_BUFFERED_CHUNKS: Final[int] = 3
_WARNED: set[str] = set()


@dataclass(frozen=True, slots=True)
class Measurement:
    """The timing and content of one model call.

    Attributes:
        ttft_s: seconds from ``started`` to the first token (content or the start of a tool call);
            ``None`` when none arrived. For a non-streamed call it is the full latency.
        total_s: seconds from ``started`` to the end of the call (its last chunk, its error, its
            cancellation, or the timeout).
        text: the content text gathered (what the user would hear).
        usage: token usage parsed by the adapter, ``None`` when the provider sent none or there is
            no adapter.
        streamed: ``False`` for a full (non-streamed) response, whose TTFT is its whole latency.
        censored: the call ended by an error, a timeout or a cancellation before its first token;
            the true TTFT is then at least ``total_s``.
        error: ``"ExceptionType: message"`` of the error that ended the call (timeouts included),
            ``None`` when it ended normally or was cancelled.
        cancelled: the consumer abandoned the call (barge-in): the iterator was closed, its task
            cancelled or interrupted.
        chunks: chunks received (0 for a full response).
        buffered: the "stream" arrived all at once after a long wait, so a proxy or server buffered
            it and ``ttft_s`` is really the full latency (see :func:`warn_buffered_once`).
        tool_calls: tool calls gathered from the deltas (or the full response), in OpenAI shape
            (``{"id", "type": "function", "function": {"name", "arguments"}}``), in stream order.
    """

    ttft_s: float | None
    total_s: float
    text: str
    usage: Usage | None
    streamed: bool
    censored: bool
    error: str | None
    cancelled: bool
    chunks: int
    buffered: bool
    tool_calls: tuple[dict[str, Any], ...] = ()


class BufferedStreamWarning(LLMVoiceWarning):
    """A streamed response arrived all at once: something between llmvoice and the model buffers it.

    TTFT measured on such a stream is the full latency. Silence it with::

        warnings.filterwarnings("ignore", category=BufferedStreamWarning)
    """


def warn_buffered_once(key: str) -> bool:
    """Issue :class:`BufferedStreamWarning` for ``key`` (a provider, model or endpoint) once per process.

    Silence it with ``warnings.filterwarnings("ignore", category=BufferedStreamWarning)``.

    Args:
        key: what the warning is about; each key warns at most once.

    Returns:
        ``True`` when the warning was issued now, ``False`` when ``key`` had already warned.
    """
    if key in _WARNED:
        return False
    _WARNED.add(key)
    warnings.warn(
        BufferedStreamWarning(
            f"{key}: the streamed response arrived all at once after a long wait; a proxy or server is "
            "buffering it, so its TTFT is the full latency. Silence this with "
            "warnings.filterwarnings('ignore', category=BufferedStreamWarning)."
        ),
        stacklevel=2,
    )
    return True


def _delta(chunk: Any) -> Any:
    """The delta of choice 0 of an OpenAI chat chunk (object or dict), or ``None``."""
    choices = get_field(chunk, "choices")
    if not isinstance(choices, Sequence) or isinstance(choices, str):
        return None
    for choice in choices:
        if get_field(choice, "index") in (0, None):
            return get_field(choice, "delta")
    return None


def content_of(chunk: Any) -> str:
    """The content text one stream chunk carries (``""`` for everything that is not spoken text).

    A ``str`` chunk is its own text; an OpenAI chat chunk gives ``choices[0].delta.content``; an
    Anthropic ``content_block_delta`` gives its ``text_delta`` text. Thinking deltas, tool-call
    deltas, role-only deltas and other events give ``""``.

    Args:
        chunk: an SDK chunk or event object, its dict form, or a string.
    """
    if isinstance(chunk, str):
        return chunk
    if get_field(chunk, "type") == "content_block_delta":
        if get_field(chunk, "delta", "type") != "text_delta":
            return ""
        text = get_field(chunk, "delta", "text")
    else:
        text = get_field(_delta(chunk), "content")
    return text if isinstance(text, str) else ""


def _starts_tool_call(chunk: Any) -> bool:
    if isinstance(chunk, str):
        return False
    if get_field(chunk, "type") == "content_block_start":
        return bool(get_field(chunk, "content_block", "type") == "tool_use")
    calls = get_field(_delta(chunk), "tool_calls")
    return isinstance(calls, Sequence) and len(calls) > 0


def is_first_token(chunk: Any) -> bool:
    """Whether ``chunk`` would end the wait for the first token.

    True for a chunk with content text (:func:`content_of` not empty) and for one that carries a
    tool call (an OpenAI ``delta.tool_calls``, an Anthropic ``content_block_start`` of a
    ``tool_use`` block): the first output of a turn that ends in a tool call.

    Args:
        chunk: an SDK chunk or event object, its dict form, or a string.
    """
    return content_of(chunk) != "" or _starts_tool_call(chunk)


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class _Run:
    """What one observation has gathered so far."""

    __slots__ = ("adapter", "chunks", "first", "inputs", "parts", "started", "times", "tools", "usage")

    def __init__(self, adapter: ProviderAdapter | None, started: float) -> None:
        self.adapter = adapter
        self.started = started
        self.first: float | None = None
        self.parts: list[str] = []
        self.times: list[float] = []  # arrival of each chunk with content text
        self.usage: Usage | None = None
        self.chunks = 0
        self.tools: dict[int, dict[str, Any]] = {}
        self.inputs: dict[int, Any] = {}  # Anthropic tool_use input, for calls without input deltas

    def add(self, chunk: Any, now: float) -> None:
        self.chunks += 1
        text = content_of(chunk)
        if self.first is None and (text or _starts_tool_call(chunk)):
            self.first = now
        if text:
            self.parts.append(text)
            self.times.append(now)
        if self.adapter is not None and not isinstance(chunk, str):
            part = self.adapter.usage_from_chunk(chunk)
            if part is not None:
                self.usage = part if self.usage is None else self.usage.merge(part)
        if not isinstance(chunk, str):
            self._gather_tool_calls(chunk)

    def _gather_tool_calls(self, chunk: Any) -> None:
        kind = get_field(chunk, "type")
        if kind == "content_block_start":
            block = get_field(chunk, "content_block")
            index = get_field(chunk, "index")
            if get_field(block, "type") == "tool_use" and isinstance(index, int):
                self.tools[index] = {"id": get_field(block, "id"), "name": get_field(block, "name"), "arguments": ""}
                self.inputs[index] = get_field(block, "input")
            return
        if kind == "content_block_delta":
            index = get_field(chunk, "index")
            partial = get_field(chunk, "delta", "partial_json")
            call = self.tools.get(index) if isinstance(index, int) else None
            if (
                call is not None
                and get_field(chunk, "delta", "type") == "input_json_delta"
                and isinstance(partial, str)
            ):
                call["arguments"] += partial
            return
        parts = get_field(_delta(chunk), "tool_calls")
        if not isinstance(parts, Sequence):
            return
        for position, part in enumerate(parts):
            index = get_field(part, "index")
            call = self.tools.setdefault(
                index if isinstance(index, int) else position, {"id": None, "name": None, "arguments": ""}
            )
            call_id = get_field(part, "id")
            name = get_field(part, "function", "name")
            arguments = get_field(part, "function", "arguments")
            if call["id"] is None and isinstance(call_id, str) and call_id:
                call["id"] = call_id
            if call["name"] is None and isinstance(name, str) and name:
                call["name"] = name
            if isinstance(arguments, str):
                call["arguments"] += arguments

    def tool_calls(self) -> tuple[dict[str, Any], ...]:
        out = []
        for index in sorted(self.tools):
            call = self.tools[index]
            arguments = call["arguments"]
            if not arguments and index in self.inputs:
                arguments = json.dumps(self.inputs[index] or {}, ensure_ascii=False, separators=(",", ":"))
            out.append(
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": arguments}}
            )
        return tuple(out)

    def result(
        self, now: float, *, gap_s: float, wait_s: float, error: str | None, cancelled: bool, streamed: bool
    ) -> Measurement:
        ttft = None if self.first is None else self.first - self.started
        times = self.times
        buffered = (
            streamed
            and ttft is not None
            and len(times) >= _MIN_BUFFERED_CHUNKS
            and ttft >= wait_s
            and times[-1] - times[0] <= gap_s * len(times)
        )
        return Measurement(
            ttft_s=ttft,
            total_s=now - self.started,
            text="".join(self.parts),
            usage=self.usage,
            streamed=streamed,
            censored=self.first is None and (error is not None or cancelled),
            error=error,
            cancelled=cancelled,
            chunks=self.chunks,
            buffered=buffered,
            tool_calls=self.tool_calls(),
        )


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _close(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


class StreamObserver:
    """Times one model call of a turn: streamed (sync or async) or a full response.

    The wrappers yield every chunk unchanged and record a :class:`Measurement`, available as
    :attr:`measurement` once the call has ended: normally, by an error (recorded, then re-raised),
    or because the consumer abandoned it (recorded as cancelled, then the exception propagates).
    Close an abandoned wrapper (``contextlib.aclosing`` / ``contextlib.closing``, or ``aclose()``)
    so the measurement is recorded at once. A call that ends other than normally also closes the
    source iterator (its ``aclose()`` / ``close()``, when it has one). An observer can observe
    again (a retry within the same turn): each observation replaces :attr:`measurement` and still
    counts from ``started``.

    All times come from ``clock``. The async timeout is the one exception: it is wall time on the
    event loop's clock, a deadline set ``timeout_s`` after ``started`` (the part already elapsed
    is read from ``clock`` when the observation begins), and it applies only until the first
    token. A sync stream cannot be interrupted while it blocks: its timeout is checked on
    ``clock`` each time a chunk (or the end) arrives, so also set the HTTP client's read timeout.

    Args:
        adapter: parses usage (and full responses); ``None`` records no usage.
        started: when llmvoice received the turn, on ``clock``.
        clock: the time source, in seconds.
        timeout_s: give up when no first token came within this many seconds of ``started``: the
            measurement is censored and ``TimeoutError`` is raised. ``None`` waits forever.
        buffered_gap_s: per content chunk, the spread under which a stream counts as buffered.
        buffered_wait_s: the shortest first-token wait for a stream to count as buffered.

    Raises:
        ConfigurationError: a time or option is not a number, or out of range.
    """

    __slots__ = ("_measurement", "adapter", "buffered_gap_s", "buffered_wait_s", "clock", "started", "timeout_s")

    def __init__(
        self,
        adapter: ProviderAdapter | None,
        *,
        started: float,
        clock: Callable[[], float],
        timeout_s: float | None = None,
        buffered_gap_s: float = 0.005,
        buffered_wait_s: float = 0.25,
    ) -> None:
        for label, value in (("started", started), ("buffered_gap_s", buffered_gap_s)):
            if not _is_number(value):
                raise ConfigurationError(f"{label} must be a number, not {value!r}")
        if not _is_number(buffered_wait_s):
            raise ConfigurationError(f"buffered_wait_s must be a number, not {buffered_wait_s!r}")
        if buffered_gap_s < 0 or buffered_wait_s < 0:
            raise ConfigurationError(
                f"buffered_gap_s and buffered_wait_s must be >= 0, not {buffered_gap_s!r} and {buffered_wait_s!r}"
            )
        if timeout_s is not None and (not _is_number(timeout_s) or timeout_s <= 0):
            raise ConfigurationError(f"timeout_s must be a positive number or None, not {timeout_s!r}")
        if not callable(clock):
            raise ConfigurationError(f"clock must be callable, not {clock!r}")
        self.adapter = adapter
        self.started = started
        self.clock = clock
        self.timeout_s = timeout_s
        self.buffered_gap_s = buffered_gap_s
        self.buffered_wait_s = buffered_wait_s
        self._measurement: Measurement | None = None

    @property
    def measurement(self) -> Measurement | None:
        """The measurement of the last observation, or ``None`` while it runs (or before any)."""
        return self._measurement

    # -- internals -------------------------------------------------------------------------

    def _begin(self) -> _Run:
        self._measurement = None
        return _Run(self.adapter, self.started)

    def _end(
        self, run: _Run, now: float, *, error: str | None = None, cancelled: bool = False, streamed: bool = True
    ) -> None:
        self._measurement = run.result(
            now,
            gap_s=self.buffered_gap_s,
            wait_s=self.buffered_wait_s,
            error=error,
            cancelled=cancelled,
            streamed=streamed,
        )

    def _fail(self, run: _Run, exc: BaseException, *, streamed: bool = True) -> None:
        """Record a call ended by ``exc``: an error, or a cancellation for any other BaseException."""
        if isinstance(exc, Exception):
            self._end(run, self.clock(), error=_describe(exc), streamed=streamed)
        else:
            self._end(run, self.clock(), cancelled=True, streamed=streamed)

    def _expired(self) -> TimeoutError:
        return TimeoutError(f"no first token within {self.timeout_s} s")

    def _deadline(self) -> float | None:
        if self.timeout_s is None:
            return None
        elapsed = max(0.0, self.clock() - self.started)
        return asyncio.get_running_loop().time() + self.timeout_s - elapsed

    async def _within(self, awaitable: Awaitable[T], deadline: float) -> T:
        if sys.version_info >= (3, 11):
            scope = asyncio.timeout_at(deadline)
            try:
                async with scope:
                    return await awaitable
            except TimeoutError:
                if not scope.expired():
                    raise
        else:  # pragma: no cover - Python 3.10
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                return await asyncio.wait_for(awaitable, remaining)
            except asyncio.TimeoutError:
                pass
        raise self._expired()

    # -- streams ---------------------------------------------------------------------------

    async def observe(self, stream: AsyncIterable[T]) -> AsyncGenerator[T, None]:
        """Yield the chunks of an async stream unchanged while timing them.

        Args:
            stream: the provider's async stream (SDK chunks or events, their dict forms, strings).

        Yields:
            Every chunk of ``stream``, unchanged.

        Raises:
            TimeoutError: no first token within ``timeout_s`` (after recording the measurement).
        """
        run = self._begin()
        iterator = aiter(stream)
        deadline = self._deadline()
        try:
            while True:
                try:
                    if deadline is None or run.first is not None:
                        chunk = await anext(iterator)
                    else:
                        chunk = await self._within(anext(iterator), deadline)
                except StopAsyncIteration:
                    break
                run.add(chunk, self.clock())
                yield chunk
        except BaseException as exc:
            self._fail(run, exc)
            await _aclose(iterator)
            raise
        self._end(run, self.clock())

    def observe_sync(self, stream: Iterable[T]) -> Iterator[T]:
        """Yield the chunks of a sync stream unchanged while timing them.

        Args:
            stream: the provider's stream (SDK chunks or events, their dict forms, strings).

        Yields:
            Every chunk of ``stream``, unchanged.

        Raises:
            TimeoutError: a chunk or the end arrived ``timeout_s`` after ``started`` with no first
                token before it (after recording the measurement).
        """
        run = self._begin()
        iterator = iter(stream)
        timeout = self.timeout_s
        try:
            while True:
                ended = False
                try:
                    chunk = next(iterator)
                except StopIteration:
                    ended = True
                now = self.clock()
                if timeout is not None and run.first is None and now - self.started > timeout:
                    raise self._expired()
                if ended:
                    break
                run.add(chunk, now)
                yield chunk
        except BaseException as exc:
            self._fail(run, exc)
            _close(iterator)
            raise
        self._end(run, now)

    # -- full responses --------------------------------------------------------------------

    async def observe_awaitable(self, awaitable: Awaitable[T]) -> T:
        """Await a full (non-streamed) response and time it; TTFT is its whole latency.

        Args:
            awaitable: the pending call, e.g. ``client.chat.completions.create(**request)``.

        Returns:
            The response, unchanged.

        Raises:
            TimeoutError: the response took longer than ``timeout_s`` after ``started``.
        """
        run = self._begin()
        try:
            deadline = self._deadline()
            value = await (awaitable if deadline is None else self._within(awaitable, deadline))
        except BaseException as exc:
            self._fail(run, exc, streamed=False)
            raise
        return self.observe_value(value)

    def observe_value(self, value: T) -> T:
        """Record a full response that has just arrived (now, on ``clock``); TTFT is its latency.

        Usage comes from the adapter's ``parse_usage``; text and tool calls from its
        ``parse_message`` (a ``str`` response is its own text). A response the adapter cannot
        parse gives ``""`` and no tool calls: the caller's own ``parse_message`` reports why.

        Args:
            value: the provider's response.

        Returns:
            ``value``, unchanged.
        """
        self._begin()
        latency = self.clock() - self.started
        text = ""
        calls: tuple[dict[str, Any], ...] = ()
        usage: Usage | None = None
        if isinstance(value, str):
            text = value
        elif self.adapter is not None:
            usage = self.adapter.parse_usage(value)
            try:
                message = self.adapter.parse_message(value)
            except AdapterError:
                message = {}
            content = message.get("content")
            text = content if isinstance(content, str) else ""
            found = message.get("tool_calls")
            calls = tuple(found) if isinstance(found, list) else ()
        self._measurement = Measurement(
            ttft_s=latency,
            total_s=latency,
            text=text,
            usage=usage,
            streamed=False,
            censored=False,
            error=None,
            cancelled=False,
            chunks=0,
            buffered=False,
            tool_calls=calls,
        )
        return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
