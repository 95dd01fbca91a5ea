"""The Pipecat processor in a real Pipecat pipeline: frames in order, a cache-stable context."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (
    InterruptionFrame,
    LLMContextFrame,
    LLMEnablePromptCachingFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TextFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData, TTFBMetricsData
from pipecat.observers.base_observer import FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.tests.utils import run_test

from llmvoice.integrations.pipecat import LLMVoiceProcessor

SYSTEM = {"role": "system", "content": "You are Ava, the voice agent of Northwind."}
CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}


async def _send(processor: LLMVoiceProcessor, context: LLMContext) -> list[dict[str, Any]]:
    """One LLMContextFrame through a real pipeline; the messages the LLM would receive."""
    down, _ = await run_test(processor, frames_to_send=[LLMContextFrame(context=context)])
    (frame,) = [f for f in down if isinstance(f, LLMContextFrame)]
    return [dict(m) for m in frame.context.get_messages()]


def _bytes(messages: list[dict[str, Any]]) -> bytes:
    return json.dumps(messages, sort_keys=True).encode()


async def test_frames_pass_through_in_order() -> None:
    """Other frames pass through unchanged and in order around the context frame."""
    context = LLMContext([SYSTEM, {"role": "user", "content": "hi"}])
    frames = [TextFrame("a"), LLMContextFrame(context=context), TextFrame("b")]
    down, _ = await run_test(
        LLMVoiceProcessor(),
        frames_to_send=frames,
        expected_down_frames=[TextFrame, LLMEnablePromptCachingFrame, LLMContextFrame, TextFrame],
    )
    assert [getattr(f, "text", None) for f in down] == ["a", None, None, "b"]


async def test_prompt_caching_is_switched_on_once() -> None:
    """LLMEnablePromptCachingFrame(enable=True) goes before the first context only; it can be turned off."""
    processor = LLMVoiceProcessor()
    context = LLMContext([SYSTEM, {"role": "user", "content": "hi"}])
    first, _ = await run_test(processor, frames_to_send=[LLMContextFrame(context=context)])
    second, _ = await run_test(processor, frames_to_send=[LLMContextFrame(context=context)])
    off, _ = await run_test(
        LLMVoiceProcessor(enable_prompt_caching=False), frames_to_send=[LLMContextFrame(context=context)]
    )
    assert [type(f).__name__ for f in (*first, *second, *off)] == [
        "LLMEnablePromptCachingFrame",
        "LLMContextFrame",
        "LLMContextFrame",
        "LLMContextFrame",
    ]
    assert isinstance(first[0], LLMEnablePromptCachingFrame) and first[0].enable is True


async def test_context_is_laid_out_in_cache_order() -> None:
    """The dynamic context goes after the committed history and before the current turn."""
    processor = LLMVoiceProcessor()
    processor.set_context("Caller: premium tier")
    context = LLMContext([SYSTEM, {"role": "user", "content": "hi"}])
    await _send(processor, context)
    context.add_messages([{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Where is it?"}])
    sent = await _send(processor, context)
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", SYSTEM["content"]),
        ("user", "hi"),
        ("assistant", "Hello!"),
        ("system", "Caller: premium tier"),
        ("user", "Where is it?"),
    ]


async def test_prefix_up_to_the_history_is_byte_stable_across_turns() -> None:
    """Each turn's system prompt and committed history are a byte prefix of the next turn's request."""
    processor = LLMVoiceProcessor()
    processor.set_context("Caller: premium tier")
    context = LLMContext([SYSTEM, {"role": "user", "content": "q0"}])
    sent = [await _send(processor, context)]
    for turn in range(1, 5):
        context.add_messages(
            [{"role": "assistant", "content": f"a{turn - 1}"}, {"role": "user", "content": f"q{turn}"}]
        )
        processor.set_context(f"Caller: premium tier, turn {turn}")
        sent.append(await _send(processor, context))
    for before, after in itertools.pairwise(sent):
        history = before[: before.index({"role": "system", "content": before[-2]["content"]})]
        assert _bytes(after[: len(history)]) == _bytes(history)
    assert len(sent[-1]) == 1 + 8 + 1 + 1


async def test_tool_results_in_progress_wait_for_their_content() -> None:
    """An IN_PROGRESS tool result stays at the end, and is taken in once Pipecat fills it."""
    processor = LLMVoiceProcessor()
    context = LLMContext([SYSTEM, {"role": "user", "content": "find it"}])
    await _send(processor, context)
    context.add_messages(
        [
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": "IN_PROGRESS"},
        ]
    )
    sent = await _send(processor, context)
    assert (sent[-1]["content"], processor.manager is not None and processor.manager.state.open_tool_calls) == (
        "IN_PROGRESS",
        ("c1",),
    )
    sent[-1]["content"] = "found"
    context.set_messages(sent)
    final = await _send(processor, context)
    assert processor.manager is not None
    assert (final[-1]["content"], processor.manager.state.open_tool_calls) == ("found", ())


async def test_a_rewritten_context_rebuilds_the_state() -> None:
    """A context replaced elsewhere (an update frame, a summarizer) is taken in from scratch."""
    processor = LLMVoiceProcessor()
    context = LLMContext([SYSTEM, {"role": "user", "content": "hi"}])
    await _send(processor, context)
    context.set_messages([SYSTEM, {"role": "user", "content": "Summary: we spoke."}, {"role": "user", "content": "ok"}])
    sent = await _send(processor, context)
    assert (processor.resyncs, [m["content"] for m in sent[1:]]) == (1, ["Summary: we spoke.", "ok"])
    assert processor.manager is not None
    state = processor.manager.state  # a new epoch; what the state held is archived, ids keep counting
    assert (state.epoch, [m.text for m in state.archive], [m.id for m in state.messages]) == (1, ["hi"], [1, 2])


async def test_a_context_llmvoice_cannot_take_is_passed_on(caplog: pytest.LogCaptureFixture) -> None:
    """A tool result without its call is passed on unchanged, with one warning."""
    processor = LLMVoiceProcessor()
    messages = [SYSTEM, {"role": "tool", "tool_call_id": "zz", "content": "orphan"}]
    sent = await _send(processor, LLMContext(list(messages)))
    assert sent == messages
    assert [r.getMessage() for r in caplog.records if r.name == "llmvoice.integrations"] == [
        "llmvoice: the context cannot be taken in (message 0, field 'tool_call_id': no open tool call with id "
        "'zz' (open: [])); it is passed on as it is"
    ]


class ScriptedLLM(LLMService):  # type: ignore[misc]
    """A test double of a Pipecat LLM service: a scripted reply with TTFB and usage metrics."""

    def __init__(self, ttfb_s: float = 0.42, *, finish: bool = True) -> None:
        super().__init__()
        self.ttfb_s = ttfb_s
        self.finish = finish
        self.seen: list[list[dict[str, Any]]] = []

    async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        self.seen.append([dict(m) for m in frame.context.get_messages()])
        usage = LLMTokenUsage(prompt_tokens=900, completion_tokens=5, total_tokens=905, cache_read_input_tokens=768)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(MetricsFrame(data=[TTFBMetricsData(processor="llm", value=self.ttfb_s)]))
        await self.push_frame(LLMTextFrame("hello"))
        if not self.finish:  # cut off mid-stream: no usage, no end
            return
        await self.push_frame(MetricsFrame(data=[LLMUsageMetricsData(processor="llm", value=usage)]))
        await self.push_frame(LLMFullResponseEndFrame())


async def test_llm_metrics_reach_the_controller() -> None:
    """The LLM service's TTFB and usage, seen by the observer, become the controller's turn record."""
    processor = LLMVoiceProcessor(target_ms=800)
    llm = ScriptedLLM()
    context = LLMContext([SYSTEM, {"role": "user", "content": "hi"}])
    await run_test(
        Pipeline([processor, llm]),
        frames_to_send=[LLMContextFrame(context=context)],
        observers=[processor.observer()],
    )
    assert processor.controller is not None
    (record,) = processor.controller.history
    assert (record.ttft_s, record.input_tokens, record.cached_tokens, record.estimated) == (0.42, 900, 768, False)
    assert llm.seen[0][0] == SYSTEM


async def test_other_services_metrics_are_ignored() -> None:
    """TTFB metrics from a service that is not an LLM (TTS, STT) do not count."""
    processor = LLMVoiceProcessor(target_ms=800)
    observer = processor.observer()
    await _send(processor, LLMContext([SYSTEM, {"role": "user", "content": "hi"}]))
    frame = MetricsFrame(data=[TTFBMetricsData(processor="tts", value=0.9)])
    await observer.on_push_frame(
        FramePushed(
            source=processor, destination=processor, frame=frame, direction=FrameDirection.DOWNSTREAM, timestamp=0
        )
    )
    assert processor.controller is not None
    assert processor.controller.history == ()


async def test_barge_in_before_the_first_token_is_a_censored_sample() -> None:
    """An interruption before any token ends the controller's turn with a censored sample."""
    processor = LLMVoiceProcessor(target_ms=800)
    await _send(processor, LLMContext([SYSTEM, {"role": "user", "content": "hi"}]))
    await run_test(processor, frames_to_send=[InterruptionFrame()])  # system frames overtake queued ones
    assert processor.controller is not None
    (record,) = processor.controller.history
    assert record.censored is True


async def test_barge_in_keeps_the_state_consistent() -> None:
    """After a barge-in, the partial reply the aggregator commits and the new question are taken in."""
    processor = LLMVoiceProcessor(target_ms=800)
    context = LLMContext([SYSTEM, {"role": "user", "content": "tell me everything"}])
    first = await _send(processor, context)
    await run_test(processor, frames_to_send=[InterruptionFrame()])
    context.add_messages(
        [{"role": "assistant", "content": "Sure, so the"}, {"role": "user", "content": "stop, just the ETA"}]
    )
    sent = await _send(processor, context)
    assert processor.controller is not None
    assert _bytes(sent[: len(first)]) == _bytes(first)
    assert [m["content"] for m in sent[len(first) :]] == ["Sure, so the", "stop, just the ETA"]
    assert [r.censored for r in processor.controller.history] == [True]


async def test_an_interruption_outside_a_turn_is_ignored() -> None:
    """A barge-in while no LLM turn runs records nothing."""
    processor = LLMVoiceProcessor(target_ms=800)
    await run_test(processor, frames_to_send=[InterruptionFrame()])
    assert processor.controller is None


async def test_barge_in_mid_stream_keeps_the_measured_first_token() -> None:
    """Interrupted after its first token, the turn is recorded with that TTFB, not as censored."""
    processor = LLMVoiceProcessor(target_ms=800)
    pipeline = Pipeline([processor, ScriptedLLM(0.35, finish=False)])
    context = LLMContext([SYSTEM, {"role": "user", "content": "tell me everything"}])
    await run_test(pipeline, frames_to_send=[LLMContextFrame(context=context)], observers=[processor.observer()])
    await run_test(processor, frames_to_send=[InterruptionFrame()])
    assert processor.controller is not None
    (record,) = processor.controller.history
    assert (record.ttft_s, record.censored) == (0.35, False)
