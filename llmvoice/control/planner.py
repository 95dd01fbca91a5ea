"""The planner: where to cut the history so the next turns meet the TTFT target.

Pure: no I/O, no clock. The controller hands it a :class:`PlanInput` (token counts per committed
block, the allowed cut points, the fitted latency model and the measured spread) and gets a
:class:`Decision` back, with the reason in words.

The rule it applies: a cache-stable prompt costs ``base + a·new + b·cached`` per turn, where
``new`` is the turn's own tokens and ``cached`` grows by one turn each time. So the history may
grow until the predicted P95 of the next turn reaches the target (times ``headroom``); then the
head of the history is cut in one large step, keeping ``retention`` of the history the target
allows, so the following turns are pure appends again. A cut changes the prefix, which costs one
uncached turn unless the new prefix is pre-warmed first; the decision carries both figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from llmvoice.errors import ConfigurationError

__all__ = ["ACTIONS", "Decision", "PlanInput", "capacity_tokens", "plan", "predict_s", "verify"]

#: What the planner can decide.
ACTIONS: Final[tuple[str, ...]] = ("keep", "rebase", "trim_dynamic", "rollback")

Action = Literal["keep", "rebase", "trim_dynamic", "rollback"]

#: The largest share of the history a cut keeps that its replacement (a summary) may take.
_SUMMARY_SHARE: Final[float] = 1 / 3
#: When the target is out of reach, the history may cost this much over an empty history.
_FLOOR_SLACK: Final[float] = 1.15


@dataclass(frozen=True, slots=True)
class PlanInput:
    """What the planner sees of a session after a turn.

    Attributes:
        target_s: the TTFT target in seconds.
        coefficients: the latency model ``(base_s, a_s_per_uncached_token, b_s_per_cached_token)``.
        spread: how far the P95 sits above the model's mean (≥ 1; 1.3 means P95 = 1.3 x mean).
        static_tokens: tokens of the static system prompt and tools.
        block_tokens: tokens of each committed history block, oldest first.
        boundaries: indices into the committed history where a cut is allowed (the remaining
            history stays valid for the provider), ascending.
        dynamic_tokens: tokens of this turn's dynamic context (sent uncached every turn).
        turn_tokens: tokens a turn adds (utterance, answer, tool results), a running estimate.
        retention: the share of the history the target allows that a cut keeps (0 < r ≤ 1):
            lower means rarer, larger cuts.
        headroom: plan for a predicted P95 of at most ``headroom x target``.
        summary_tokens: tokens of the summary that replaces a cut span (0 for a plain window).
        max_context_tokens: a hard cap on the prompt (``None``: none); reaching it forces a cut.
        max_messages: a cap on the committed blocks (``None``: none).
        target_context_tokens: the prompt size a cap-forced cut aims for (``None``: the cap x
            ``retention``).
        latency_control: when ``False`` only the caps trigger cuts (no TTFT target).
        min_dynamic_share: when even an empty history would miss the target, the dynamic context
            may be trimmed down to this share of its tokens (1.0: never trimmed).
    """

    target_s: float
    coefficients: tuple[float, float, float]
    spread: float
    static_tokens: int
    block_tokens: tuple[int, ...]
    boundaries: tuple[int, ...]
    dynamic_tokens: int = 0
    turn_tokens: float = 0.0
    retention: float = 0.5
    headroom: float = 0.9
    summary_tokens: int = 0
    max_context_tokens: int | None = None
    max_messages: int | None = None
    target_context_tokens: int | None = None
    latency_control: bool = True
    min_dynamic_share: float = 1.0

    def __post_init__(self) -> None:
        if not self.target_s > 0:
            raise ConfigurationError(f"target_s must be positive, not {self.target_s}")
        if any(c < 0 or not math.isfinite(c) for c in self.coefficients):
            raise ConfigurationError(f"coefficients must be finite and non-negative, not {self.coefficients}")
        if not self.spread >= 1.0:
            raise ConfigurationError(f"spread must be at least 1, not {self.spread}")
        if not 0.0 < self.retention <= 1.0:
            raise ConfigurationError(f"retention must be in (0, 1], not {self.retention}")
        if not 0.0 < self.headroom <= 1.0:
            raise ConfigurationError(f"headroom must be in (0, 1], not {self.headroom}")
        if any(b < 1 or b > len(self.block_tokens) for b in self.boundaries):
            raise ConfigurationError(f"boundaries must lie in 1..{len(self.block_tokens)}, not {self.boundaries}")
        if list(self.boundaries) != sorted(set(self.boundaries)):
            raise ConfigurationError("boundaries must be strictly ascending")
        for name in ("static_tokens", "dynamic_tokens", "summary_tokens"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative, not {getattr(self, name)}")
        if any(t < 0 for t in self.block_tokens):
            raise ConfigurationError("block_tokens must not be negative")
        if not 0.0 <= self.min_dynamic_share <= 1.0:
            raise ConfigurationError(f"min_dynamic_share must be in [0, 1], not {self.min_dynamic_share}")

    @property
    def history_tokens(self) -> int:
        """Tokens of the whole committed history."""
        return sum(self.block_tokens)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do before the next turn, and why.

    Attributes:
        action: ``"keep"``, ``"rebase"`` or ``"rollback"``.
        cut: for a rebase, the committed index the new history starts at (blocks before it are
            archived, replaced by a summary when one is available); otherwise ``None``.
        kept_tokens: the prompt tokens of the next turn after the action (static, history,
            dynamic context, the turn's own tokens).
        predicted_s: the predicted P95 TTFT of the next turn once the prefix is cached.
        miss_s: the predicted P95 TTFT of the next turn if the new prefix is not cached (a rebase
            that was not pre-warmed); equals ``predicted_s`` for ``keep``.
        reason: why, in words (logged and reported).
        dynamic_limit: for ``trim_dynamic``, the most dynamic-context tokens to send from now on.
        summary_tokens: for a rebase, the tokens reserved for what replaces the cut span (the
            budget the compaction strategy gets): the input's ``summary_tokens``, but at most
            a third of the history the cut keeps, so summaries never crowd out the recent turns.
    """

    action: Action
    cut: int | None
    kept_tokens: int
    predicted_s: float
    miss_s: float
    reason: str
    dynamic_limit: int | None = None
    summary_tokens: int = 0


def predict_s(coefficients: tuple[float, float, float], uncached: float, cached: float) -> float:
    """The model's mean TTFT (seconds) for a prompt with ``uncached`` new and ``cached`` cached tokens."""
    base, a, b = coefficients
    return base + a * max(uncached, 0.0) + b * max(cached, 0.0)


def capacity_tokens(data: PlanInput, limit_s: float | None = None) -> float:
    """The largest cached prefix (tokens) for which the next turn's predicted P95 meets a limit.

    Args:
        data: the session.
        limit_s: the P95 limit (default: ``headroom x target``).

    Returns:
        Tokens of static prompt plus history the limit allows; may be negative when even an empty
        history misses it, and ``inf`` when cached tokens cost nothing.
    """
    base, a, b = data.coefficients
    fresh = data.dynamic_tokens + data.turn_tokens
    limit = data.headroom * data.target_s if limit_s is None else limit_s
    budget_s = limit / data.spread - base - a * fresh
    if b <= 0.0:
        return math.inf if budget_s >= 0 else -math.inf
    return budget_s / b


def _cut_for(data: PlanInput, history_goal: float, reserve: int) -> int | None:
    """The earliest allowed cut keeping at most ``history_goal`` history tokens, or the last cut."""
    suffix = data.history_tokens
    position = 0
    for boundary in data.boundaries:
        suffix -= sum(data.block_tokens[position:boundary])
        position = boundary
        if suffix + reserve <= history_goal:
            return boundary
    return data.boundaries[-1] if data.boundaries else None


def _trim_dynamic(data: PlanInput, limit_s: float, next_prompt: int, predicted: float) -> Decision | None:
    """The most dynamic context that meets the target with the whole history kept, if allowed."""
    base, a, b = data.coefficients
    if data.min_dynamic_share >= 1.0 or data.dynamic_tokens <= 0 or a <= 0:
        return None
    cached = data.static_tokens + data.history_tokens
    limit = math.floor((limit_s / data.spread - base - b * cached) / a - data.turn_tokens)
    if limit >= data.dynamic_tokens or limit < data.min_dynamic_share * data.dynamic_tokens:
        return None
    after = data.spread * predict_s(data.coefficients, limit + data.turn_tokens, cached)
    return Decision(
        "trim_dynamic",
        None,
        next_prompt - (data.dynamic_tokens - limit),
        after,
        after,
        f"trim_dynamic: predicted P95 {predicted * 1000:.0f} ms > {limit_s * 1000:.0f} ms even with no history; "
        f"send at most {limit:,} of {data.dynamic_tokens:,} dynamic-context tokens",
        limit,
    )


def plan(data: PlanInput) -> Decision:
    """Decide whether to cut the history before the next turn.

    Args:
        data: the session as the controller sees it.

    Returns:
        ``keep`` while the next turn's predicted P95 (and the caps) allow the history to grow;
        otherwise ``rebase`` at the earliest cut point that keeps at most ``retention`` of the
        history the target allows.
    """
    fresh = data.dynamic_tokens + data.turn_tokens
    history = data.history_tokens
    # The next request reads the static prompt and the history from the cache (the newest turn's
    # blocks are counted in both: a conservative estimate) and prefills the rest.
    predicted = data.spread * predict_s(data.coefficients, fresh, data.static_tokens + history)
    limit_s = data.headroom * data.target_s
    next_prompt = round(data.static_tokens + history + fresh)
    reasons: list[str] = []
    goal: float | None = None
    if data.max_context_tokens is not None and next_prompt > data.max_context_tokens:
        aim = data.target_context_tokens or data.max_context_tokens * data.retention
        goal = aim - data.static_tokens - fresh
        reasons.append(f"next prompt {next_prompt:,} tokens > max_context_tokens {data.max_context_tokens:,}")
    if data.max_messages is not None and len(data.block_tokens) + 2 > data.max_messages:
        share = data.retention * data.max_messages / max(len(data.block_tokens), 1)
        by_messages = history * share
        goal = by_messages if goal is None else min(goal, by_messages)
        reasons.append(f"{len(data.block_tokens)} committed blocks near max_messages {data.max_messages}")
    if data.latency_control:
        floor = data.spread * predict_s(data.coefficients, fresh, data.static_tokens)
        unreachable = floor > limit_s
        if unreachable and predicted > limit_s and goal is None:
            trimmed = _trim_dynamic(data, limit_s, next_prompt, predicted)
            if trimmed is not None:
                return trimmed
        if unreachable:
            # The history may then cost FLOOR_SLACK over an empty one: cutting deeper would forget
            # for little gain, and growing without bound would slow every later turn.
            limit_s = floor * _FLOOR_SLACK
        note = f" (target out of reach: an empty history predicts {floor * 1000:.0f} ms)" if unreachable else ""
        if predicted > limit_s:
            allowed = capacity_tokens(data, limit_s) - data.static_tokens
            by_latency = data.retention * max(allowed, 0.0)
            goal = by_latency if goal is None else min(goal, by_latency)
            reasons.append(f"predicted P95 {predicted * 1000:.0f} ms > {limit_s * 1000:.0f} ms{note}")
        elif goal is None:
            return Decision(
                "keep",
                None,
                next_prompt,
                predicted,
                predicted,
                f"keep: predicted P95 {predicted * 1000:.0f} ms within {limit_s * 1000:.0f} ms{note}",
            )
    if goal is None:
        return Decision(
            "keep",
            None,
            next_prompt,
            predicted,
            predicted,
            f"keep: predicted P95 {predicted * 1000:.0f} ms within {limit_s * 1000:.0f} ms",
        )
    reserve = min(data.summary_tokens, math.floor(max(goal, 0.0) * _SUMMARY_SHARE))
    cut = _cut_for(data, max(goal, 0.0), reserve)
    if cut is None:
        return Decision(
            "keep", None, next_prompt, predicted, predicted, "keep: " + "; ".join(reasons) + ", but no cut point yet"
        )
    kept_history = sum(data.block_tokens[cut:]) + reserve
    kept_prompt = round(data.static_tokens + kept_history + fresh)
    after = data.spread * predict_s(data.coefficients, fresh, data.static_tokens + kept_history)
    miss = data.spread * predict_s(data.coefficients, kept_prompt, 0)
    return Decision(
        "rebase",
        cut,
        kept_prompt,
        after,
        miss,
        "rebase: "
        + "; ".join(reasons)
        + f"; cut {cut} of {len(data.block_tokens)} blocks, keep {kept_history:,} history tokens",
        summary_tokens=reserve,
    )


def verify(predicted_s: Sequence[float], observed_s: Sequence[float], *, tolerance: float = 0.5) -> bool:
    """Whether an action hurt: every observed TTFT since it exceeds its prediction by ``tolerance``.

    Args:
        predicted_s: the model's predictions for the turns since the action, for the token mix
            each turn actually had.
        observed_s: the measured TTFTs of those turns.
        tolerance: the relative excess that counts as worse than predicted (0.5 = 50 % slower).

    Returns:
        ``True`` when at least two turns were observed and all of them were that much slower.
    """
    if len(predicted_s) != len(observed_s):
        raise ConfigurationError("predicted_s and observed_s must have the same length")
    if len(observed_s) < 2:
        return False
    return all(o > p * (1.0 + tolerance) for p, o in zip(predicted_s, observed_s, strict=True))
