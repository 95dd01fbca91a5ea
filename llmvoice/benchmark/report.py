"""Render benchmark results: a rich table, markdown, JSON, and plots.

``rich`` and ``matplotlib`` come with the ``benchmark`` extra; without ``rich`` the table is
printed as markdown, and a plot asked for without ``matplotlib`` is a clear error.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmvoice.benchmark.metrics import Summary
from llmvoice.benchmark.runner import RunResult
from llmvoice.errors import ConfigurationError

__all__ = [
    "Section",
    "frontier_points",
    "render_markdown",
    "render_rich",
    "rolling_median",
    "to_json_dict",
    "write_plot",
]


@dataclass(frozen=True, slots=True)
class Section:
    """The runs of every contender against one provider.

    Attributes:
        provider: the provider (``simulated openai``, ``local``, ...).
        model: the model name.
        runs: the default-setting run of each contender.
        summaries: their summaries, in the same order.
        sweep: summaries of the budget sweep (empty without ``--sweep``).
        notes: lines printed under the table (fidelity, skipped contenders).
    """

    provider: str
    model: str
    runs: tuple[RunResult, ...]
    summaries: tuple[Summary, ...]
    sweep: tuple[Summary, ...] = ()
    notes: tuple[str, ...] = field(default=())


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("contender", "contender"),
    ("P50 ms", "ttft_p50_ms"),
    ("P95 ms", "ttft_p95_ms"),
    ("P99 ms", "ttft_p99_ms"),
    ("max ms", "ttft_max_ms"),
    ("> target", "over_target_pct"),
    ("cached", "cached_share"),
    ("uncached ÷ new", "uncached_per_irreducible"),
    ("cost $", "cost_usd"),
    ("facts", "facts_retained"),
    ("context kept", "context_kept_tokens"),
    ("overhead µs", "overhead_us"),
    ("idle µs", "idle_us"),
    ("compact/rebase/rollback", "counters"),
)


def _cell(summary: Summary, key: str) -> str:
    if key == "contender":
        return summary.label if summary.budget is None else f"{summary.label} ({summary.knob}={summary.budget})"
    if key == "counters":
        return f"{summary.compactions}/{summary.rebases}/{summary.rollbacks}"
    if key == "facts_retained":
        return f"{summary.facts_retained}/{summary.facts_total}"
    value = getattr(summary, key)
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if key in ("ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms", "ttft_max_ms"):
        return f"{value:,.0f}"
    if key == "over_target_pct":
        return f"{value:.1f}%"
    if key == "cached_share":
        return f"{100 * value:.1f}%"
    if key == "uncached_per_irreducible":
        return f"{value:.2f}×"
    if key == "cost_usd":
        return f"{value:.4f}"
    if key == "context_kept_tokens":
        return f"{value:,}"
    if key in ("overhead_us", "idle_us"):
        return f"{value:,.0f}"
    return str(value)


def _title(section: Section) -> str:
    return f"{section.provider} · {section.model}"


def render_markdown(sections: Sequence[Section], *, header: Sequence[str] = ()) -> str:
    """The results as markdown tables, one per provider.

    Args:
        sections: the results.
        header: lines printed first (command, scenario, target).

    Returns:
        Markdown text.
    """
    lines = [*header]
    for section in sections:
        lines += ["", f"### {_title(section)}", ""]
        lines.append("| " + " | ".join(name for name, _ in _COLUMNS) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(_COLUMNS) - 1)) + "|")
        for summary in section.summaries:
            lines.append("| " + " | ".join(_cell(summary, key) for _, key in _COLUMNS) + " |")
        errors = [s for s in section.summaries if s.error]
        lines += [f"\n{s.label} stopped early: {s.error}" for s in errors]
        if section.sweep:
            lines += ["", "Budget sweep (frontier):", ""]
            lines.append("| contender | budget | P95 ms | context kept | facts | cached |")
            lines.append("|---|---:|---:|---:|---:|---:|")
            for s in section.sweep:
                budget = "default" if s.budget is None else f"{s.budget:,}"
                lines.append(
                    f"| {s.label} | {budget} | {_cell(s, 'ttft_p95_ms')} | {s.context_kept_tokens:,} | "
                    f"{s.facts_retained}/{s.facts_total} | {_cell(s, 'cached_share')} |"
                )
        if section.notes:
            lines += ["", *section.notes]
    return "\n".join(lines) + "\n"


def render_rich(sections: Sequence[Section], *, header: Sequence[str] = ()) -> None:
    """Print the results as rich tables (markdown when rich is not installed).

    Args:
        sections: the results.
        header: lines printed first.
    """
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_markdown(sections, header=header))
        return
    console = Console()
    for line in header:
        console.print(line)
    for section in sections:
        table = Table(title=_title(section), title_justify="left")
        for index, (name, _) in enumerate(_COLUMNS):
            table.add_column(name, justify="left" if index == 0 else "right")
        for summary in section.summaries:
            table.add_row(*(_cell(summary, key) for _, key in _COLUMNS))
        console.print(table)
        for s in section.summaries:
            if s.error:
                console.print(f"[red]{s.label} stopped early: {s.error}[/red]")
        if section.sweep:
            sweep = Table(title=f"{_title(section)} · budget sweep", title_justify="left")
            for name in ("contender", "budget", "P95 ms", "context kept", "facts", "cached"):
                sweep.add_column(name, justify="left" if name == "contender" else "right")
            for s in section.sweep:
                sweep.add_row(
                    s.label,
                    "default" if s.budget is None else f"{s.budget:,}",
                    _cell(s, "ttft_p95_ms"),
                    f"{s.context_kept_tokens:,}",
                    f"{s.facts_retained}/{s.facts_total}",
                    _cell(s, "cached_share"),
                )
            console.print(sweep)
        for note in section.notes:
            console.print(note)


def _per_turn(run: RunResult) -> dict[str, list[float]]:
    return {
        "ttft_ms": [round(t.ttft_s * 1000.0, 3) for t in run.turns],
        "cached_share": [round(t.cached_tokens / t.input_tokens, 4) if t.input_tokens else 0.0 for t in run.turns],
        "input_tokens": [float(t.input_tokens) for t in run.turns],
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json_dict(sections: Sequence[Section], *, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The results as a JSON-ready dict (NaN written as null).

    Args:
        sections: the results.
        meta: run settings (command, scenario, seed, target).

    Returns:
        ``{"meta", "sections": [{"provider", "model", "summaries", "per_turn", "sweep", "notes"}]}``.
    """
    cleaned: dict[str, Any] = _clean(
        {
            "meta": dict(meta),
            "sections": [
                {
                    "provider": s.provider,
                    "model": s.model,
                    "summaries": [x.as_dict() for x in s.summaries],
                    "per_turn": {r.label: _per_turn(r) for r in s.runs},
                    "sweep": [x.as_dict() for x in s.sweep],
                    "notes": list(s.notes),
                }
                for s in sections
            ],
        }
    )
    return cleaned


def frontier_points(summaries: Sequence[Summary]) -> dict[str, list[tuple[int, float, int]]]:
    """Per contender, ``(context kept, P95 ms, facts retained)`` sorted by context kept.

    Args:
        summaries: sweep summaries.

    Returns:
        The points of each contender's curve.
    """
    curves: dict[str, list[tuple[int, float, int]]] = {}
    for s in summaries:
        curves.setdefault(s.label, []).append((s.context_kept_tokens, s.ttft_p95_ms, s.facts_retained))
    return {label: sorted(points) for label, points in curves.items()}


_ROLLING = 10


def rolling_median(values: Sequence[float], window: int) -> list[float]:
    """The median of each value and the ``window - 1`` before it (fewer at the start).

    Args:
        values: a series.
        window: how many values each median covers; at least 1.

    Returns:
        A series as long as ``values``.
    """
    if window < 1:
        raise ConfigurationError(f"window must be at least 1, not {window}")
    return [statistics.median(values[max(0, i + 1 - window) : i + 1]) for i in range(len(values))]


def write_plot(sections: Sequence[Section], path: str | Path, *, target_ms: float) -> list[Path]:
    """Plot TTFT and cached share per turn (and the frontier when a sweep ran).

    Args:
        sections: the results.
        path: the PNG to write; the frontier goes to ``<stem>-frontier.png`` beside it.
        target_ms: the target line drawn on the TTFT panels.

    Returns:
        The files written.

    Raises:
        ConfigurationError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigurationError("--plot needs matplotlib: pip install 'llmvoice[benchmark]'") from None
    path = Path(path)
    written = []
    columns = len(sections)
    fig, axes = plt.subplots(2, columns, figsize=(7 * columns, 8), squeeze=False)
    for col, section in enumerate(sections):
        top, bottom = axes[0][col], axes[1][col]
        for run in section.runs:
            turns = [t.turn + 1 for t in run.turns]
            data = _per_turn(run)
            top.plot(turns, rolling_median(data["ttft_ms"], _ROLLING), label=run.label, linewidth=1.2)
            cached = [100 * v for v in data["cached_share"]]
            bottom.plot(turns, rolling_median(cached, _ROLLING), label=run.label, linewidth=1.2)
        top.axhline(target_ms, color="grey", linestyle="--", linewidth=0.8)
        top.set_yscale("log")
        top.set_title(f"{_title(section)}: TTFT, median of the last {_ROLLING} turns")
        top.set_ylabel("TTFT (ms, log)")
        bottom.set_title(f"cached share of the prompt, median of the last {_ROLLING} turns")
        bottom.set_ylabel("cached (%)")
        bottom.set_xlabel("turn")
        bottom.set_ylim(-2, 102)
        top.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    swept = [s for s in sections if s.sweep]
    if swept:
        fig, axes = plt.subplots(2, len(swept), figsize=(7 * len(swept), 8), squeeze=False)
        for col, section in enumerate(swept):
            for label, points in frontier_points(section.sweep).items():
                kept = [p[0] for p in points]
                p95 = [p[1] for p in points]
                facts = [p[2] for p in points]
                axes[0][col].plot(kept, p95, marker="o", label=label)
                axes[1][col].plot(facts, p95, marker="o", label=label)
            axes[0][col].set_title(f"{_title(section)}: P95 TTFT vs context kept")
            axes[0][col].set_xlabel("context kept at the end (tokens)")
            axes[0][col].set_ylabel("P95 TTFT (ms)")
            axes[1][col].set_title("P95 TTFT vs planted facts retained")
            axes[1][col].set_xlabel("planted facts retained")
            axes[1][col].set_ylabel("P95 TTFT (ms)")
            axes[0][col].legend(fontsize=8)
        fig.tight_layout()
        frontier = path.with_name(f"{path.stem}-frontier{path.suffix}")
        fig.savefig(frontier, dpi=110)
        plt.close(fig)
        written.append(frontier)
    return written
