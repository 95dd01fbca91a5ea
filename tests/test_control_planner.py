"""The planner: when and where to cut, on exact token counts and a known latency model."""

from __future__ import annotations

import math
from typing import Any

import pytest

from llmvoice.control.planner import PlanInput, capacity_tokens, plan, predict_s, verify
from llmvoice.errors import ConfigurationError

# base 0.4 s, 0.1 ms per uncached token, 0.01 ms per cached token; target 1 s, no headroom, no spread.
COEFFICIENTS = (0.4, 1e-4, 1e-5)


def data(blocks: int = 10, block: int = 100, **changes: Any) -> PlanInput:
    values: dict[str, Any] = {
        "target_s": 1.0,
        "coefficients": COEFFICIENTS,
        "spread": 1.0,
        "static_tokens": 1000,
        "block_tokens": (block,) * blocks,
        "boundaries": tuple(range(1, blocks + 1)),
        "turn_tokens": 1000.0,
        "headroom": 1.0,
        "retention": 0.6,
    }
    values.update(changes)
    return PlanInput(**values)


def test_predict_is_the_linear_model() -> None:
    """predict_s is base + a·uncached + b·cached."""
    assert round(predict_s(COEFFICIENTS, 1000, 20000), 9) == 0.7


def test_capacity_is_where_the_prediction_meets_the_target() -> None:
    """With 1,000 fresh tokens the target allows (1.0 - 0.4 - 0.1) / 1e-5 = 50,000 cached tokens."""
    assert round(capacity_tokens(data())) == 50_000


def test_capacity_shrinks_with_spread() -> None:
    """A spread of 1.25 leaves (0.8 - 0.5) / 1e-5 = 30,000 tokens."""
    assert round(capacity_tokens(data(spread=1.25))) == 30_000


def test_capacity_is_infinite_when_cached_tokens_are_free() -> None:
    """With b = 0 any cached prefix fits."""
    assert capacity_tokens(data(coefficients=(0.4, 1e-4, 0.0))) == math.inf


def test_keep_while_the_prediction_fits() -> None:
    """A 2,000-token prompt predicts 0.52 s: keep, no cut."""
    decision = plan(data())
    assert (decision.action, decision.cut, decision.kept_tokens, round(decision.predicted_s, 6)) == (
        "keep",
        None,
        3000,
        0.52,
    )


def test_keep_reason_names_the_figures() -> None:
    """The reason of a keep gives the predicted P95 and the limit."""
    assert plan(data()).reason == "keep: predicted P95 520 ms within 1000 ms"


def test_rebase_when_the_prediction_exceeds_the_target() -> None:
    """60,000 history tokens predict 1.11 s: cut to keep 0.6 x 49,000 = 29,400 tokens, i.e. 29 blocks."""
    decision = plan(data(blocks=60, block=1000))
    assert (decision.action, decision.cut, decision.kept_tokens) == ("rebase", 31, 31_000)


def test_rebase_predicts_warm_and_cold_turns() -> None:
    """After the cut the warm prediction is 0.8 s and an unwarmed miss 0.4 + 31,000 x 1e-4 = 3.5 s."""
    decision = plan(data(blocks=60, block=1000))
    assert (round(decision.predicted_s, 6), round(decision.miss_s, 6)) == (0.8, 3.5)


def test_rebase_reason_names_trigger_and_cut() -> None:
    """The reason says what triggered the cut and what it keeps."""
    assert plan(data(blocks=60, block=1000)).reason == (
        "rebase: predicted P95 1110 ms > 1000 ms; cut 31 of 60 blocks, keep 29,000 history tokens"
    )


def test_cut_only_at_allowed_boundaries() -> None:
    """With only even cut points the earliest one keeping at most 29,400 tokens is 32."""
    decision = plan(data(blocks=60, block=1000, boundaries=tuple(range(2, 61, 2))))
    assert decision.cut == 32


def test_summary_tokens_count_against_the_goal() -> None:
    """A 2,000-token summary means two more blocks go."""
    assert plan(data(blocks=60, block=1000, summary_tokens=2000)).cut == 33


def test_lower_retention_cuts_deeper() -> None:
    """Retention 0.3 keeps at most 14,700 tokens: 14 blocks."""
    assert plan(data(blocks=60, block=1000, retention=0.3)).cut == 46


def test_no_cut_point_keeps() -> None:
    """Over the target with no allowed cut: keep, saying why."""
    decision = plan(data(blocks=60, block=1000, boundaries=()))
    assert (decision.action, decision.reason) == (
        "keep",
        "keep: predicted P95 1110 ms > 1000 ms, but no cut point yet",
    )


def test_unreachable_target_keeps_a_history_close_to_the_floor() -> None:
    """When even an empty history misses the target, a history costing under 15 % more is kept."""
    decision = plan(data(blocks=10, block=1000, coefficients=(1.2, 1e-4, 1e-5)))
    assert (decision.action, decision.cut, decision.reason) == (
        "keep",
        None,
        "keep: predicted P95 1410 ms within 1506 ms (target out of reach: an empty history predicts 1310 ms)",
    )


def test_unreachable_target_still_bounds_the_history() -> None:
    """A history costing more than 15 % over the floor (1,310 ms) is cut to fit 1,506 ms."""
    decision = plan(data(blocks=60, block=1000, coefficients=(1.2, 1e-4, 1e-5)))
    assert (decision.action, decision.cut, decision.reason) == (
        "rebase",
        49,
        "rebase: predicted P95 1910 ms > 1506 ms (target out of reach: an empty history predicts 1310 ms); "
        "cut 49 of 60 blocks, keep 11,000 history tokens",
    )


def test_unreachable_target_still_obeys_the_caps() -> None:
    """An unreachable target does not lift max_context_tokens."""
    decision = plan(data(blocks=60, block=1000, coefficients=(1.2, 1e-4, 1e-5), max_context_tokens=10_000))
    assert (decision.action, decision.cut) == ("rebase", 56)


def test_max_context_tokens_forces_a_cut_without_latency_control() -> None:
    """A 12,000-token prompt over a 10,000 cap cuts to 0.6 x 10,000: history of at most 4,000 tokens."""
    decision = plan(data(blocks=100, latency_control=False, max_context_tokens=10_000))
    assert (decision.action, decision.cut, decision.kept_tokens) == ("rebase", 60, 6000)


def test_target_context_tokens_sets_the_goal() -> None:
    """target_context_tokens 8,000 leaves 6,000 history tokens."""
    decision = plan(data(blocks=100, latency_control=False, max_context_tokens=10_000, target_context_tokens=8000))
    assert decision.cut == 40


def test_caps_alone_keep_below_them() -> None:
    """Below the cap and without latency control nothing happens, whatever the prediction."""
    assert plan(data(blocks=60, block=1000, latency_control=False, max_context_tokens=100_000)).action == "keep"


def test_max_messages_forces_a_cut() -> None:
    """99 blocks near a 100-message cap keep 0.6 x 100 = 60 of them."""
    decision = plan(data(blocks=99, latency_control=False, max_messages=100))
    assert (decision.action, decision.cut) == ("rebase", 39)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_s": 0.0}, "target_s must be positive, not 0.0"),
        ({"coefficients": (0.4, -1e-4, 1e-5)}, "coefficients must be finite and non-negative"),
        ({"spread": 0.9}, "spread must be at least 1, not 0.9"),
        ({"retention": 0.0}, r"retention must be in \(0, 1\], not 0.0"),
        ({"headroom": 1.5}, r"headroom must be in \(0, 1\], not 1.5"),
        ({"boundaries": (0, 3)}, r"boundaries must lie in 1\.\.10"),
        ({"boundaries": (3, 2)}, "boundaries must be strictly ascending"),
        ({"static_tokens": -1}, "static_tokens must not be negative, not -1"),
    ],
)
def test_bad_input_is_named(changes: dict[str, Any], message: str) -> None:
    """Each invalid field raises a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=message):
        data(**changes)


def test_verify_flags_two_slow_turns() -> None:
    """Two turns both more than 50 % slower than predicted: the action hurt."""
    assert verify([0.5, 0.5], [0.8, 0.9]) is True


def test_verify_ignores_one_slow_turn() -> None:
    """One slow turn is not enough to judge."""
    assert verify([0.5], [2.0]) is False


def test_verify_needs_every_turn_slow() -> None:
    """One turn within tolerance clears the action."""
    assert verify([0.5, 0.5, 0.5], [0.8, 0.7, 0.9]) is False


def test_verify_rejects_mismatched_lengths() -> None:
    """Predictions and observations must pair up."""
    with pytest.raises(ConfigurationError, match="same length"):
        verify([0.5], [0.5, 0.6])


def test_trim_dynamic_when_even_no_history_misses() -> None:
    """A 600-token context at 1 ms per token: no cut helps, so the context is trimmed to 480 tokens."""
    decision = plan(data(coefficients=(0.4, 1e-3, 1e-5), dynamic_tokens=600, turn_tokens=100.0, min_dynamic_share=0.25))
    assert (decision.action, decision.dynamic_limit, decision.kept_tokens, round(decision.predicted_s, 6)) == (
        "trim_dynamic",
        480,
        2580,
        1.0,
    )


def test_trim_dynamic_respects_its_floor() -> None:
    """Trimming below min_dynamic_share of the context is refused: keep, target unreachable."""
    decision = plan(data(coefficients=(0.4, 1e-3, 1e-5), dynamic_tokens=600, turn_tokens=100.0, min_dynamic_share=0.9))
    assert (decision.action, decision.dynamic_limit) == ("keep", None)


def test_dynamic_context_is_never_trimmed_by_default() -> None:
    """min_dynamic_share defaults to 1.0: the context is left whole."""
    decision = plan(data(coefficients=(0.4, 1e-3, 1e-5), dynamic_tokens=600, turn_tokens=100.0))
    assert decision.action == "keep"
