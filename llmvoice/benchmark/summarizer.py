"""A deterministic extractive summariser: the benchmark's stand-in for a summarising LLM.

The simulated providers do not generate text, so a contender that summarises its history (the
Pipecat re-implementation, for one) gets its summary from :class:`ExtractiveSummarizer`
instead: whole sentences of the conversation, picked by salience and kept in their original
order, within a token budget::

    summarizer = ExtractiveSummarizer(max_tokens=200)
    summary = summarizer.summarize(messages)

It is pure and deterministic (the same messages give the same summary), costs no request, and is
shared by every contender that summarises, so it favours none of them. It is not a model of
summary quality: an LLM paraphrases and merges, this keeps sentences verbatim. What it does
model is the trade a summary makes, keeping rare, specific details (names, numbers, codes)
over filler, within a budget that is a fraction of what it reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from llmvoice.errors import ConfigurationError

__all__ = ["ExtractiveSummarizer"]

_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD: Final = re.compile(r"[^\W_](?:[\w'-]*\w)?")
# A summary restates what was said; tool outputs reach it through the replies that relay them.
_ROLES: Final[frozenset[str]] = frozenset({"user", "assistant"})
# Salience weight of a term, on top of its inverse document frequency.
_DIGIT_WEIGHT: Final[float] = 2.0
_CAPITAL_WEIGHT: Final[float] = 1.5


def _text_of(message: Mapping[str, Any]) -> str:
    """The text of a message: a string content, or its text parts joined by newlines (not tool results)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return ""


def _tokens(text: str) -> int:
    """Estimated tokens of ``text``: one per 4 characters, rounded up."""
    return (len(text) + 3) // 4


class ExtractiveSummarizer:
    """Picks the most salient whole sentences of a conversation, in their original order.

    The text of user and assistant messages is read; system messages and tool outputs are left
    out (an LLM summary restates what the assistant told the caller about a lookup, which is in
    its reply, and does not copy the raw output: read as text, a JSON result is a long run of
    numbers that would crowd out everything the caller said). It is split into sentences at
    ``.``/``!``/``?`` followed by whitespace, and at line breaks. Each sentence scores the sum,
    over its distinct words, of the word's inverse sentence frequency
    ``log((1 + n) / (1 + df)) + 1``, times 2 for a word containing a digit or 1.5 for a
    capitalised one, divided by the square root of its word count. Sentences are taken from the
    highest score down (ties: the earlier one), skipping repeats and any that would overflow the
    budget, and are joined with spaces in conversation order.

    The budget is ``min(max_tokens, ratio * tokens read)``, tokens counted as characters / 4
    rounded up: an LLM asked for a summary writes a fraction of its input, not as much as
    ``max_tokens`` allows.

    Args:
        max_tokens: the most tokens a summary may have (a summary request's ``max_tokens``).
        ratio: the largest share of the input's tokens a summary may have.

    Raises:
        ConfigurationError: ``max_tokens`` is below 1 or ``ratio`` is not in (0, 1].

    Example::

        ExtractiveSummarizer(max_tokens=5, ratio=1.0).summarize(
            [{"role": "user", "content": "Hi there. My order is A-1234."}]
        )   # 'My order is A-1234.'
    """

    def __init__(self, max_tokens: int, *, ratio: float = 0.25) -> None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be a positive integer, not {max_tokens!r}")
        if not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise ConfigurationError(f"ratio must be in (0, 1], not {ratio!r}")
        self.max_tokens = max_tokens
        self.ratio = float(ratio)

    def summarize(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """Summarise a conversation.

        Args:
            messages: chat messages (OpenAI shape; Anthropic content blocks are read too).

        Returns:
            The selected sentences joined by spaces, or ``""`` when nothing fits or there is no
            text.
        """
        sentences: list[str] = []
        seen: set[str] = set()
        for message in messages:
            if message.get("role") not in _ROLES:
                continue
            for piece in _SENTENCE.split(_text_of(message)):
                sentence = " ".join(piece.split())
                if sentence and sentence not in seen:
                    seen.add(sentence)
                    sentences.append(sentence)
        if not sentences:
            return ""
        budget = min(self.max_tokens, math.floor(self.ratio * sum(_tokens(s) for s in sentences)))
        words = [_WORD.findall(sentence) for sentence in sentences]
        frequency: dict[str, int] = {}
        for found in words:
            for term in {w.lower() for w in found}:
                frequency[term] = frequency.get(term, 0) + 1
        count = len(sentences)
        scores: list[float] = []
        for found in words:
            weights: dict[str, float] = {}
            for word in found:
                term = word.lower()
                weight = _DIGIT_WEIGHT if any(c.isdigit() for c in word) else 1.0
                if word[0].isupper():
                    weight = max(weight, _CAPITAL_WEIGHT)
                weights[term] = max(weights.get(term, 0.0), weight)
            salience = sum((math.log((1 + count) / (1 + frequency[t])) + 1) * w for t, w in weights.items())
            scores.append(salience / math.sqrt(len(found)) if found else 0.0)
        chosen: list[int] = []
        used = 0
        for index in sorted(range(count), key=lambda i: (-scores[i], i)):
            cost = _tokens(sentences[index])
            if used + cost <= budget:
                chosen.append(index)
                used += cost
        return " ".join(sentences[i] for i in sorted(chosen))
