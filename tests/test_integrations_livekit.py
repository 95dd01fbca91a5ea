"""The LiveKit integration with real livekit-agents ChatContext objects and the LLM node."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import llm
from livekit.agents.metrics import LLMMetrics

from llmvoice.integrations.livekit import LLMVoiceChatContext, from_chat_items, to_chat_items

INSTRUCTIONS = "You are Ava, the voice agent of Northwind."


def _context(*turns: tuple[str, str]) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=INSTRUCTIONS)
    for role, text in turns:
        ctx.add_message(role=role, content=text)  # type: ignore[arg-type]
    return ctx


def _messages(ctx: llm.ChatContext) -> list[dict[str, Any]]:
    return from_chat_items(ctx.items)


def _metrics(ttft: float, prompt: int = 900, cached: int = 768, cancelled: bool = False) -> LLMMetrics:
    return LLMMetrics(
        label="openai.LLM",
        request_id="r1",
        timestamp=0.0,
        duration=1.0,
        ttft=ttft,
        cancelled=cancelled,
        completion_tokens=5,
        prompt_tokens=prompt,
        prompt_cached_tokens=cached,
        total_tokens=prompt + 5,
        tokens_per_second=5.0,
    )


def test_prepare_lays_out_the_context_in_cache_order() -> None:
    """Instructions, committed history, dynamic context, then the current turn; the session's context is untouched."""
    adapter = LLMVoiceChatContext()
    adapter.set_context("Caller: premium tier")
    ctx = _context(("user", "hi"))
    adapter.prepare(ctx)
    ctx.add_message(role="assistant", content="Hello!")
    ctx.add_message(role="user", content="Where is it?")
    prepared = adapter.prepare(ctx)
    assert [(m["role"], m["content"]) for m in _messages(prepared)] == [
        ("system", INSTRUCTIONS),
        ("user", "hi"),
        ("assistant", "Hello!"),
        ("system", "Caller: premium tier"),
        ("user", "Where is it?"),
    ]
    assert len(ctx.items) == 4


def test_prefix_is_byte_stable_across_turns() -> None:
    """Instructions and committed history of each turn are a byte prefix of the next turn's context."""
    adapter = LLMVoiceChatContext()
    ctx = _context(("user", "q0"))
    sent = []
    for turn in range(1, 5):
        adapter.set_context(f"context {turn}")
        sent.append(_messages(adapter.prepare(ctx)))
        ctx.add_message(role="assistant", content=f"a{turn - 1}")
        ctx.add_message(role="user", content=f"q{turn}")
    for before, after in itertools.pairwise(sent):
        stable = before[:-2]  # all but the dynamic context and the current question
        assert json.dumps(after[: len(stable)]) == json.dumps(stable)


def test_function_calls_map_both_ways() -> None:
    """FunctionCall and FunctionCallOutput items become tool_calls and tool messages, and back."""
    adapter = LLMVoiceChatContext()
    ctx = _context(("user", "find my order"))
    ctx.insert(llm.FunctionCall(call_id="c1", name="lookup", arguments='{"id": 7}'))
    ctx.insert(llm.FunctionCallOutput(call_id="c1", output="shipped", is_error=False))
    prepared = adapter.prepare(ctx)
    assert [type(i).__name__ for i in prepared.items] == [
        "ChatMessage",
        "ChatMessage",
        "FunctionCall",
        "FunctionCallOutput",
    ]
    call, output = prepared.items[2], prepared.items[3]
    assert isinstance(call, llm.FunctionCall) and isinstance(output, llm.FunctionCallOutput)
    assert (call.call_id, call.name, call.arguments, output.call_id, output.output) == (
        "c1",
        "lookup",
        '{"id": 7}',
        "c1",
        "shipped",
    )


def test_item_ids_are_stable() -> None:
    """to_chat_items gives the same ids to the same messages, turn after turn."""
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    assert [i.id for i in to_chat_items(messages)] == [i.id for i in to_chat_items(messages)] == ["lv_0", "lv_1"]


def test_a_truncated_context_rebuilds_the_state() -> None:
    """Items removed outside llmvoice (truncate, a summary) make it rebuild from the context."""
    adapter = LLMVoiceChatContext()
    ctx = _context(("user", "one"), ("assistant", "two"), ("user", "three"))
    adapter.prepare(ctx)
    ctx.truncate(max_items=2)
    prepared = adapter.prepare(ctx)
    assert (adapter.resyncs, [m["content"] for m in _messages(prepared)]) == (1, [INSTRUCTIONS, "two", "three"])
    assert adapter.manager is not None
    state = adapter.manager.state  # a new epoch; what the state held is archived, ids keep counting
    assert (state.epoch, [m.text for m in state.archive], [m.id for m in state.messages]) == (
        1,
        ["one", "two", "three"],
        [3, 4],
    )


def test_a_context_it_cannot_take_is_sent_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    """A function output without its call is sent unchanged, with a warning."""
    adapter = LLMVoiceChatContext()
    ctx = _context()
    ctx.insert(llm.FunctionCallOutput(call_id="zz", output="orphan", is_error=False))
    assert adapter.prepare(ctx) is ctx
    assert "the chat context cannot be taken in" in caplog.text


async def test_llm_node_runs_the_inner_node_on_the_prepared_context() -> None:
    """llm_node hands the prepared context to the inner node and passes its chunks through."""
    adapter = LLMVoiceChatContext()
    adapter.set_context("Caller: premium tier")
    seen: list[list[dict[str, Any]]] = []

    async def inner(agent: Any, chat_ctx: llm.ChatContext, tools: list[Any], settings: Any) -> AsyncIterator[str]:
        seen.append(_messages(chat_ctx))
        yield "hel"
        yield "lo"

    chunks = [c async for c in adapter.llm_node(object(), _context(("user", "hi")), [], None, inner=inner)]
    assert (chunks, [m["content"] for m in seen[0]]) == (["hel", "lo"], [INSTRUCTIONS, "Caller: premium tier", "hi"])


def test_llm_metrics_reach_the_controller() -> None:
    """LiveKit's LLMMetrics (ttft, prompt and cached tokens) become the controller's turn record."""
    adapter = LLMVoiceChatContext(target_ms=800)
    adapter.prepare(_context(("user", "hi")))
    adapter.on_metrics(_metrics(0.42))
    assert adapter.controller is not None
    (record,) = adapter.controller.history
    assert (record.ttft_s, record.input_tokens, record.cached_tokens, record.censored) == (0.42, 900, 768, False)


def test_cancelled_before_the_first_token_is_censored() -> None:
    """A request cancelled before its first token (ttft -1) is a censored sample; other metrics are ignored."""
    adapter = LLMVoiceChatContext(target_ms=800)
    adapter.prepare(_context(("user", "hi")))
    adapter.on_metrics(object())
    adapter.on_metrics(_metrics(-1.0, cancelled=True))
    adapter.on_metrics(_metrics(0.3))  # no turn open any more: ignored
    assert adapter.controller is not None
    assert [r.censored for r in adapter.controller.history] == [True]
