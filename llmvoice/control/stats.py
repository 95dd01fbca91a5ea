"""Rolling time-to-first-token statistics and an over-budget state machine with hysteresis.

Both are immutable: :meth:`RollingStats.add` and :meth:`Hysteresis.update` return new objects and
leave the old ones as they were::

    stats = RollingStats(window=20)
    gate = Hysteresis(target_ms=800.0)
    for sample in samples:
        stats = stats.add(sample)
        gate = gate.update(stats.snapshot().p95_ms)
    gate.over   # True once P95 stayed above 800 ms on two consecutive turns

Percentiles are numpy's ``"linear"`` method (type 7 of Hyndman and Fan, numpy's default): the
``q``-th percentile of ``n`` sorted values ``x[0..n-1]`` interpolates linearly at position
``q/100 · (n - 1)``. With 20 values, P95 is ``0.95·x[18] + 0.05·x[19]``, so a single outlier moves
it by only a twentieth of its excess over the runner-up.

A censored sample (an error or a timeout) enters every figure at its observed value, which is a
lower bound of the true time to first token: the statistics then understate the tail, never
overstate it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from llmvoice.errors import ConfigurationError

__all__ = [
    "Hysteresis",
    "RollingStats",
    "Sample",
    "Snapshot",
]

_NAN: Final[float] = math.nan


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_count(label: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{label} must be an int >= 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured turn.

    Attributes:
        ttft_s: time to first token in seconds; for a censored sample, the time when the request
            failed or timed out.
        input_tokens: all input tokens, cached and cache-written ones included.
        cached_tokens: input tokens read from the prompt cache.
        cache_write_tokens: input tokens written to the cache.
        censored: the request failed or timed out, so the true time to first token is at least
            ``ttft_s``.
        streamed: the response was streamed; a non-streamed ``ttft_s`` is the full latency.
        turn: the turn number.
        action: what the controller did before this turn (``"keep"`` when it did nothing).

    Raises:
        ConfigurationError: ``ttft_s`` is negative or not finite, a token count is negative or not
            an int, ``cached_tokens`` exceeds ``input_tokens``, or ``cache_write_tokens`` exceeds
            the uncached input (``input_tokens - cached_tokens``).
    """

    ttft_s: float
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int = 0
    censored: bool = False
    streamed: bool = True
    turn: int = 0
    action: str = "keep"

    def __post_init__(self) -> None:
        if not _is_real(self.ttft_s) or not math.isfinite(self.ttft_s) or self.ttft_s < 0:
            raise ConfigurationError(f"ttft_s must be a finite number >= 0, not {self.ttft_s!r}")
        for label in ("input_tokens", "cached_tokens", "cache_write_tokens", "turn"):
            _check_count(label, getattr(self, label))
        if self.cached_tokens > self.input_tokens:
            raise ConfigurationError(
                f"cached_tokens ({self.cached_tokens}) must not exceed input_tokens ({self.input_tokens})"
            )
        if self.cache_write_tokens > self.input_tokens - self.cached_tokens:
            raise ConfigurationError(
                f"cache_write_tokens ({self.cache_write_tokens}) must not exceed input_tokens - cached_tokens "
                f"({self.input_tokens - self.cached_tokens})"
            )
        for label in ("censored", "streamed"):
            if not isinstance(getattr(self, label), bool):
                raise ConfigurationError(f"{label} must be a bool, not {getattr(self, label)!r}")
        if not isinstance(self.action, str):
            raise ConfigurationError(f"action must be a str, not {self.action!r}")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The statistics of the samples in a window.

    The millisecond figures are NaN for an empty window; ``jitter_msd_ms`` is also NaN for a single
    sample (there is no successive pair).

    Attributes:
        turns: samples in the window.
        p50_ms: median time to first token, in milliseconds.
        p95_ms: 95th percentile, in milliseconds.
        p99_ms: 99th percentile, in milliseconds.
        mean_ms: mean, in milliseconds.
        jitter_std_ms: population standard deviation (``ddof=0``; 0.0 for one sample), in
            milliseconds.
        jitter_msd_ms: mean absolute difference between successive samples, in milliseconds.
        cached_share: cached input tokens divided by input tokens over the window; 0.0 when the
            window has no input tokens.
        censored: censored samples in the window.
    """

    turns: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    jitter_std_ms: float
    jitter_msd_ms: float
    cached_share: float
    censored: int


class RollingStats:
    """The last ``window`` samples and their statistics; immutable.

    Args:
        window: how many of the most recent samples are kept.
        samples: initial samples, oldest first; only the last ``window`` are kept.

    Raises:
        ConfigurationError: ``window`` is not an int >= 1, or an item of ``samples`` is not a
            :class:`Sample`.

    Example::

        stats = RollingStats(window=3).add(Sample(0.5, 1000, 900)).add(Sample(0.7, 1100, 1000))
        stats.snapshot().p50_ms   # 600.0
    """

    __slots__ = ("_samples", "_snapshot", "_window")

    def __init__(self, window: int = 20, *, samples: Iterable[Sample] = ()) -> None:
        if not _is_int(window) or window < 1:
            raise ConfigurationError(f"window must be an int >= 1, not {window!r}")
        kept = tuple(samples)[-window:]
        for sample in kept:
            _check_sample(sample)
        self._window: int = window
        self._samples: tuple[Sample, ...] = kept
        self._snapshot: Snapshot | None = None

    @property
    def window(self) -> int:
        """How many of the most recent samples are kept."""
        return self._window

    @property
    def samples(self) -> tuple[Sample, ...]:
        """The samples in the window, oldest first."""
        return self._samples

    def add(self, sample: Sample) -> RollingStats:
        """Return new statistics with ``sample`` appended (the oldest dropped once the window is full).

        Args:
            sample: the newest measured turn.

        Returns:
            A new :class:`RollingStats`; this one is unchanged.

        Raises:
            ConfigurationError: ``sample`` is not a :class:`Sample`.
        """
        _check_sample(sample)
        new = RollingStats.__new__(RollingStats)
        new._window = self._window
        kept = self._samples if len(self._samples) < self._window else self._samples[1:]
        new._samples = (*kept, sample)
        new._snapshot = None
        return new

    def snapshot(self) -> Snapshot:
        """The statistics of the current window (computed once per object).

        Returns:
            A :class:`Snapshot`; NaN millisecond figures and zero counts for an empty window.
        """
        if self._snapshot is None:
            self._snapshot = _snapshot(self._samples)
        return self._snapshot

    def __repr__(self) -> str:
        return f"RollingStats(window={self._window}, turns={len(self._samples)})"


def _check_sample(sample: object) -> None:
    if not isinstance(sample, Sample):
        raise ConfigurationError(f"sample must be a Sample, not {type(sample).__name__}")


def _snapshot(samples: tuple[Sample, ...]) -> Snapshot:
    if not samples:
        return Snapshot(0, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0.0, 0)
    ms = np.array([s.ttft_s for s in samples], dtype=np.float64) * 1000.0
    p50, p95, p99 = (float(v) for v in np.percentile(ms, (50.0, 95.0, 99.0), method="linear"))
    msd = float(np.mean(np.abs(np.diff(ms)))) if len(ms) > 1 else _NAN
    input_tokens = sum(s.input_tokens for s in samples)
    cached_tokens = sum(s.cached_tokens for s in samples)
    return Snapshot(
        turns=len(samples),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=float(np.mean(ms)),
        jitter_std_ms=float(np.std(ms)),
        jitter_msd_ms=msd,
        cached_share=cached_tokens / input_tokens if input_tokens else 0.0,
        censored=sum(1 for s in samples if s.censored),
    )


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """Whether the tail latency is over budget, with hysteresis so one outlier does not flip it.

    Under budget, it turns over only when P95 is above ``enter·target_ms`` on ``confirm``
    consecutive updates; over budget, it turns back only when P95 is below ``leave·target_ms`` on
    ``confirm`` consecutive updates. Any other update resets the streak, as does a NaN P95 (an
    empty window: no evidence either way). Immutable: :meth:`update` returns a new object.

    Attributes:
        target_ms: the P95 budget, in milliseconds.
        enter: the fraction of the target P95 must exceed to count towards turning over.
        leave: the fraction of the target P95 must fall below to count towards turning back.
        confirm: consecutive updates needed to flip.
        over: whether the latency is currently over budget.
        streak: consecutive updates so far that argue for flipping.

    Raises:
        ConfigurationError: ``target_ms``, ``enter`` or ``leave`` is not a finite number > 0,
            ``leave`` exceeds ``enter``, ``confirm`` is not an int >= 1, ``over`` is not a bool or
            ``streak`` is not an int >= 0.

    Example::

        gate = Hysteresis(target_ms=800.0)
        gate = gate.update(900.0).update(950.0)
        gate.over   # True
    """

    target_ms: float
    enter: float = 1.0
    leave: float = 0.85
    confirm: int = 2
    over: bool = False
    streak: int = 0

    def __post_init__(self) -> None:
        for label in ("target_ms", "enter", "leave"):
            value = getattr(self, label)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"{label} must be a finite number > 0, not {value!r}")
        if self.leave > self.enter:
            raise ConfigurationError(f"leave ({self.leave!r}) must not exceed enter ({self.enter!r})")
        if not _is_int(self.confirm) or self.confirm < 1:
            raise ConfigurationError(f"confirm must be an int >= 1, not {self.confirm!r}")
        if not isinstance(self.over, bool):
            raise ConfigurationError(f"over must be a bool, not {self.over!r}")
        _check_count("streak", self.streak)

    @property
    def enter_ms(self) -> float:
        """The P95 (milliseconds) that must be exceeded to count towards turning over."""
        return self.enter * self.target_ms

    @property
    def leave_ms(self) -> float:
        """The P95 (milliseconds) that must be undercut to count towards turning back."""
        return self.leave * self.target_ms

    def update(self, p95_ms: float) -> Hysteresis:
        """Return the state after one more P95 reading.

        Args:
            p95_ms: the window's P95 in milliseconds; NaN (no data) resets the streak.

        Returns:
            A new :class:`Hysteresis`; this one is unchanged.

        Raises:
            ConfigurationError: ``p95_ms`` is not a number or is negative.
        """
        if not _is_real(p95_ms) or p95_ms < 0:
            raise ConfigurationError(f"p95_ms must be a number >= 0 or NaN, not {p95_ms!r}")
        pushing = p95_ms < self.leave_ms if self.over else p95_ms > self.enter_ms
        if not pushing:
            return _replace(self, self.over, 0)
        if self.streak + 1 >= self.confirm:
            return _replace(self, not self.over, 0)
        return _replace(self, self.over, self.streak + 1)


def _replace(gate: Hysteresis, over: bool, streak: int) -> Hysteresis:
    return Hysteresis(gate.target_ms, gate.enter, gate.leave, gate.confirm, over, streak)
