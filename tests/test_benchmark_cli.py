"""The command line: what ``python -m llmvoice.benchmark`` runs, prints and writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmvoice.benchmark import cli
from llmvoice.benchmark.contenders import CONTENDERS


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert cli.main([*argv, "--format", "json", "--quiet"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_turns_300_plays_300_turns_for_each_contender(capsys: pytest.CaptureFixture[str]) -> None:
    """--turns 300 is honoured: every contender's summary and per-turn series has 300 turns."""
    data = _json(capsys, "--contenders", "naive,llmvoice", "--sim", "openai", "--turns", "300")
    section = data["sections"][0]
    assert [s["turns"] for s in section["summaries"]] == [300, 300]
    assert [len(v["ttft_ms"]) for v in section["per_turn"].values()] == [300, 300]


def test_turns_shortens_the_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    """--turns 12 plays the scenario's first 12 turns."""
    data = _json(capsys, "--contenders", "llmvoice", "--sim", "openai", "--turns", "12")
    assert (data["meta"]["turns"], data["sections"][0]["summaries"][0]["turns"]) == (12, 12)


def test_default_sims_are_openai_and_anthropic(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --sim the report has one section per simulated OpenAI and Anthropic cache."""
    data = _json(capsys, "--turns", "5")
    assert [(s["provider"], s["model"]) for s in data["sections"]] == [
        ("simulated openai", "gpt-4o-mini"),
        ("simulated anthropic", "claude-sonnet-4-6"),
    ]


def test_sim_all_runs_four_caches(capsys: pytest.CaptureFixture[str]) -> None:
    """--sim all runs the OpenAI, Anthropic, vLLM and llama.cpp simulators."""
    data = _json(capsys, "--sim", "all", "--turns", "3")
    assert [s["provider"] for s in data["sections"]] == [
        "simulated openai",
        "simulated anthropic",
        "simulated vllm",
        "simulated llamacpp",
    ]


def test_without_compare_only_llmvoice_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --compare or --contenders the one contender is llmvoice."""
    data = _json(capsys, "--sim", "openai", "--turns", "3")
    assert [s["contender"] for s in data["sections"][0]["summaries"]] == ["llmvoice"]


def test_compare_runs_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    """--compare runs every registered contender, in registry order."""
    data = _json(capsys, "--compare", "--sim", "openai", "--turns", "3")
    assert [s["contender"] for s in data["sections"][0]["summaries"]] == list(CONTENDERS)


def test_meta_records_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON meta block repeats the exact command, scenario and seed."""
    meta = _json(capsys, "--sim", "openai", "--turns", "3", "--seed", "4")["meta"]
    assert (meta["command"], meta["scenario"], meta["seed"]) == (
        "python -m llmvoice.benchmark --sim openai --turns 3 --seed 4 --format json --quiet",
        "voice_support",
        4,
    )


def test_same_seed_same_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs with one seed give the same simulated TTFTs."""
    first = _json(capsys, "--sim", "anthropic", "--turns", "20")["sections"][0]["per_turn"]
    second = _json(capsys, "--sim", "anthropic", "--turns", "20")["sections"][0]["per_turn"]
    assert first["llmvoice"]["ttft_ms"] == second["llmvoice"]["ttft_ms"]


def test_sweep_adds_one_run_per_budget(capsys: pytest.CaptureFixture[str]) -> None:
    """--sweep 1000,4000 runs each contender with a budget knob at both budgets."""
    data = _json(capsys, "--contenders", "naive", "--sim", "openai", "--turns", "10", "--sweep", "1000,4000")
    assert [s["budget"] for s in data["sections"][0]["sweep"]] == [None, 1000, 4000]


def test_markdown_has_one_table_per_provider(capsys: pytest.CaptureFixture[str]) -> None:
    """--format markdown prints a heading and a table per simulated provider."""
    assert cli.main(["--turns", "3", "--format", "markdown", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (out.count("### simulated openai"), out.count("### simulated anthropic"), out.count("| contender |")) == (
        1,
        1,
        2,
    )


def test_output_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--output writes the report to the file and nothing to standard output."""
    target = tmp_path / "report.md"
    assert cli.main(["--turns", "3", "--sim", "openai", "--output", str(target), "--quiet"]) == 0
    assert (capsys.readouterr().out, target.read_text(encoding="utf-8").count("| llmvoice |")) == ("", 1)


def test_plot_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--plot writes a PNG (and the frontier PNG when a sweep ran)."""
    plot = tmp_path / "run.png"
    argv = ["--turns", "5", "--sim", "openai", "--contenders", "naive", "--sweep", "1000", "--plot", str(plot)]
    assert cli.main([*argv, "--format", "json", "--quiet"]) == 0
    capsys.readouterr()
    frontier = tmp_path / "run-frontier.png"
    assert (plot.read_bytes()[:4], frontier.read_bytes()[:4]) == (b"\x89PNG", b"\x89PNG")


def test_unknown_contender_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown contender is a configuration error naming it, exit status 2."""
    assert cli.main(["--contenders", "llmvoice,nope", "--quiet"]) == 2
    assert "unknown contender(s) nope" in capsys.readouterr().err


def test_unknown_sim_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --sim value is a configuration error, exit status 2."""
    assert cli.main(["--sim", "gemini", "--quiet"]) == 2
    assert "--sim takes openai, anthropic, vllm, llamacpp or 'all', not 'gemini'" in capsys.readouterr().err


def test_model_with_two_sims_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """--model with more than one simulated provider is refused."""
    assert cli.main(["--model", "gpt-4o", "--quiet"]) == 2
    assert "--model applies to one provider" in capsys.readouterr().err


def test_zero_turns_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """--turns 0 is refused."""
    assert cli.main(["--turns", "0", "--quiet"]) == 2
    assert "--turns must be at least 1, not 0" in capsys.readouterr().err


def test_bad_sweep_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A --sweep that is not a list of integers is refused."""
    assert cli.main(["--turns", "2", "--sim", "openai", "--sweep", "1k", "--quiet"]) == 2
    assert "--sweep takes comma-separated token budgets, not '1k'" in capsys.readouterr().err


def test_unknown_scenario_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown scenario name is a configuration error."""
    assert cli.main(["--scenario", "no_such_scenario", "--quiet"]) == 2
    assert "no_such_scenario" in capsys.readouterr().err


def test_live_provider_without_key_skips(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--provider openai without OPENAI_API_KEY prints why it skipped and exits 0."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli.main(["--provider", "openai", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err.startswith("skipped --provider openai: ")) == ("", True)


def test_anthropic_without_key_skips(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--provider anthropic without ANTHROPIC_API_KEY prints why it skipped and exits 0."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert cli.main(["--provider", "anthropic", "--quiet"]) == 0
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_strategy_runs_each_llmvoice_contender_once_per_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    """--strategy window,summarise+mask gives two llmvoice variants; other contenders run once."""
    data = _json(
        capsys,
        "--contenders",
        "naive,llmvoice",
        "--strategy",
        "window,summarise+mask",
        "--sim",
        "openai",
        "--turns",
        "3",
    )
    assert [s["contender"] for s in data["sections"][0]["summaries"]] == [
        "naive",
        "llmvoice[window]",
        "llmvoice[summarise+mask]",
    ]


def test_unknown_strategy_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --strategy is refused before anything runs."""
    assert cli.main(["--strategy", "magic", "--quiet"]) == 2
    assert "unknown strategy 'magic'; expected one of summarise, window, semantic, custom" in capsys.readouterr().err
