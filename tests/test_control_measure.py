"""Unit tests for llmvoice.control.measure: TTFT measurement of streamed and full responses."""

from __future__ import annotations

import asyncio
import contextlib
import re
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import pytest
from anthropic.types import (
    Message as AnthropicMessage,
)
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter, Usage
from llmvoice.control.measure import (
    BufferedStreamWarning,
    Measurement,
    StreamObserver,
    content_of,
    is_first_token,
    warn_buffered_once,
)
from llmvoice.errors import ConfigurationError, LLMVoiceWarning
from llmvoice.tokens import EstimateCounter

STARTED = 10.0
CALL_ARGS = '{"order_id":"42"}'


class FakeClock:
    """A clock that reads whatever time the fake stream last set."""

    def __init__(self, now: float = STARTED) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- chunk builders ------------------------------------------------------------------------


def _oa_dict(
    delta: dict[str, Any] | None = None, usage: dict[str, Any] | None = None, index: int = 0
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": index, "delta": delta, "finish_reason": None}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": choices,
        "usage": usage,
    }


def _oa(
    delta: dict[str, Any] | None = None, usage: dict[str, Any] | None = None, index: int = 0
) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(_oa_dict(delta, usage, index))


def _oa_tool(index: int, *, call_id: str | None = None, name: str | None = None, arguments: str = "") -> Any:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    part: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        part["id"] = call_id
        part["type"] = "function"
    return _oa({"tool_calls": [part]})


OA_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920},
}


def _an_start() -> RawMessageStartEvent:
    return RawMessageStartEvent.model_validate(
        {
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
                    "cache_read_input_tokens": 100,
                    "cache_creation_input_tokens": 20,
                    "output_tokens": 1,
                },
            },
        }
    )


def _an_block_start(index: int, block: dict[str, Any]) -> RawContentBlockStartEvent:
    return RawContentBlockStartEvent.model_validate(
        {"type": "content_block_start", "index": index, "content_block": block}
    )


def _an_text(text: str, index: int = 0) -> RawContentBlockDeltaEvent:
    return RawContentBlockDeltaEvent.model_validate(
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}
    )


def _an_json(partial: str, index: int) -> RawContentBlockDeltaEvent:
    return RawContentBlockDeltaEvent.model_validate(
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": partial}}
    )


def _an_delta(output_tokens: int = 15) -> RawMessageDeltaEvent:
    return RawMessageDeltaEvent.model_validate(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )


def _an_stop(index: int = 0) -> RawContentBlockStopEvent:
    return RawContentBlockStopEvent.model_validate({"type": "content_block_stop", "index": index})


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}


# -- streams and observers -----------------------------------------------------------------


def _openai() -> OpenAIAdapter:
    return OpenAIAdapter("gpt-4o-mini", counter=EstimateCounter(4.0))


def _anthropic() -> AnthropicAdapter:
    return AnthropicAdapter("claude-sonnet-4-6", counter=EstimateCounter(4.0))


def _observer(adapter: Any = None, clock: FakeClock | None = None, **options: Any) -> StreamObserver:
    return StreamObserver(adapter, started=STARTED, clock=clock or FakeClock(), **options)


async def _timed(
    clock: FakeClock, items: Iterable[tuple[float, Any]], closed: list[str] | None = None
) -> AsyncIterator[Any]:
    """Yield each chunk after setting the clock to its arrival time; note in ``closed`` when finished."""
    try:
        for at, chunk in items:
            clock.now = at
            yield chunk
    finally:
        if closed is not None:
            closed.append("closed")


def _timed_sync(clock: FakeClock, items: Iterable[tuple[float, Any]], closed: list[str] | None = None) -> Iterator[Any]:
    try:
        for at, chunk in items:
            clock.now = at
            yield chunk
    finally:
        if closed is not None:
            closed.append("closed")


async def _drain(observer: StreamObserver, stream: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in observer.observe(stream)]


async def _measure(items: list[tuple[float, Any]], adapter: Any = None, **options: Any) -> Measurement:
    clock = FakeClock()
    observer = _observer(adapter, clock, **options)
    await _drain(observer, _timed(clock, items))
    assert observer.measurement is not None
    return observer.measurement


def _measure_sync(items: list[tuple[float, Any]], adapter: Any = None, **options: Any) -> Measurement:
    clock = FakeClock()
    observer = _observer(adapter, clock, **options)
    list(observer.observe_sync(_timed_sync(clock, items)))
    assert observer.measurement is not None
    return observer.measurement


ROLE_THEN_TEXT = [
    (10.25, _oa({"role": "assistant", "content": ""})),
    (10.5, _oa({"content": "Hi"})),
    (10.75, _oa({"content": " there"})),
    (11.0, _oa(None, OA_USAGE)),
]


# -- content_of / is_first_token -----------------------------------------------------------


class TestContentOf:
    """content_of: the spoken text one chunk carries."""

    def test_str_chunk(self) -> None:
        """A plain string chunk is its own text."""
        assert content_of("hello") == "hello"

    def test_openai_sdk_chunk(self) -> None:
        """An OpenAI ChatCompletionChunk gives choices[0].delta.content."""
        assert content_of(_oa({"content": "Hi"})) == "Hi"

    def test_openai_dict_chunk(self) -> None:
        """The dict form of an OpenAI chunk gives the same text."""
        assert content_of(_oa_dict({"content": "Hi"})) == "Hi"

    def test_openai_role_only_delta(self) -> None:
        """A role-only delta has no content."""
        assert content_of(_oa({"role": "assistant"})) == ""

    def test_openai_usage_only_chunk(self) -> None:
        """The final usage chunk (no choices) has no content."""
        assert content_of(_oa(None, OA_USAGE)) == ""

    def test_openai_other_choice_ignored(self) -> None:
        """A chunk for choice index 1 (n > 1) gives no text for the spoken answer."""
        assert content_of(_oa({"content": "alt"}, index=1)) == ""

    def test_anthropic_text_delta(self) -> None:
        """An Anthropic text_delta event gives its text."""
        assert content_of(_an_text("Hello")) == "Hello"

    def test_anthropic_dict_text_delta(self) -> None:
        """The dict form of a text_delta event gives its text."""
        event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}
        assert content_of(event) == "Hello"

    def test_anthropic_thinking_delta(self) -> None:
        """A thinking_delta is never spoken, so it is not content."""
        event = RawContentBlockDeltaEvent.model_validate(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}}
        )
        assert content_of(event) == ""

    def test_anthropic_other_delta_type(self) -> None:
        """Only text_delta is content, even when another delta type carries a text field."""
        event = {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "text": "x"}}
        assert content_of(event) == ""

    def test_anthropic_message_start(self) -> None:
        """message_start carries no content."""
        assert content_of(_an_start()) == ""

    def test_anthropic_input_json_delta(self) -> None:
        """Tool-call argument deltas are not content."""
        assert content_of(_an_json('{"a"', 1)) == ""

    def test_unknown_objects(self) -> None:
        """None, numbers and unrelated objects give ""."""
        assert [content_of(None), content_of(3), content_of(object()), content_of({"choices": "x"})] == ["", "", "", ""]


class TestIsFirstToken:
    """is_first_token: which chunk ends the wait."""

    def test_role_only_delta(self) -> None:
        """A role-only first delta is not the first token."""
        assert is_first_token(_oa({"role": "assistant", "content": ""})) is False

    def test_content_delta(self) -> None:
        """A delta with content is the first token."""
        assert is_first_token(_oa({"content": "Hi"})) is True

    def test_empty_string_chunk(self) -> None:
        """An empty string chunk is not the first token."""
        assert is_first_token("") is False

    def test_openai_tool_call_delta(self) -> None:
        """A delta starting a tool call is a tool turn's first token."""
        assert is_first_token(_oa_tool(0, call_id="call_1", name="lookup")) is True

    def test_anthropic_tool_use_start(self) -> None:
        """content_block_start of a tool_use block is the first token."""
        assert is_first_token(_an_block_start(0, TOOL_USE)) is True

    def test_anthropic_text_block_start(self) -> None:
        """content_block_start of a text block is not the first token."""
        assert is_first_token(_an_block_start(0, {"type": "text", "text": ""})) is False

    def test_anthropic_message_start(self) -> None:
        """message_start is not the first token."""
        assert is_first_token(_an_start()) is False

    def test_anthropic_thinking_block_start(self) -> None:
        """The start of a thinking block is not the first token."""
        assert is_first_token(_an_block_start(0, {"type": "thinking", "thinking": "", "signature": ""})) is False


# -- async streams -------------------------------------------------------------------------


class TestObserveAsync:
    """StreamObserver.observe on async streams."""

    async def test_chunks_pass_through_unchanged(self) -> None:
        """Every chunk is yielded, the same objects in the same order."""
        clock = FakeClock()
        chunks = [chunk for _, chunk in ROLE_THEN_TEXT]
        out = await _drain(_observer(None, clock), _timed(clock, ROLE_THEN_TEXT))
        assert [a is b for a, b in zip(out, chunks, strict=True)] == [True, True, True, True]

    async def test_role_only_delta_not_counted(self) -> None:
        """TTFT runs from started to the first content delta, not the role-only one."""
        assert (await _measure(ROLE_THEN_TEXT)).ttft_s == 0.5

    async def test_full_measurement(self) -> None:
        """A complete OpenAI stream gives text, usage from its last chunk and the totals."""
        assert await _measure(ROLE_THEN_TEXT, _openai()) == Measurement(
            ttft_s=0.5,
            total_s=1.0,
            text="Hi there",
            usage=Usage(2006, 1920, None, 300),
            streamed=True,
            censored=False,
            error=None,
            cancelled=False,
            chunks=4,
            buffered=False,
        )

    async def test_dict_chunks(self) -> None:
        """Dict chunks are read like SDK objects."""
        items = [
            (10.25, _oa_dict({"role": "assistant"})),
            (10.5, _oa_dict({"content": "ok"})),
            (11.0, _oa_dict(None, OA_USAGE)),
        ]
        measurement = await _measure(items, _openai())
        assert (measurement.ttft_s, measurement.text, measurement.usage) == (0.5, "ok", Usage(2006, 1920, None, 300))

    async def test_str_chunks(self) -> None:
        """A stream of strings: empty strings do not count, the first non-empty one does."""
        measurement = await _measure([(10.25, ""), (10.5, "Hi"), (10.75, "!")])
        assert (measurement.ttft_s, measurement.text) == (0.5, "Hi!")

    async def test_no_adapter_no_usage(self) -> None:
        """Without an adapter no usage is recorded."""
        assert (await _measure(ROLE_THEN_TEXT)).usage is None

    async def test_anthropic_usage_from_start_and_delta(self) -> None:
        """message_start gives the input side and message_delta the output tokens."""
        items = [
            (10.25, _an_start()),
            (10.25, _an_block_start(0, {"type": "text", "text": ""})),
            (10.5, _an_text("Hello")),
            (10.75, _an_stop()),
            (10.75, _an_delta()),
            (11.0, RawMessageStopEvent.model_validate({"type": "message_stop"})),
        ]
        assert await _measure(items, _anthropic()) == Measurement(
            ttft_s=0.5,
            total_s=1.0,
            text="Hello",
            usage=Usage(130, 100, 20, 15),
            streamed=True,
            censored=False,
            error=None,
            cancelled=False,
            chunks=6,
            buffered=False,
        )

    async def test_anthropic_thinking_not_first_token(self) -> None:
        """Thinking deltas before the text do not end the wait."""
        thinking = RawContentBlockDeltaEvent.model_validate(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}}
        )
        measurement = await _measure([(10.25, _an_start()), (10.5, thinking), (11.0, _an_text("Sure", 1))])
        assert (measurement.ttft_s, measurement.text) == (1.0, "Sure")

    async def test_openai_tool_call_first_token(self) -> None:
        """A tool-call delta is the first token; its fragments merge into one call."""
        items = [
            (10.25, _oa({"role": "assistant", "content": None})),
            (10.5, _oa_tool(0, call_id="call_1", name="lookup")),
            (10.75, _oa_tool(0, arguments='{"order_id"')),
            (11.0, _oa_tool(0, arguments=':"42"}')),
        ]
        measurement = await _measure(items)
        assert (measurement.ttft_s, measurement.text, measurement.tool_calls) == (
            0.5,
            "",
            ({"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": CALL_ARGS}},),
        )

    async def test_openai_parallel_tool_calls_by_index(self) -> None:
        """Fragments of two calls are merged by index, in index order."""
        items = [
            (10.5, _oa_tool(1, call_id="call_b", name="ping")),
            (10.5, _oa_tool(0, call_id="call_a", name="lookup")),
            (10.75, _oa_tool(1, arguments="{}")),
            (10.75, _oa_tool(0, arguments=CALL_ARGS)),
        ]
        assert (await _measure(items)).tool_calls == (
            {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": CALL_ARGS}},
            {"id": "call_b", "type": "function", "function": {"name": "ping", "arguments": "{}"}},
        )

    async def test_anthropic_tool_use_first_token(self) -> None:
        """A tool_use block start is the first token; input_json deltas become the arguments."""
        items = [
            (10.25, _an_start()),
            (10.5, _an_block_start(0, TOOL_USE)),
            (10.75, _an_json('{"order_id"', 0)),
            (10.75, _an_json(':"42"}', 0)),
        ]
        measurement = await _measure(items)
        assert (measurement.ttft_s, measurement.tool_calls) == (
            0.5,
            ({"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": CALL_ARGS}},),
        )

    async def test_anthropic_tool_use_without_input_deltas(self) -> None:
        """A tool_use block with no input deltas has its start input as arguments ("{}")."""
        measurement = await _measure([(10.5, _an_block_start(0, TOOL_USE)), (10.75, _an_stop())])
        assert measurement.tool_calls == (
            {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
        )

    async def test_no_token_at_all(self) -> None:
        """A stream that ends without a first token has no TTFT and is not censored."""
        measurement = await _measure([(10.25, _oa({"role": "assistant"})), (10.5, _oa(None, OA_USAGE))])
        assert (measurement.ttft_s, measurement.total_s, measurement.censored) == (None, 0.5, False)

    async def test_measurement_none_before_observing(self) -> None:
        """A fresh observer has no measurement."""
        assert _observer().measurement is None

    async def test_measurement_none_while_running(self) -> None:
        """While the stream is still being read there is no measurement yet."""
        clock = FakeClock()
        observer = _observer(None, clock)
        seen = [observer.measurement async for _ in observer.observe(_timed(clock, [(10.5, "Hi")]))]
        assert seen == [None]

    async def test_second_observation_replaces_the_first(self) -> None:
        """Observing again (a retry) replaces the measurement and still counts from started."""
        clock = FakeClock()
        observer = _observer(None, clock)
        await _drain(observer, _timed(clock, [(10.25, "a")]))
        await _drain(observer, _timed(clock, [(11.5, "b")]))
        assert observer.measurement is not None
        assert (observer.measurement.ttft_s, observer.measurement.text) == (1.5, "b")


class TestObserveAsyncFailures:
    """Errors, cancellations and timeouts of async streams."""

    async def test_error_after_first_token(self) -> None:
        """An error mid-stream is recorded (not censored: a token came) and re-raised."""
        clock = FakeClock()
        observer = _observer(None, clock)

        async def broken() -> AsyncIterator[Any]:
            clock.now = 10.5
            yield "Hi"
            clock.now = 10.75
            raise ConnectionError("connection reset")

        with pytest.raises(ConnectionError, match="connection reset"):
            await _drain(observer, broken())
        assert observer.measurement == Measurement(
            ttft_s=0.5,
            total_s=0.75,
            text="Hi",
            usage=None,
            streamed=True,
            censored=False,
            error="ConnectionError: connection reset",
            cancelled=False,
            chunks=1,
            buffered=False,
        )

    async def test_error_before_first_token_is_censored(self) -> None:
        """An error before any token gives a censored measurement."""
        clock = FakeClock()
        observer = _observer(None, clock)

        async def broken() -> AsyncIterator[Any]:
            clock.now = 10.25
            yield _oa({"role": "assistant"})
            clock.now = 11.0
            raise RuntimeError("overloaded")

        with pytest.raises(RuntimeError):
            await _drain(observer, broken())
        assert observer.measurement is not None
        assert (observer.measurement.ttft_s, observer.measurement.total_s, observer.measurement.censored) == (
            None,
            1.0,
            True,
        )

    async def test_consumer_breaks_out(self) -> None:
        """A consumer that stops after the first token (barge-in) gives cancelled, not censored."""
        clock = FakeClock()
        observer = _observer(None, clock)
        closed: list[str] = []
        async with contextlib.aclosing(observer.observe(_timed(clock, ROLE_THEN_TEXT, closed))) as chunks:
            async for chunk in chunks:
                if content_of(chunk):
                    break
        assert observer.measurement is not None
        assert (
            observer.measurement.cancelled,
            observer.measurement.censored,
            observer.measurement.error,
            observer.measurement.text,
            observer.measurement.chunks,
        ) == (True, False, None, "Hi", 2)

    async def test_closing_closes_the_source(self) -> None:
        """Abandoning the wrapper closes the source iterator too."""
        clock = FakeClock()
        observer = _observer(None, clock)
        closed: list[str] = []
        wrapper = observer.observe(_timed(clock, ROLE_THEN_TEXT, closed))
        await anext(wrapper)
        await wrapper.aclose()
        assert closed == ["closed"]

    async def test_close_before_first_token_is_censored(self) -> None:
        """Abandoning the stream before its first token gives cancelled and censored."""
        clock = FakeClock()
        observer = _observer(None, clock)
        wrapper = observer.observe(_timed(clock, ROLE_THEN_TEXT))
        await anext(wrapper)
        await wrapper.aclose()
        assert observer.measurement is not None
        assert (observer.measurement.cancelled, observer.measurement.censored, observer.measurement.ttft_s) == (
            True,
            True,
            None,
        )

    async def test_task_cancelled_while_waiting(self) -> None:
        """Cancelling the consuming task while it waits for a chunk records a cancelled, censored call."""
        clock = FakeClock()
        observer = _observer(None, clock)
        waiting = asyncio.Event()

        async def stalled() -> AsyncIterator[Any]:
            clock.now = 10.25
            yield _oa({"role": "assistant"})
            clock.now = 10.5
            waiting.set()
            await asyncio.Event().wait()
            yield "never"

        task = asyncio.ensure_future(_drain(observer, stalled()))
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert observer.measurement == Measurement(
            ttft_s=None,
            total_s=0.5,
            text="",
            usage=None,
            streamed=True,
            censored=True,
            error=None,
            cancelled=True,
            chunks=1,
            buffered=False,
        )

    async def test_timeout_before_first_token(self) -> None:
        """No first token within the (wall-time) timeout: TimeoutError, censored, source stopped."""
        clock = FakeClock()
        observer = _observer(None, clock, timeout_s=0.01)
        closed: list[str] = []

        async def stalled() -> AsyncIterator[Any]:
            try:
                clock.now = 10.25
                yield _oa({"role": "assistant"})
                clock.now = 12.0
                await asyncio.Event().wait()
                yield "never"
            finally:
                closed.append("closed")

        with pytest.raises(TimeoutError, match=re.escape("no first token within 0.01 s")):
            await _drain(observer, stalled())
        assert (observer.measurement, closed) == (
            Measurement(
                ttft_s=None,
                total_s=2.0,
                text="",
                usage=None,
                streamed=True,
                censored=True,
                error="TimeoutError: no first token within 0.01 s",
                cancelled=False,
                chunks=1,
                buffered=False,
            ),
            ["closed"],
        )

    async def test_timeout_counts_from_started(self) -> None:
        """Time already spent since started (on the clock) is taken off the timeout."""
        clock = FakeClock(STARTED + 30.0)
        observer = _observer(None, clock, timeout_s=30.0)

        async def quick() -> AsyncIterator[Any]:
            await asyncio.sleep(0)
            yield "Hi"

        with pytest.raises(TimeoutError):
            await _drain(observer, quick())

    async def test_no_timeout_after_first_token(self) -> None:
        """Once the first token arrived, a slow rest of the stream does not time out."""
        clock = FakeClock()
        observer = _observer(None, clock, timeout_s=0.05)

        async def slow_tail() -> AsyncIterator[Any]:
            clock.now = 10.5
            yield "Hi"
            await asyncio.sleep(0.1)
            clock.now = 10.75
            yield "!"

        await _drain(observer, slow_tail())
        assert observer.measurement is not None
        assert (observer.measurement.text, observer.measurement.error) == ("Hi!", None)

    async def test_source_timeout_error_is_an_error(self) -> None:
        """A TimeoutError raised by the source itself is recorded as that error, not as our timeout."""
        clock = FakeClock()
        observer = _observer(None, clock, timeout_s=60.0)

        async def failing() -> AsyncIterator[Any]:
            clock.now = 10.5
            raise TimeoutError("read timed out")
            yield "never"

        with pytest.raises(TimeoutError, match="read timed out"):
            await _drain(observer, failing())
        assert observer.measurement is not None
        assert observer.measurement.error == "TimeoutError: read timed out"


class TestBuffered:
    """Detection of a stream a proxy buffered."""

    async def test_all_at_once_after_a_wait(self) -> None:
        """Four content chunks within a millisecond after a half-second wait: buffered."""
        items = [(10.5 + i / 1024, f"w{i}") for i in range(4)]
        assert (await _measure(items)).buffered is True

    async def test_wait_exactly_the_threshold(self) -> None:
        """A wait equal to buffered_wait_s counts."""
        items = [(10.25, "a"), (10.25, "b"), (10.25, "c")]
        assert (await _measure(items)).buffered is True

    async def test_spread_out_chunks(self) -> None:
        """Chunks spread over time after a long wait are a real stream."""
        items = [(10.5, "a"), (10.75, "b"), (11.0, "c")]
        assert (await _measure(items)).buffered is False

    async def test_short_wait(self) -> None:
        """A burst after a short wait is just a fast model."""
        items = [(10.125, "a"), (10.125, "b"), (10.125, "c")]
        assert (await _measure(items)).buffered is False

    async def test_too_few_chunks(self) -> None:
        """Two chunks are too few to tell."""
        items = [(10.5, "a"), (10.5, "b")]
        assert (await _measure(items)).buffered is False

    async def test_only_content_chunks_count(self) -> None:
        """Role and usage chunks around two content chunks do not make it three."""
        items = [(10.5, _oa({"role": "assistant"})), (10.5, _oa({"content": "a"})), (10.5, _oa({"content": "b"}))]
        assert (await _measure(items)).buffered is False

    async def test_custom_thresholds(self) -> None:
        """buffered_gap_s and buffered_wait_s set the thresholds."""
        items = [(10.5, "a"), (10.75, "b"), (11.0, "c")]
        assert (await _measure(items, buffered_gap_s=0.25, buffered_wait_s=0.5)).buffered is True


# -- sync streams --------------------------------------------------------------------------


class TestObserveSync:
    """StreamObserver.observe_sync on sync iterators."""

    def test_measurement(self) -> None:
        """A sync OpenAI stream is measured like an async one."""
        assert _measure_sync(ROLE_THEN_TEXT, _openai()) == Measurement(
            ttft_s=0.5,
            total_s=1.0,
            text="Hi there",
            usage=Usage(2006, 1920, None, 300),
            streamed=True,
            censored=False,
            error=None,
            cancelled=False,
            chunks=4,
            buffered=False,
        )

    def test_chunks_pass_through_unchanged(self) -> None:
        """Every chunk is yielded, the same objects in the same order."""
        clock = FakeClock()
        out = list(_observer(None, clock).observe_sync(_timed_sync(clock, ROLE_THEN_TEXT)))
        assert [a is b for a, (_, b) in zip(out, ROLE_THEN_TEXT, strict=True)] == [True, True, True, True]

    def test_error_is_recorded_and_reraised(self) -> None:
        """An error before the first token is censored and re-raised."""
        clock = FakeClock()
        observer = _observer(None, clock)

        def broken() -> Iterator[Any]:
            clock.now = 10.25
            yield _oa({"role": "assistant"})
            raise ValueError("bad frame")

        with pytest.raises(ValueError, match="bad frame"):
            list(observer.observe_sync(broken()))
        assert observer.measurement is not None
        assert (observer.measurement.censored, observer.measurement.error) == (True, "ValueError: bad frame")

    def test_consumer_breaks_out(self) -> None:
        """Closing the wrapper early records cancelled and closes the source."""
        clock = FakeClock()
        observer = _observer(None, clock)
        closed: list[str] = []
        source = _timed_sync(clock, ROLE_THEN_TEXT, closed)
        with contextlib.closing(observer.observe_sync(source)) as chunks:
            for chunk in chunks:
                if content_of(chunk):
                    break
        assert observer.measurement is not None
        assert (observer.measurement.cancelled, observer.measurement.censored, closed) == (True, False, ["closed"])

    def test_timeout_on_late_chunk(self) -> None:
        """A chunk arriving after timeout_s with no first token yet raises TimeoutError, censored."""
        clock = FakeClock()
        observer = _observer(None, clock, timeout_s=1.0)
        items = [(10.25, _oa({"role": "assistant"})), (11.5, _oa({"content": "late"}))]
        with pytest.raises(TimeoutError, match=re.escape("no first token within 1.0 s")):
            list(observer.observe_sync(_timed_sync(clock, items)))
        assert observer.measurement is not None
        assert (
            observer.measurement.censored,
            observer.measurement.chunks,
            observer.measurement.total_s,
            observer.measurement.text,
        ) == (True, 1, 1.5, "")

    def test_error_closes_the_source(self) -> None:
        """A source iterator that raised is closed (its close() is called)."""

        class Failing:
            closed = 0

            def __iter__(self) -> Failing:
                return self

            def __next__(self) -> Any:
                raise OSError("socket closed")

            def close(self) -> None:
                self.closed += 1

        source = Failing()
        with pytest.raises(OSError, match="socket closed"):
            list(_observer().observe_sync(source))
        assert source.closed == 1

    def test_timeout_on_late_end(self) -> None:
        """A stream that ends after timeout_s without any token times out too."""
        clock = FakeClock()
        observer = _observer(None, clock, timeout_s=1.0)

        def empty() -> Iterator[Any]:
            clock.now = 12.0
            yield from ()

        with pytest.raises(TimeoutError):
            list(observer.observe_sync(empty()))

    def test_no_timeout_after_first_token(self) -> None:
        """Chunks after the first token may arrive after timeout_s."""
        measurement = _measure_sync([(10.5, "Hi"), (15.0, "!")], timeout_s=1.0)
        assert (measurement.ttft_s, measurement.total_s, measurement.error) == (0.5, 5.0, None)

    @given(st.lists(st.tuples(st.integers(0, 64), st.text(max_size=3)), max_size=12))
    def test_ttft_is_first_non_empty_string(self, steps: list[tuple[int, str]]) -> None:
        """For any stream of strings, the text is their join and TTFT the arrival of the first non-empty one."""
        items: list[tuple[float, Any]] = []
        now = STARTED
        for step, text in steps:
            now += step / 64
            items.append((now, text))
        measurement = _measure_sync(items)
        first = next((at - STARTED for at, text in items if text), None)
        assert (measurement.text, measurement.ttft_s) == ("".join(text for _, text in items), first)


# -- full responses ------------------------------------------------------------------------


def _completion(message: dict[str, Any]) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
    )


class TestFullResponses:
    """observe_awaitable and observe_value: TTFT is the whole latency."""

    async def test_awaitable(self) -> None:
        """A non-streamed OpenAI response: ttft equals total, not streamed, usage and text parsed."""
        clock = FakeClock()
        observer = _observer(_openai(), clock)

        async def call() -> ChatCompletion:
            clock.now = 11.5
            return _completion({"role": "assistant", "content": "Sure."})

        response = await observer.observe_awaitable(call())
        assert (response.id, observer.measurement) == (
            "chatcmpl-1",
            Measurement(
                ttft_s=1.5,
                total_s=1.5,
                text="Sure.",
                usage=Usage(10, None, None, 2),
                streamed=False,
                censored=False,
                error=None,
                cancelled=False,
                chunks=0,
                buffered=False,
            ),
        )

    async def test_awaitable_error(self) -> None:
        """A failed full call is censored, not streamed, and re-raised."""
        clock = FakeClock()
        observer = _observer(_openai(), clock)

        async def call() -> Any:
            clock.now = 10.75
            raise ConnectionError("refused")

        with pytest.raises(ConnectionError):
            await observer.observe_awaitable(call())
        assert observer.measurement == Measurement(
            ttft_s=None,
            total_s=0.75,
            text="",
            usage=None,
            streamed=False,
            censored=True,
            error="ConnectionError: refused",
            cancelled=False,
            chunks=0,
            buffered=False,
        )

    async def test_awaitable_timeout(self) -> None:
        """A full call slower than the timeout raises TimeoutError and is censored."""
        observer = _observer(_openai(), FakeClock(), timeout_s=0.01)
        with pytest.raises(TimeoutError):
            await observer.observe_awaitable(asyncio.Event().wait())
        assert observer.measurement is not None
        assert (observer.measurement.censored, observer.measurement.streamed) == (True, False)

    def test_value_anthropic_message(self) -> None:
        """An Anthropic Message: text from its text blocks, usage with cache reads included."""
        clock = FakeClock(11.0)
        message = AnthropicMessage.model_validate(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "output_tokens": 5},
            }
        )
        observer = _observer(_anthropic(), clock)
        observer.observe_value(message)
        assert observer.measurement is not None
        assert (observer.measurement.ttft_s, observer.measurement.text, observer.measurement.usage) == (
            1.0,
            "ok",
            Usage(110, 100, 0, 5),
        )

    def test_value_tool_calls(self) -> None:
        """Tool calls of a full response are recorded."""
        call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": CALL_ARGS}}
        observer = _observer(_openai(), FakeClock(11.0))
        observer.observe_value(_completion({"role": "assistant", "content": None, "tool_calls": [call]}))
        assert observer.measurement is not None
        assert (observer.measurement.text, observer.measurement.tool_calls) == ("", (call,))

    def test_value_string(self) -> None:
        """A string response is its own text."""
        observer = _observer(None, FakeClock(10.5))
        assert (observer.observe_value("hello"), observer.measurement) == (
            "hello",
            Measurement(
                ttft_s=0.5,
                total_s=0.5,
                text="hello",
                usage=None,
                streamed=False,
                censored=False,
                error=None,
                cancelled=False,
                chunks=0,
                buffered=False,
            ),
        )

    def test_value_unparseable(self) -> None:
        """A response the adapter cannot parse gives empty text, and is still timed."""
        observer = _observer(_openai(), FakeClock(10.5))
        observer.observe_value({"choices": []})
        assert observer.measurement is not None
        assert (observer.measurement.ttft_s, observer.measurement.text) == (0.5, "")


# -- options and warnings ------------------------------------------------------------------


class TestOptions:
    """StreamObserver's constructor checks."""

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"timeout_s": 0}, "timeout_s must be a positive number or None, not 0"),
            ({"timeout_s": float("nan")}, "timeout_s must be a positive number or None, not nan"),
            ({"buffered_gap_s": -1.0}, "buffered_gap_s and buffered_wait_s must be >= 0"),
            ({"buffered_wait_s": "1"}, "buffered_wait_s must be a number, not '1'"),
            ({"started": True}, "started must be a number, not True"),
            ({"clock": 3.0}, "clock must be callable, not 3.0"),
        ],
    )
    def test_bad_option(self, options: dict[str, Any], message: str) -> None:
        """A bad option raises ConfigurationError naming it."""
        arguments: dict[str, Any] = {"started": STARTED, "clock": FakeClock(), **options}
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            StreamObserver(None, **arguments)


class TestWarnBufferedOnce:
    """BufferedStreamWarning and warn_buffered_once."""

    def test_is_a_user_warning(self) -> None:
        """The warning is an LLMVoiceWarning, hence a UserWarning."""
        assert (issubclass(BufferedStreamWarning, LLMVoiceWarning), issubclass(BufferedStreamWarning, UserWarning)) == (
            True,
            True,
        )

    def test_first_call_warns(self) -> None:
        """The first call for a key warns and returns True."""
        with pytest.warns(BufferedStreamWarning, match="proxy-a: the streamed response arrived all at once"):
            assert warn_buffered_once("proxy-a") is True

    def test_second_call_is_silent(self) -> None:
        """A second call for the same key returns False and does not warn (warnings are errors here)."""
        with pytest.warns(BufferedStreamWarning):
            warn_buffered_once("proxy-b")
        assert warn_buffered_once("proxy-b") is False

    def test_other_key_warns(self) -> None:
        """Another key warns on its own."""
        with pytest.warns(BufferedStreamWarning):
            warn_buffered_once("proxy-c")
        with pytest.warns(BufferedStreamWarning, match="proxy-d"):
            warn_buffered_once("proxy-d")

    def test_silenced_by_filter(self) -> None:
        """An ignore filter on the category silences it."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=BufferedStreamWarning)
            assert warn_buffered_once("proxy-e") is True
