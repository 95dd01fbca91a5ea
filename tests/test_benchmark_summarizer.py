from __future__ import annotations

from typing import Any

import pytest

from llmvoice.benchmark.summarizer import ExtractiveSummarizer
from llmvoice.errors import ConfigurationError

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a bot. Ignore this."},
    {"role": "user", "content": "Hi there. My name is Ada Lovelace and my order is A-1234."},
    {"role": "assistant", "content": "Thanks! Let me check that for you. One moment please."},
    {"role": "tool", "tool_call_id": "c1", "content": "Order A-1234 shipped on 12 March."},
    {"role": "assistant", "content": "Your order shipped on 12 March. Anything else?"},
]


@pytest.mark.parametrize(
    ("max_tokens", "expected"),
    [
        (5, "One moment please."),
        (10, "Thanks! Your order shipped on 12 March."),
        (20, "My name is Ada Lovelace and my order is A-1234. Your order shipped on 12 March."),
        (
            40,
            "Hi there. My name is Ada Lovelace and my order is A-1234. Let me check that for you. "
            "One moment please. Your order shipped on 12 March. Anything else?",
        ),
    ],
)
def test_exact_summaries_within_the_budget(max_tokens: int, expected: str) -> None:
    assert ExtractiveSummarizer(max_tokens, ratio=1.0).summarize(MESSAGES) == expected


def test_everything_fits_at_ratio_one_in_original_order_without_system_text_or_tool_output() -> None:
    summary = ExtractiveSummarizer(1000, ratio=1.0).summarize(MESSAGES)
    assert summary == (
        "Hi there. My name is Ada Lovelace and my order is A-1234. Thanks! Let me check that for you. "
        "One moment please. Your order shipped on 12 March. Anything else?"
    )


def test_the_ratio_bounds_the_budget_and_specific_details_win() -> None:
    # 41 tokens read (characters / 4 per sentence); at 0.3 the budget is 12: the name-and-order sentence.
    assert ExtractiveSummarizer(100, ratio=0.3).summarize(MESSAGES) == "My name is Ada Lovelace and my order is A-1234."
    # A quarter is 10: it no longer fits; the date sentence does (8 tokens), and a 2-token one fills the rest.
    assert ExtractiveSummarizer(100).summarize(MESSAGES) == "Thanks! Your order shipped on 12 March."


def test_docstring_example() -> None:
    summary = ExtractiveSummarizer(5, ratio=1.0).summarize(
        [{"role": "user", "content": "Hi there. My order is A-1234."}]
    )
    assert summary == "My order is A-1234."


def test_content_blocks_repeats_and_empty_input() -> None:
    summarizer = ExtractiveSummarizer(100, ratio=1.0)
    blocks = [
        {"role": "user", "content": [{"type": "text", "text": "Same. Same."}, {"type": "image_url"}]},
        {"role": "user", "content": "Same."},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "Result 7."}]},
    ]
    assert summarizer.summarize(blocks) == "Same."
    assert summarizer.summarize([]) == ""
    assert summarizer.summarize([{"role": "system", "content": "Only system."}]) == ""
    assert summarizer.summarize([{"role": "assistant", "content": None, "tool_calls": []}]) == ""


def test_deterministic() -> None:
    summarizer = ExtractiveSummarizer(20, ratio=0.5)
    assert summarizer.summarize(MESSAGES) == ExtractiveSummarizer(20, ratio=0.5).summarize(list(MESSAGES))


@pytest.mark.parametrize(("max_tokens", "ratio"), [(0, 0.25), (-1, 0.25), (True, 0.25), (10, 0.0), (10, 1.5)])
def test_invalid_settings(max_tokens: Any, ratio: float) -> None:
    with pytest.raises(ConfigurationError):
        ExtractiveSummarizer(max_tokens, ratio=ratio)
