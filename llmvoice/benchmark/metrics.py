"""Per-contender figures from a run: latency percentiles, cache use, cost, memory of the call.

Percentiles use numpy's default (linear interpolation) over all turns of the run. The cached
share counts foreground requests only; cost counts every request, background summaries and
pre-warms included.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llmvoice.benchmark.runner import RunResult

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures reported for one contender.

    Attributes:
        contender: registry name.
        label: display name.
        budget: budget knob value (``None``: default).
        knob: what the budget sets.
        turns: turns played.
        ttft_p50_ms: median time to first token per turn.
        ttft_p95_ms: 95th percentile.
        ttft_p99_ms: 99th percentile.
        ttft_max_ms: worst turn.
        over_target_pct: share of turns slower than the target, in percent.
        cached_share: cached prompt tokens ÷ all prompt tokens (foreground requests).
        uncached_per_irreducible: uncached prompt tokens ÷ tokens new at each request (1.0 is
            the floor no cache can beat).
        input_tokens: all prompt tokens sent (foreground).
        cache_write_tokens: prompt tokens written to the cache at a premium.
        background_requests: summary and pre-warm requests.
        cost_usd: total cost, background requests and cache-write premiums included.
        facts_retained: planted facts still in the last request.
        facts_total: planted facts.
        context_kept_tokens: prompt tokens of the last request.
        overhead_us: median per-turn time inside the library on the critical path (from the
            utterance to the last reply), in microseconds.
        idle_us: median per-turn time inside the library off the critical path (while the user
            speaks or the reply plays), in microseconds.
        compactions: compactions performed.
        rebases: rebases performed.
        rollbacks: rollbacks performed.
        error: why the run stopped early, or ``None``.
    """

    contender: str
    label: str
    budget: int | None
    knob: str | None
    turns: int
    ttft_p50_ms: float
    ttft_p95_ms: float
    ttft_p99_ms: float
    ttft_max_ms: float
    over_target_pct: float
    cached_share: float
    uncached_per_irreducible: float
    input_tokens: int
    cache_write_tokens: int
    background_requests: int
    cost_usd: float
    facts_retained: int
    facts_total: int
    context_kept_tokens: int
    overhead_us: float
    idle_us: float
    compactions: int
    rebases: int
    rollbacks: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return asdict(self)


def _percentiles(values: Iterable[float], qs: tuple[float, ...]) -> list[float]:
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(data, qs)]


def summarize(result: RunResult, *, target_ms: float) -> Summary:
    """The reported figures of one run.

    Args:
        result: the run.
        target_ms: the TTFT target a turn is compared with.

    Returns:
        The summary; latency figures are NaN when no turn was played.
    """
    ttfts_ms = [t.ttft_s * 1000.0 for t in result.turns]
    p50, p95, p99 = _percentiles(ttfts_ms, (50.0, 95.0, 99.0))
    foreground = [r for r in result.requests if not r.background]
    input_tokens = sum(r.input_tokens for r in foreground)
    cached = sum(r.cached_tokens for r in foreground)
    irreducible = sum(r.irreducible_tokens for r in foreground)
    over = sum(1 for t in ttfts_ms if t > target_ms)
    return Summary(
        contender=result.contender,
        label=result.label,
        budget=result.budget,
        knob=result.knob,
        turns=len(result.turns),
        ttft_p50_ms=p50,
        ttft_p95_ms=p95,
        ttft_p99_ms=p99,
        ttft_max_ms=max(ttfts_ms) if ttfts_ms else float("nan"),
        over_target_pct=100.0 * over / len(ttfts_ms) if ttfts_ms else float("nan"),
        cached_share=cached / input_tokens if input_tokens else 0.0,
        uncached_per_irreducible=(input_tokens - cached) / irreducible if irreducible else float("nan"),
        input_tokens=input_tokens,
        cache_write_tokens=sum(r.cache_write_tokens for r in result.requests),
        background_requests=sum(1 for r in result.requests if r.background),
        cost_usd=sum(r.cost_usd for r in result.requests),
        facts_retained=len(result.facts_retained),
        facts_total=result.facts_total,
        context_kept_tokens=result.final_input_tokens,
        overhead_us=statistics.median(t.overhead_s for t in result.turns) * 1e6 if result.turns else float("nan"),
        idle_us=statistics.median(t.idle_s for t in result.turns) * 1e6 if result.turns else float("nan"),
        compactions=int(result.counters.get("compactions", 0)),
        rebases=int(result.counters.get("rebases", 0)),
        rollbacks=int(result.counters.get("rollbacks", 0)),
        error=result.error,
    )
