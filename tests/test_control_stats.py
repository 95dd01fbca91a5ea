"""Unit tests for llmvoice.control.stats: samples, rolling statistics and the hysteresis gate."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from llmvoice.control.stats import Hysteresis, RollingStats, Sample, Snapshot
from llmvoice.errors import ConfigurationError


def _stats(*ttfts: float, window: int = 20) -> RollingStats:
    stats = RollingStats(window=window)
    for ttft in ttfts:
        stats = stats.add(Sample(ttft, 1000, 500))
    return stats


# -- Sample -----------------------------------------------------------------------------------


def test_sample_defaults() -> None:
    """A sample defaults to uncensored, streamed, turn 0, action keep and no cache writes."""
    sample = Sample(0.5, 1000, 800)
    assert (sample.cache_write_tokens, sample.censored, sample.streamed, sample.turn, sample.action) == (
        0,
        False,
        True,
        0,
        "keep",
    )


def test_sample_is_frozen() -> None:
    """A sample cannot be changed after it is made."""
    sample = Sample(0.5, 1000, 800)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.ttft_s = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ttft_s": -0.1}, "ttft_s"),
        ({"ttft_s": math.nan}, "ttft_s"),
        ({"ttft_s": math.inf}, "ttft_s"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"input_tokens": 10.0}, "input_tokens"),
        ({"cached_tokens": -1}, "cached_tokens"),
        ({"cached_tokens": 1001}, "cached_tokens"),
        ({"cache_write_tokens": 201}, "cache_write_tokens"),
        ({"turn": -1}, "turn"),
        ({"censored": 1}, "censored"),
        ({"streamed": None}, "streamed"),
        ({"action": 3}, "action"),
    ],
)
def test_sample_rejects_bad_values(kwargs: dict[str, Any], field: str) -> None:
    """A bad value raises ConfigurationError naming the field."""
    values: dict[str, Any] = {"ttft_s": 0.5, "input_tokens": 1000, "cached_tokens": 800, **kwargs}
    with pytest.raises(ConfigurationError, match=f"^{field} "):
        Sample(**values)


def test_sample_accepts_cache_writes_up_to_the_uncached_input() -> None:
    """Cache writes may cover all uncached input tokens."""
    assert Sample(0.5, 1000, 800, cache_write_tokens=200).cache_write_tokens == 200


# -- RollingStats -----------------------------------------------------------------------------


@pytest.mark.parametrize("window", [0, -3, 2.0, True])
def test_window_must_be_a_positive_int(window: Any) -> None:
    """A window below 1, or not an int, raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"^window "):
        RollingStats(window=window)


def test_add_returns_a_new_object_and_leaves_the_old_one_unchanged() -> None:
    """add() returns new statistics; the old object keeps its samples."""
    before = _stats(0.5)
    after = before.add(Sample(0.7, 1000, 500))
    assert (len(before.samples), len(after.samples), after is before) == (1, 2, False)


def test_add_rejects_a_non_sample() -> None:
    """Adding something other than a Sample raises ConfigurationError and changes nothing."""
    stats = _stats(0.5)
    with pytest.raises(ConfigurationError, match=r"^sample must be a Sample, not dict$"):
        stats.add({"ttft_s": 0.5})  # type: ignore[arg-type]
    assert len(stats.samples) == 1


def test_window_keeps_only_the_newest_samples() -> None:
    """Once the window is full, the oldest sample is dropped."""
    stats = _stats(0.1, 0.2, 0.3, 0.4, window=3)
    assert [s.ttft_s for s in stats.samples] == [0.2, 0.3, 0.4]


def test_initial_samples_are_cut_to_the_window() -> None:
    """Samples passed at construction keep only the last `window`."""
    stats = RollingStats(window=2, samples=[Sample(t, 10, 0) for t in (0.1, 0.2, 0.3)])
    assert ([s.ttft_s for s in stats.samples], stats.window) == ([0.2, 0.3], 2)


def test_empty_window_snapshot() -> None:
    """An empty window gives NaN millisecond figures and zero counts."""
    snap = RollingStats().snapshot()
    ms = (snap.p50_ms, snap.p95_ms, snap.p99_ms, snap.mean_ms, snap.jitter_std_ms, snap.jitter_msd_ms)
    assert all(math.isnan(v) for v in ms)
    assert (snap.turns, snap.cached_share, snap.censored) == (0, 0.0, 0)


def test_snapshot_values() -> None:
    """Percentiles (linear interpolation), mean, jitter and cached share over five samples."""
    stats = RollingStats(window=5)
    for ttft, cached in [(0.25, 0), (0.5, 500), (0.75, 900), (1.0, 900), (2.0, 700)]:
        stats = stats.add(Sample(ttft, 1000, cached))
    snap = stats.snapshot()
    assert snap.turns == 5
    assert snap.p50_ms == 750.0
    assert snap.p95_ms == pytest.approx(1800.0, rel=1e-12)  # position 3.8: 1000 + 0.8 x 1000
    assert snap.p99_ms == pytest.approx(1960.0, rel=1e-12)  # position 3.96
    assert snap.mean_ms == 900.0
    assert snap.jitter_std_ms == pytest.approx(math.sqrt(365_000.0), rel=1e-12)  # population std
    assert snap.jitter_msd_ms == 437.5  # (250 + 250 + 250 + 1000) / 4
    assert snap.cached_share == 0.6
    assert snap.censored == 0


def test_single_sample_snapshot() -> None:
    """One sample: every percentile is that sample, std is 0.0, and there is no successive pair."""
    snap = _stats(0.5).snapshot()
    assert (snap.p50_ms, snap.p95_ms, snap.p99_ms, snap.mean_ms, snap.jitter_std_ms) == (500.0,) * 4 + (0.0,)
    assert math.isnan(snap.jitter_msd_ms)


def test_censored_samples_count_at_their_observed_value() -> None:
    """A censored sample enters the figures at its observed (lower-bound) value and is counted."""
    plain = RollingStats(samples=[Sample(0.25, 100, 0), Sample(4.0, 100, 0)]).snapshot()
    censored = RollingStats(samples=[Sample(0.25, 100, 0), Sample(4.0, 100, 0, censored=True)]).snapshot()
    assert dataclasses.replace(censored, censored=0) == plain
    assert censored.censored == 1


def test_cached_share_is_zero_without_input_tokens() -> None:
    """With no input tokens in the window, the cached share is 0.0."""
    assert RollingStats(samples=[Sample(0.5, 0, 0)]).snapshot().cached_share == 0.0


def test_one_outlier_moves_p95_by_a_twentieth_of_its_excess() -> None:
    """With 20 samples, P95 = 0.95·x[18] + 0.05·x[19]: one 10x outlier lifts 400 ms to 580 ms."""
    snap = _stats(*([0.4] * 19 + [4.0])).snapshot()
    assert snap.p95_ms == pytest.approx(580.0, rel=1e-12)


def test_snapshot_is_a_snapshot() -> None:
    """snapshot() returns a Snapshot and the same one on a second call."""
    stats = _stats(0.5, 0.6)
    assert isinstance(stats.snapshot(), Snapshot)
    assert stats.snapshot() is stats.snapshot()


# -- Hysteresis -------------------------------------------------------------------------------


def _run(gate: Hysteresis, *p95s: float) -> list[bool]:
    states = []
    for p95 in p95s:
        gate = gate.update(p95)
        states.append(gate.over)
    return states


def test_one_outlier_does_not_flip_to_over() -> None:
    """A single reading above the target, between readings below it, never turns the gate over."""
    assert _run(Hysteresis(1000.0), 500.0, 5000.0, 500.0, 5000.0, 500.0) == [False] * 5


def test_two_consecutive_readings_flip_to_over() -> None:
    """Two consecutive readings above enter·target turn the gate over on the second."""
    assert _run(Hysteresis(1000.0), 1200.0, 1100.0) == [False, True]


def test_one_outlier_in_the_window_does_not_flip_the_gate() -> None:
    """One 10x sample in a full 20-sample window keeps P95 at 580 ms, under a 1000 ms target."""
    stats = _stats(*([0.4] * 19))
    gate = Hysteresis(1000.0).update(stats.snapshot().p95_ms)
    stats = stats.add(Sample(4.0, 1000, 500))
    gate = gate.update(stats.snapshot().p95_ms)
    stats = stats.add(Sample(0.4, 1000, 500))
    gate = gate.update(stats.snapshot().p95_ms)
    assert (gate.over, gate.streak) == (False, 0)


def test_reading_at_the_threshold_does_not_count() -> None:
    """P95 exactly at enter·target does not exceed it."""
    assert _run(Hysteresis(1000.0), 1000.0, 1000.0, 1000.0) == [False] * 3


def test_streak_counts_consecutive_readings_and_resets_on_flip() -> None:
    """The streak counts readings arguing for a flip and is 0 again after the flip."""
    gate = Hysteresis(1000.0, confirm=3).update(1500.0)
    assert (gate.over, gate.streak) == (False, 1)
    gate = gate.update(1500.0)
    assert (gate.over, gate.streak) == (False, 2)
    gate = gate.update(1500.0)
    assert (gate.over, gate.streak) == (True, 0)


def test_one_dip_does_not_flip_back() -> None:
    """Over budget, a single reading below leave·target between high readings keeps it over."""
    assert _run(Hysteresis(1000.0, over=True), 500.0, 1200.0, 500.0, 1200.0) == [True] * 4


def test_reading_between_leave_and_enter_resets_the_streak() -> None:
    """Over budget, a reading in the dead band (850-1000 ms) breaks a run of low readings."""
    assert _run(Hysteresis(1000.0, over=True), 800.0, 900.0, 800.0, 800.0) == [True, True, True, False]


def test_two_consecutive_low_readings_flip_back() -> None:
    """Two consecutive readings below leave·target turn the gate back under."""
    gate = Hysteresis(1000.0, over=True).update(849.0).update(849.0)
    assert (gate.over, gate.streak) == (False, 0)


def test_nan_resets_the_streak() -> None:
    """A NaN reading (empty window) is no evidence: the streak goes back to 0."""
    assert _run(Hysteresis(1000.0), 1500.0, math.nan, 1500.0) == [False, False, False]


def test_confirm_one_flips_at_once() -> None:
    """With confirm=1 a single reading flips the gate."""
    assert _run(Hysteresis(1000.0, confirm=1), 1001.0, 849.0) == [True, False]


def test_update_returns_a_new_object() -> None:
    """update() leaves the original gate unchanged."""
    gate = Hysteresis(1000.0)
    new = gate.update(2000.0)
    assert (gate.streak, new.streak, new is gate) == (0, 1, False)


def test_thresholds_in_milliseconds() -> None:
    """enter_ms and leave_ms are the fractions applied to the target."""
    gate = Hysteresis(800.0, enter=1.1, leave=0.5)
    assert (gate.enter_ms, gate.leave_ms) == pytest.approx((880.0, 400.0), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_ms": 0.0}, "target_ms"),
        ({"target_ms": -5.0}, "target_ms"),
        ({"target_ms": math.nan}, "target_ms"),
        ({"enter": 0.0}, "enter"),
        ({"leave": -0.1}, "leave"),
        ({"enter": 0.9, "leave": 0.95}, "leave"),
        ({"confirm": 0}, "confirm"),
        ({"confirm": 1.5}, "confirm"),
        ({"over": 1}, "over"),
        ({"streak": -1}, "streak"),
    ],
)
def test_hysteresis_rejects_bad_values(kwargs: dict[str, Any], field: str) -> None:
    """A bad option raises ConfigurationError naming it."""
    values: dict[str, Any] = {"target_ms": 1000.0, **kwargs}
    with pytest.raises(ConfigurationError, match=f"^{field} "):
        Hysteresis(**values)


@pytest.mark.parametrize("p95", [-1.0, "900"])
def test_update_rejects_bad_readings(p95: Any) -> None:
    """A negative or non-numeric reading raises ConfigurationError naming p95_ms."""
    with pytest.raises(ConfigurationError, match=r"^p95_ms "):
        Hysteresis(1000.0).update(p95)
