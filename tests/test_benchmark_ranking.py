"""benchmark/ranking.py: its input, its llmvoice measurement, its report, and running without voice-budget."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

from llmvoice.compaction import Embedder, Replace

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmark" / "ranking.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_ranking", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ranking = _load()


def _encode(texts: list[str]) -> npt.NDArray[np.float64]:
    return np.random.default_rng(len(texts)).standard_normal((len(texts), 8))


def _fake_embedder() -> Embedder:
    return Embedder(_encode, background=False)


def _run(*sizes: int) -> ranking.Report:
    return ranking.run(sizes, repeats=2, voice_budget=False, embedder_factory=_fake_embedder)


def test_session_cuts_at_the_last_boundary_within_80_percent() -> None:
    """10 history messages: all committed, the question recent, the cut at message 8."""
    session = ranking.make_session(10)
    assert (len(session.state.committed), [m.text for m in session.state.recent], session.cut) == (
        10,
        [ranking.QUERY],
        8,
    )


def test_session_messages_are_system_history_and_question() -> None:
    """voice-budget gets the system prompt first, the 10 history messages, then the question."""
    messages = ranking.make_session(10).messages
    assert [m["role"] for m in messages] == ["system", *["user", "assistant"] * 5, "user"]
    assert (messages[0]["content"], messages[-1]["content"]) == (ranking.overhead.SYSTEM, ranking.QUERY)


def test_run_has_one_row_per_size() -> None:
    """Each size gives one row, in order."""
    assert [row.messages for row in _run(6, 10).rows] == [6, 10]


def test_llmvoice_compact_replaces_the_span_with_one_quote() -> None:
    """The timed compact returns a Replace of one summary block covering the 8 cut messages."""
    outcome = _run(10).rows[0].outcome
    assert isinstance(outcome, Replace)
    assert [(b.kind, b.covers) for b in outcome.blocks] == [("summary", (0, 1, 2, 3, 4, 5, 6, 7))]


def test_skipping_voice_budget_leaves_its_column_empty() -> None:
    """With voice_budget=False no compress is timed and the report says why."""
    report = _run(10)
    row = report.rows[0]
    assert (row.voice_budget_s, row.voice_budget_note, report.voice_budget_status) == (
        None,
        "skipped",
        "voice-budget skipped (--skip-voice-budget)",
    )


def test_missing_voice_budget_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """When voice_budget cannot be imported the run goes on and names the missing module."""
    monkeypatch.setitem(sys.modules, "voice_budget.compressors", None)
    report = ranking.run([10], repeats=2, embedder_factory=_fake_embedder)
    assert (report.rows[0].voice_budget_s, report.voice_budget_status) == (
        None,
        "voice-budget skipped: voice_budget.compressors is not installed",
    )


def test_markdown_row_shows_milliseconds_and_ratio() -> None:
    """A row prints rank, compact, voice-budget in ms and voice-budget ÷ compact."""
    row = ranking.Row(200, 1.0, 0.0001, 0.002, Replace(), 3.0)
    report = ranking.Report([row], 50, 3, "", "cmd", "tiktoken:o200k_base")
    lines = ranking.render_markdown(report).splitlines()
    table = lines.index("| messages | llmvoice rank | llmvoice compact | voice-budget SemanticTrim.compress | ratio |")
    assert lines[table + 2] == "| 200 | 0.100 ms | 2.00 ms | 3,000 ms | 1,500× |"


def test_target_line_reports_compact_at_200_messages() -> None:
    """6 ms at 200 messages misses the 5 ms target."""
    row = ranking.Row(200, 1.0, 0.0001, 0.006, Replace(), None, "skipped")
    report = ranking.Report([row], 50, 3, "", "cmd", "tiktoken:o200k_base")
    last = ranking.render_markdown(report).splitlines()[-1]
    assert last == "Target: llmvoice compact ≤ 5 ms at 200 messages: NOT met (6.00 ms)."


def test_main_without_voice_budget_prints_and_writes_the_same_markdown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--skip-voice-budget --output: exit 0, the file holds what was printed, one table row."""
    monkeypatch.setattr(ranking, "real_embedder", _fake_embedder)
    output = tmp_path / "ranking.md"
    argv = ["--sizes", "10", "--repeats", "2", "--skip-voice-budget", "--output", str(output)]
    assert ranking.main(argv) == 0
    printed = capsys.readouterr().out
    assert output.read_text(encoding="utf-8") == printed
    assert [line.split(" | ")[0] for line in printed.splitlines() if line.startswith("| 10 |")] == ["| 10"]
