"""Command line: ``python -m llmvoice.benchmark --compare``.

Plays one scenario through every contender, each against its own copy of the same provider, and
prints one table per provider. ``--provider simulated`` (the default) runs the provider cache
simulators named by ``--sim`` on virtual time, offline, in seconds; ``local`` runs the real
llama.cpp engine on this CPU; ``openai``, ``anthropic`` and ``openai-compatible`` call live
endpoints.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmvoice.benchmark.base import Contender, Scenario, Target
from llmvoice.benchmark.contenders import (
    CONTENDERS,
    STRATEGIES,
    LLMVoiceContender,
    available_contenders,
    strategy_variant,
)
from llmvoice.benchmark.metrics import Summary, summarize
from llmvoice.benchmark.report import Section, render_markdown, render_rich, to_json_dict, write_plot
from llmvoice.benchmark.runner import DEFAULT_MODELS, Provider, RunResult, run, simulated_provider
from llmvoice.benchmark.scenarios import load_scenario, scenario_stats
from llmvoice.errors import ConfigurationError

__all__ = ["DEFAULT_SWEEP", "SIMULATED", "build_parser", "main"]

#: The simulated caches ``--sim all`` runs.
SIMULATED: tuple[str, ...] = ("openai", "anthropic", "vllm", "llamacpp")
#: Budgets (tokens) of ``--sweep`` when none are given.
DEFAULT_SWEEP: tuple[int, ...] = (1_000, 2_000, 4_000, 8_000, 16_000)
#: Turns played by ``--provider local`` when ``--turns`` is not given (a cold prefill there
#: costs seconds per thousand tokens).
LOCAL_DEFAULT_TURNS = 16


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m llmvoice.benchmark``."""
    parser = argparse.ArgumentParser(
        prog="python -m llmvoice.benchmark",
        description="Time to first token, cache use, cost and memory of voice-agent context managers.",
    )
    parser.add_argument("--compare", action="store_true", help="run every available contender (default: llmvoice)")
    parser.add_argument("--contenders", help="comma-separated contenders to run (overrides --compare)")
    parser.add_argument("--scenario", default="voice_support", help="a scenario name or a scenario .json file")
    parser.add_argument("--turns", type=int, help="turns to play (default: the scenario's)")
    parser.add_argument(
        "--provider",
        default="simulated",
        choices=("simulated", "local", "openai", "anthropic", "openai-compatible"),
        help="where requests go (default: simulated provider caches)",
    )
    parser.add_argument(
        "--sim",
        default="openai,anthropic",
        help=f"simulated caches to run, comma-separated, or 'all' ({', '.join(SIMULATED)}); default openai,anthropic",
    )
    parser.add_argument("--model", help="model name (default per provider)")
    parser.add_argument("--base-url", default="http://localhost:8080/v1", help="server for openai-compatible")
    parser.add_argument("--target-ms", type=float, default=800.0, help="TTFT target per turn (default 800)")
    parser.add_argument("--seed", type=int, default=0, help="scenario and noise seed (default 0)")
    parser.add_argument("--budget", type=int, help="token budget for every contender that has one")
    parser.add_argument(
        "--strategy",
        help="run the llmvoice contenders once per compaction strategy, comma-separated: "
        + ", ".join(STRATEGIES)
        + ", each optionally with '+mask' (tool-output masking); default: summarise",
    )
    parser.add_argument(
        "--sweep",
        nargs="?",
        const=",".join(str(b) for b in DEFAULT_SWEEP),
        help="also sweep each contender's budget (comma-separated tokens; default "
        + ",".join(str(b) for b in DEFAULT_SWEEP)
        + ") and report the frontier",
    )
    parser.add_argument("--format", default="table", choices=("table", "markdown", "json"), help="output format")
    parser.add_argument("--output", help="write the report to this file instead of standard output")
    parser.add_argument("--plot", help="write a PNG of TTFT and cached share per turn (and the frontier)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _contender_names(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    availability = available_contenders()
    if args.contenders:
        names = [n.strip() for n in args.contenders.split(",") if n.strip()]
        unknown = [n for n in names if n not in CONTENDERS]
        if unknown:
            raise ConfigurationError(f"unknown contender(s) {', '.join(unknown)}; expected {', '.join(CONTENDERS)}")
    elif args.compare:
        names = list(CONTENDERS)
    else:
        names = ["llmvoice"]
    notes = [f"skipped {n}: {availability[n]}" for n in names if availability.get(n)]
    return [n for n in names if not availability.get(n)], notes


def _targets(args: argparse.Namespace) -> list[Target]:
    if args.provider == "simulated":
        sims = list(SIMULATED) if args.sim.strip() == "all" else [s.strip() for s in args.sim.split(",") if s.strip()]
        bad = [s for s in sims if s not in SIMULATED]
        if bad or not sims:
            raise ConfigurationError(f"--sim takes {', '.join(SIMULATED)} or 'all', not {args.sim!r}")
        if args.model and len(sims) > 1:
            raise ConfigurationError("--model applies to one provider: give a single --sim with it")
        return [Target(sim, args.model or DEFAULT_MODELS[sim], args.base_url) for sim in sims]
    return [Target(args.provider, args.model or DEFAULT_MODELS[args.provider], args.base_url)]


class _Progress:
    """A rich progress bar on standard error, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._bar: Any = None
        if not enabled:
            return
        try:
            from rich.progress import Progress
        except ImportError:
            return
        self._bar = Progress(transient=True, console=None)
        self._bar.start()
        self._task = self._bar.add_task("benchmark", total=total)

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def advance(self, _: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _scenario(args: argparse.Namespace) -> Scenario:
    turns = args.turns
    if turns is None and args.provider == "local":
        turns = LOCAL_DEFAULT_TURNS
    if turns is not None and turns < 1:
        raise ConfigurationError(f"--turns must be at least 1, not {turns}")
    return load_scenario(args.scenario, turns=turns, seed=args.seed)


def _provider_factory(target: Target, args: argparse.Namespace) -> tuple[Callable[[], Provider], list[str]]:
    """A function giving a fresh provider per contender, and notes for the report."""
    if args.provider == "simulated":
        return (lambda: simulated_provider(target, seed=args.seed)), []
    if args.provider == "local":
        from llmvoice.benchmark.local import LocalEngine

        engine = LocalEngine()

        def fresh_engine() -> Provider:
            engine.reset()
            return engine

        return fresh_engine, []
    from llmvoice.benchmark.live import LiveProvider

    provider = LiveProvider(target)
    return (lambda: provider), []


def _run_all(
    scenario: Scenario, names: Sequence[str], target: Target, args: argparse.Namespace, progress: _Progress
) -> tuple[list[RunResult], list[Summary], list[Summary], list[str]]:
    factory, notes = _provider_factory(target, args)
    runs: list[RunResult] = []
    summaries: list[Summary] = []
    sweep: list[Summary] = []
    budgets: list[int] = []
    if args.sweep:
        try:
            budgets = [int(b) for b in args.sweep.split(",") if b.strip()]
        except ValueError:
            raise ConfigurationError(f"--sweep takes comma-separated token budgets, not {args.sweep!r}") from None
    fidelity: list[str] = []
    for name, cls in _variants(names, args.strategy):
        settings: list[int | None] = [args.budget]
        if budgets and cls.knob is not None:
            settings += [b for b in budgets if b != args.budget]
        for budget in settings:
            contender: Contender = cls(scenario, target, budget=budget, target_ms=args.target_ms)
            provider = factory()
            progress.describe(f"{target.provider}: {name}" + ("" if budget is None else f" @ {budget:,}"))
            result = run(scenario, contender, provider, registry_name=name, on_turn=progress.advance)
            summary = summarize(result, target_ms=args.target_ms)
            if budget == args.budget:
                runs.append(result)
                summaries.append(summary)
                fidelity += _fidelity_note(provider, result.label)
            if budgets:
                sweep.append(summary)
    return runs, summaries, sweep, notes + fidelity


def _variants(names: Sequence[str], strategies: str | None) -> list[tuple[str, type[Contender]]]:
    """The contender classes to run: each llmvoice contender once per ``--strategy``."""
    specs = [s.strip() for s in (strategies or "").split(",") if s.strip()]
    out: list[tuple[str, type[Contender]]] = []
    for name in names:
        cls = CONTENDERS[name]
        if specs and issubclass(cls, LLMVoiceContender):
            for spec in specs:
                variant = strategy_variant(cls, spec)
                out.append((variant.name, variant))
        else:
            out.append((name, cls))
    return out


def _fidelity_note(provider: Provider, label: str) -> list[str]:
    summary = getattr(provider, "fidelity_summary", None)
    if summary is None:
        return []
    figures = summary()
    return [f"fidelity ({label}): " + ", ".join(f"{k}={v}" for k, v in figures.items())]


def _total_turns(scenario: Scenario, names: Sequence[str], targets: Sequence[Target], args: argparse.Namespace) -> int:
    per_target = 0
    extra = len([b for b in (args.sweep or "").split(",") if b.strip()])
    for _, cls in _variants(names, args.strategy):
        per_target += 1 + (extra if cls.knob is not None else 0)
    return per_target * len(targets) * len(scenario.turns)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0, or 2 on a configuration error (printed to standard error).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        scenario = _scenario(args)
        names, skipped = _contender_names(args)
        targets = _targets(args)
        if not names:
            raise ConfigurationError("no contender can run: " + "; ".join(skipped))
        _variants(names, args.strategy)  # an unknown --strategy fails here, before anything runs
        if args.provider == "local":
            from llmvoice.benchmark.local import engine_available

            reason = engine_available()
            if reason is not None:
                raise ConfigurationError(reason)
        elif args.provider != "simulated":
            from llmvoice.benchmark.live import live_available

            reason = live_available(targets[0])
            if reason is not None:
                print(f"skipped --provider {args.provider}: {reason}", file=sys.stderr)
                return 0
        progress = _Progress(
            not args.quiet and args.format == "table" and sys.stderr.isatty(),
            _total_turns(scenario, names, targets, args),
        )
        sections = []
        try:
            for target in targets:
                runs, summaries, sweep, notes = _run_all(scenario, names, target, args, progress)
                label = f"simulated {target.provider}" if args.provider == "simulated" else target.provider
                sections.append(Section(label, target.model, tuple(runs), tuple(summaries), tuple(sweep), tuple(notes)))
        finally:
            progress.stop()
    except ConfigurationError as exc:
        print(f"llmvoice.benchmark: {exc}", file=sys.stderr)
        return 2
    command = "python -m llmvoice.benchmark " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    stats = scenario_stats(scenario)
    header = [
        f"Command: `{command.strip()}`",
        f"Scenario: {scenario.name} ({len(scenario.turns)} turns, {stats.get('requests', '?')} requests, "
        f"{len(scenario.facts)} planted facts), seed {args.seed}, target {args.target_ms:.0f} ms",
    ] + [f"Skipped: {note}" for note in skipped]
    meta = {
        "command": command.strip(),
        "scenario": scenario.name,
        "scenario_stats": stats,
        "turns": len(scenario.turns),
        "seed": args.seed,
        "target_ms": args.target_ms,
        "skipped": skipped,
    }
    if args.format == "json":
        text = json.dumps(to_json_dict(sections, meta=meta), indent=1, ensure_ascii=False) + "\n"
    elif args.format == "markdown" or args.output:
        text = render_markdown(sections, header=header)
    else:
        text = ""
        render_rich(sections, header=header)
    if text:
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    if args.plot:
        try:
            for written in write_plot(sections, args.plot, target_ms=args.target_ms):
                print(f"wrote {written}", file=sys.stderr)
        except ConfigurationError as exc:
            print(f"llmvoice.benchmark: {exc}", file=sys.stderr)
            return 2
    return 0
