"""Every compaction strategy on random conversations: tool pairs intact, valid history, nothing lost.

Hypothesis plays random sessions (user turns, tool rounds with long and short outputs, context
changes in ``append`` mode, tool-output masking on or off) and, between turns, cuts the history at
a random turn boundary with one of the strategies, or rolls back to a state saved before a cut.
After every step:

* every tool result in the prompt follows the assistant message that called it, and every call
  committed has its result;
* the OpenAI and Anthropic requests are valid: no orphan tool result, Anthropic's first message
  is a user turn;
* nothing is lost: every message ever appended is in the prompt, in the archive, or covered by a
  summary, and the full text of every tool output can be read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmvoice import functional as fn
from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter
from llmvoice.compaction import (
    CallableStrategy,
    Embedder,
    Replace,
    SemanticStrategy,
    Strategy,
    SummariseStrategy,
    SummaryJob,
    WindowStrategy,
    apply,
    covered_ids,
    find_archived,
    from_llmbuffer_hook,
)
from llmvoice.messages import Message
from llmvoice.state import State
from llmvoice.tokens import EstimateCounter

EXAMPLES = 300
OPENAI = OpenAIAdapter("gpt-4o-mini", counter=EstimateCounter())
ANTHROPIC = AnthropicAdapter("claude-sonnet-4-6", counter=EstimateCounter())
STRATEGIES = ("window", "semantic", "summarise", "custom", "llmbuffer")
OPERATIONS = ("turn", "turn", "tool_turn", "context", "compact", "compact", "rollback")
WORDS = ("order", "parcel", "tent", "boots", "refund", "address", "size", "colour", "call", "store")


def _encode(texts: list[str]) -> Any:
    """A bag-of-words vector over WORDS (plus one constant dimension)."""
    return np.array([[float(w in t.lower()) for w in WORDS] + [0.1] for t in texts], dtype=np.float32)


def _truncate(messages: list[dict[str, Any]], target_tokens: int, adapter: Any) -> list[dict[str, Any]]:
    """llmbuffer's truncation_compaction_hook: drop the oldest until the rest fits."""
    kept = list(messages)
    while len(kept) > 1 and adapter.count_tokens(kept) > target_tokens:
        kept.pop(0)
    return kept


def _strategy(name: str) -> Strategy:
    if name == "window":
        return WindowStrategy()
    if name == "semantic":
        return SemanticStrategy(Embedder(_encode, background=False), budget_tokens=120)
    if name == "summarise":

        def summarize(job: SummaryJob) -> str:
            return " ".join(m.text[:20] for m in job.span if m.text) or "nothing said"

        return SummariseStrategy(summarize, background=False, max_tokens=60)
    if name == "custom":
        return CallableStrategy(lambda messages, budget, adapter: f"{len(messages)} messages earlier")
    return from_llmbuffer_hook(_truncate)


@dataclass
class Session:
    """The state under test and everything needed to check it."""

    state: State
    appended: dict[int, Message] = field(default_factory=dict)
    saved: list[State] = field(default_factory=list)
    calls: int = 0

    def append(self, raw: dict[str, Any]) -> None:
        message_id = self.state.next_id
        self.state = fn.append_message(self.state, raw)
        self.appended[message_id] = next(
            m for m in (*self.state.committed, *self.state.recent, *self.state.archive) if m.id == message_id
        )

    def turn(self, words: str) -> None:
        self.append({"role": "user", "content": f"user asks about {words}"})
        self.append({"role": "assistant", "content": f"assistant answers about {words}"})

    def tool_turn(self, words: str, size: int) -> None:
        self.calls += 1
        call = f"call_{self.calls}"
        self.append({"role": "user", "content": f"please look up the {words}"})
        arguments = '{"q": "' + words + '"}'
        self.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call, "type": "function", "function": {"name": "lookup", "arguments": arguments}}
                ],
            }
        )
        self.append({"role": "tool", "tool_call_id": call, "content": f"result for {words}: " + "x" * size})
        self.append({"role": "assistant", "content": f"the {words} is fine"})

    def context(self, words: str) -> None:
        message_id = self.state.next_id
        self.state = fn.set_context(self.state, f"context about {words}")
        if self.state.next_id > message_id:
            self.appended[message_id] = next(
                m for m in (*self.state.committed, *self.state.recent) if m.id == message_id
            )


def _check(session: Session) -> None:
    state = session.state
    prompt = [*state.committed, *state.recent]
    # Tool pairs: a result follows its call; a committed call has its result.
    called: set[str] = set()
    answered: set[str] = set()
    for message in prompt:
        if message.role == "tool":
            assert message.tool_call_id in called
            answered.add(str(message.tool_call_id))
        called.update(call.id for call in message.tool_calls)
    for message in state.committed:
        for call in message.tool_calls:
            assert call.id in answered or call.id in state.open_tool_calls
    # Valid requests.
    openai = fn.build_request(state, OPENAI, None).payload["messages"]
    assert openai[0]["role"] == "system"
    assert openai[1]["role"] not in ("tool", "assistant") if len(openai) > 1 else True
    anthropic = fn.build_request(state, ANTHROPIC, None).payload["messages"]
    if anthropic:
        assert anthropic[0]["role"] == "user"
        first = anthropic[0]["content"]
        assert not (isinstance(first, list) and any(block.get("type") == "tool_result" for block in first))
    # Nothing lost.
    assert set(session.appended) <= fn.accounted_ids(state)
    held = {m.id: m for m in prompt}
    for message_id, original in session.appended.items():
        if original.role != "tool":
            continue
        in_prompt = held.get(message_id)
        full = in_prompt if in_prompt is not None and in_prompt.content == original.content else None
        full = full or find_archived(state, message_id)
        covered = any(message_id in m.covers for m in (*prompt, *state.archive))
        assert (full is not None and full.content == original.content) or covered


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mask=st.booleans(),
    append_mode=st.booleans(),
    strategy_name=st.sampled_from(STRATEGIES),
    steps=st.lists(
        st.tuples(st.sampled_from(OPERATIONS), st.sampled_from(WORDS), st.integers(0, 400), st.integers(0, 1000)),
        min_size=1,
        max_size=30,
    ),
)
def test_strategies_keep_the_history_valid_and_lose_nothing(
    mask: bool, append_mode: bool, strategy_name: str, steps: list[tuple[str, str, int, int]]
) -> None:
    """Random sessions cut by one strategy stay valid for both providers and lose no message."""
    state = fn.new_state(
        "You are a support agent.",
        dynamic_mode="append" if append_mode else "per_turn",
        tool_output_limit=120 if mask else None,
        session_id="p",
    )
    session = Session(state)
    strategy = _strategy(strategy_name)
    for operation, words, size, pick in steps:
        if operation == "turn":
            session.turn(words)
        elif operation == "tool_turn":
            session.tool_turn(words, size)
        elif operation == "context" and append_mode:
            session.context(words)
        elif operation == "compact":
            boundaries = fn.turn_boundaries(session.state)
            if boundaries:
                cut = boundaries[pick % len(boundaries)]
                strategy.observe(session.state, OPENAI)
                before = session.state
                after, outcome = apply(session.state, OPENAI, strategy, cut, budget_tokens=120)
                if isinstance(outcome, Replace):
                    session.saved.append(before)
                    assert after.epoch == before.epoch + 1
                    # Provenance: the written blocks cover exactly the cut span.
                    written = {i for block in outcome.blocks for i in block.covers}
                    assert not outcome.blocks or written == set(covered_ids(before.committed[:cut]))
                else:
                    assert after is before
                session.state = after
        elif operation == "rollback" and session.saved:
            session.state = fn.rollback(session.state, session.saved.pop(pick % len(session.saved)))
            del session.saved[:]
        assert session.state.tool_output_limit == (120 if mask else None)
        _check(session)
