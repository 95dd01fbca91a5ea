"""Custom strategies: a hook's answer becomes replacement blocks; llmbuffer's hook shape works."""

from __future__ import annotations

from typing import Any

import pytest

from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.compaction import (
    SELECTION_HEADING,
    CallableStrategy,
    CompactionInput,
    Replace,
    Skip,
    from_llmbuffer_hook,
)
from llmvoice.errors import ConfigurationError
from llmvoice.state import State
from llmvoice.tokens import EstimateCounter

ADAPTER = OpenAIAdapter(counter=EstimateCounter())
CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}


def _state() -> State:
    return fn.append_messages(
        fn.new_state("S", session_id="c"),
        [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": "found"},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "thanks"},
            {"role": "assistant", "content": "bye"},
        ],
    )


def _run(hook: Any) -> Any:
    return CallableStrategy(hook).compact(CompactionInput(_state(), 4, ADAPTER, budget_tokens=50))


def test_hook_sees_dicts_budget_and_a_counting_adapter() -> None:
    """The hook gets the span as OpenAI dicts, the budget, and count_tokens over the session's counter."""
    seen: list[Any] = []

    def hook(messages: list[dict[str, Any]], target: int, adapter: Any) -> str:
        seen.append(([m["role"] for m in messages], target, adapter.name, adapter.count_tokens(messages[:1])))
        return "summary"

    _run(hook)
    assert seen == [(["user", "assistant", "tool", "assistant"], 50, "openai", 3 + 3)]


def test_a_string_becomes_a_summary_covering_the_span() -> None:
    """A string answer is a summary block covering ids 0-3."""
    outcome = _run(lambda m, t, a: "they said hello")
    assert isinstance(outcome, Replace)
    (block,) = outcome.blocks
    assert (block.kind, block.covers, block.text.endswith("they said hello")) == ("summary", (0, 1, 2, 3), True)


def test_empty_answers_cut_plainly() -> None:
    """An empty list or a blank string is a plain window cut."""
    assert (_run(lambda m, t, a: []), _run(lambda m, t, a: "  ")) == (
        Replace((), "<lambda>: plain cut"),
        Replace((), "<lambda>: empty summary, plain cut"),
    )


def test_one_new_plain_message_stays_as_it_is() -> None:
    """A single new system message keeps its role and text."""
    outcome = _run(lambda m, t, a: [{"role": "system", "content": "Earlier: a lookup."}])
    assert isinstance(outcome, Replace)
    assert [(b.role, b.text, b.kind) for b in outcome.blocks] == [("system", "Earlier: a lookup.", "summary")]


def test_kept_span_messages_are_quoted_in_one_block() -> None:
    """What llmbuffer's truncation keeps (the tail, starting at a tool result) is quoted, never sent raw."""
    outcome = _run(lambda m, t, a: m[2:])
    assert isinstance(outcome, Replace)
    (block,) = outcome.blocks
    assert (block.role, block.text) == ("user", f"{SELECTION_HEADING}\ntool c1: found\nassistant: done")


def test_llmbuffer_truncation_hook_shape() -> None:
    """llmbuffer's truncation_compaction_hook runs unchanged; the newest message that fits is quoted."""
    hooks = pytest.importorskip("llmbuffer.hooks")
    strategy = from_llmbuffer_hook(hooks.truncation_compaction_hook)
    outcome = strategy.compact(CompactionInput(_state(), 4, ADAPTER, budget_tokens=8))
    assert isinstance(outcome, Replace)
    assert (strategy.label, outcome.blocks[0].text) == (
        "truncation_compaction_hook",
        f"{SELECTION_HEADING}\nassistant: done",
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, "<lambda>: the hook declined the cut"),
        (42, "<lambda>: the hook returned int, not a string or a message list"),
    ],
)
def test_declined_or_odd_answers_skip(answer: Any, reason: str) -> None:
    """None declines; anything else that is not text or messages is a Skip naming the type."""
    assert _run(lambda m, t, a: answer) == Skip(reason)


def test_invalid_messages_skip() -> None:
    """A malformed message in the answer leaves the history as it is."""
    outcome = _run(lambda m, t, a: [{"role": "wizard", "content": "x"}])
    assert isinstance(outcome, Skip) and outcome.reason.startswith("<lambda>: the hook returned an invalid message")


def test_a_raising_hook_skips_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises is logged once and the history stays."""

    def broken(messages: Any, target: int, adapter: Any) -> Any:
        raise RuntimeError("boom")

    assert _run(broken) == Skip("broken: the hook failed (RuntimeError: boom)")
    assert [r.getMessage() for r in caplog.records] == ["compaction hook broken failed (RuntimeError: boom); no cut"]


def test_hook_must_be_callable() -> None:
    """A non-callable hook is refused."""
    with pytest.raises(ConfigurationError, match="hook must be callable, not str"):
        CallableStrategy("nope")  # type: ignore[arg-type]
