from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from llmvoice.benchmark import report
from llmvoice.benchmark.metrics import Summary, summarize
from llmvoice.benchmark.report import Section, frontier_points, render_markdown, to_json_dict, write_plot
from llmvoice.benchmark.runner import RequestRecord, RunResult, TurnRecord
from llmvoice.errors import ConfigurationError


def _run(label: str = "alpha", ttfts: tuple[float, ...] = (0.5, 1.0)) -> RunResult:
    turns = tuple(
        TurnRecord(
            turn=i,
            at_s=10.0 * i,
            ttft_s=t,
            input_tokens=100,
            cached_tokens=50 * i,
            cache_write_tokens=0,
            irreducible_tokens=25,
            cost_usd=0.01,
            overhead_s=2e-5,
            idle_s=3e-4,
        )
        for i, t in enumerate(ttfts)
    )
    requests = tuple(
        RequestRecord(
            turn=i,
            step=0,
            background=False,
            at_s=10.0 * i,
            ttft_s=t,
            input_tokens=100,
            cached_tokens=50 * i,
            cache_write_tokens=0,
            irreducible_tokens=25,
            cost_usd=0.01,
        )
        for i, t in enumerate(ttfts)
    )
    return RunResult(
        contender=label,
        label=label,
        budget=None,
        knob=None,
        scenario="tiny",
        provider="openai",
        model="m",
        turns=turns,
        requests=requests,
        facts_total=2,
        facts_retained=("name",),
        final_input_tokens=100,
        counters={"compactions": 1},
    )


def _section() -> Section:
    run = _run()
    return Section("simulated openai", "m", (run,), (summarize(run, target_ms=800.0),))


class TestMarkdown:
    def test_row_of_a_contender(self) -> None:
        text = render_markdown([_section()])
        assert (
            "| alpha | 750 | 975 | 995 | 1,000 | 50.0% | 25.0% | 3.00× | 0.0200 | 1/2 | 100 | 20 | 300 | 1/0/0 |"
            in text
        )

    def test_header_lines_come_first(self) -> None:
        assert render_markdown([_section()], header=["Command: x"]).splitlines()[0] == "Command: x"

    def test_section_title(self) -> None:
        assert "### simulated openai · m" in render_markdown([_section()])

    def test_budget_in_contender_name(self) -> None:
        section = _section()
        summary = dataclasses.replace(section.summaries[0], budget=2000, knob="max_tokens")
        text = render_markdown([dataclasses.replace(section, summaries=(summary,))])
        assert "| alpha (max_tokens=2000) |" in text

    def test_sweep_table(self) -> None:
        section = _section()
        summary = dataclasses.replace(section.summaries[0], budget=4000)
        text = render_markdown([dataclasses.replace(section, sweep=(summary,))])
        assert "| alpha | 4,000 | 975 | 100 | 1/2 | 25.0% |" in text

    def test_error_is_reported(self) -> None:
        section = _section()
        summary = dataclasses.replace(section.summaries[0], error="turn 3: boom")
        text = render_markdown([dataclasses.replace(section, summaries=(summary,))])
        assert "alpha stopped early: turn 3: boom" in text


class TestJson:
    def test_nan_becomes_null(self) -> None:
        section = _section()
        summary = dataclasses.replace(section.summaries[0], ttft_p95_ms=math.nan)
        data = to_json_dict([dataclasses.replace(section, summaries=(summary,))], meta={"seed": 0})
        assert json.loads(json.dumps(data))["sections"][0]["summaries"][0]["ttft_p95_ms"] is None

    def test_per_turn_series(self) -> None:
        data = to_json_dict([_section()], meta={})
        assert data["sections"][0]["per_turn"]["alpha"] == {
            "ttft_ms": [500.0, 1000.0],
            "cached_share": [0.0, 0.5],
            "input_tokens": [100.0, 100.0],
        }

    def test_meta_is_kept(self) -> None:
        assert to_json_dict([], meta={"seed": 3}) == {"meta": {"seed": 3}, "sections": []}


class TestFrontier:
    def test_points_sorted_by_context_kept(self) -> None:
        base = _section().summaries[0]
        sweep: list[Summary] = [
            dataclasses.replace(base, context_kept_tokens=900, ttft_p95_ms=700.0, facts_retained=2),
            dataclasses.replace(base, context_kept_tokens=300, ttft_p95_ms=500.0, facts_retained=0),
        ]
        assert frontier_points(sweep) == {"alpha": [(300, 500.0, 0), (900, 700.0, 2)]}


class TestPlot:
    def test_writes_turn_plot(self, tmp_path: Path) -> None:
        pytest.importorskip("matplotlib")
        written = write_plot([_section()], tmp_path / "out.png", target_ms=800.0)
        assert (written, (tmp_path / "out.png").read_bytes()[:8]) == ([tmp_path / "out.png"], b"\x89PNG\r\n\x1a\n")

    def test_writes_frontier_beside_it(self, tmp_path: Path) -> None:
        pytest.importorskip("matplotlib")
        section = _section()
        written = write_plot([dataclasses.replace(section, sweep=section.summaries)], tmp_path / "o.png", target_ms=1)
        assert written == [tmp_path / "o.png", tmp_path / "o-frontier.png"]


def test_rolling_median_covers_the_window() -> None:
    """Each point is the median of itself and the window - 1 points before it."""
    assert report.rolling_median([5.0, 1.0, 9.0, 3.0, 7.0], 3) == [5.0, 3.0, 5.0, 3.0, 7.0]


def test_rolling_median_refuses_empty_window() -> None:
    """A window below 1 is a configuration error."""
    with pytest.raises(ConfigurationError, match="window must be at least 1, not 0"):
        report.rolling_median([1.0], 0)
