"""Per-turn overhead of the assembler: append(user) + build_request + append(assistant).

For each history size the script builds a session of that many messages (60 random words each,
a ~1,000-token system prompt, agent_cycle transitions, a dynamic context), runs one untimed turn,
then times the next ``--turns`` turns of that running session (so the history stays within
n..n+2·turns). That is repeated on ``--sessions`` fresh sessions and the median turn is printed.
With llmbuffer installed, the same turn through llmbuffer runs in the same process and its
ratio is printed.

    python benchmark/overhead.py [--sessions 40] [--turns 10] [--sizes 50 200 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from llmvoice import AnthropicAdapter, OpenAIAdapter, PromptManager
from llmvoice.tokens import EstimateCounter

WORDS = [
    "order",
    "delivery",
    "refund",
    "account",
    "password",
    "address",
    "invoice",
    "plan",
    "upgrade",
    "cancel",
    "schedule",
    "appointment",
    "doctor",
    "table",
    "booking",
    "flight",
    "seat",
    "baggage",
    "weather",
    "balance",
    "transfer",
    "card",
    "limit",
    "charge",
    "dispute",
    "store",
    "hours",
    "return",
    "exchange",
    "size",
    "color",
    "price",
    "discount",
    "coupon",
]


def sentence(rng: random.Random, words: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


SYSTEM = " ".join(f"Rule {i}: be concise, polite and accurate about {w}." for i, w in enumerate(WORDS * 3))[:5200]


def history(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": sentence(rng)} for i in range(n)]


def time_turns(setup: Callable[[], Callable[[], None]], sessions: int, turns: int) -> float:
    """Median seconds of one turn over ``turns`` consecutive turns of ``sessions`` fresh sessions."""
    samples: list[float] = []
    for _ in range(sessions):
        turn = setup()
        turn()
        for _ in range(turns):
            gc.disable()
            start = time.perf_counter()
            turn()
            samples.append(time.perf_counter() - start)
            gc.enable()
    return statistics.median(samples)


def llmvoice_setup(n: int, adapter_factory: Callable[[], Any], report: bool = False) -> Callable[[], None]:
    msgs = history(n, n)
    adapter = adapter_factory()
    manager = PromptManager(SYSTEM, adapter=adapter, transition_mode="agent_cycle")
    manager.append_many(msgs)
    manager.build_request("context v1")
    if report:
        manager.cache_prefix("context v1")
    user = {"role": "user", "content": "Where is my order number 12345 right now?"}
    reply = {"role": "assistant", "content": "It left the warehouse this morning."}

    def turn() -> None:
        manager.append(user)
        manager.build_request("context v1")
        if report:
            manager.cache_prefix("context v1")
        manager.append(reply)

    return turn


def llmbuffer_setup(n: int) -> Callable[[], None]:
    import llmbuffer

    msgs = history(n, n)
    manager = llmbuffer.PromptManager(static_system_prompt=SYSTEM, transition_mode="agent_cycle")
    manager.append_many(msgs)
    manager.build_messages(dynamic_system_prompt="context v1")
    user = {"role": "user", "content": "Where is my order number 12345 right now?"}
    reply = {"role": "assistant", "content": "It left the warehouse this morning."}

    def turn() -> None:
        manager.append(user)
        manager.build_messages(dynamic_system_prompt="context v1")
        manager.append(reply)

    return turn


def floor_setup(n: int) -> Callable[[], None]:
    msgs = history(n, n)
    system = {"role": "system", "content": SYSTEM}
    dyn = {"role": "system", "content": "context v1"}
    user = {"role": "user", "content": "Where is my order?"}

    def turn() -> None:
        _ = [system, *msgs, dyn, user]

    return turn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    counter = EstimateCounter(4.0)
    rows: dict[str, Callable[[int], Callable[[], None]]] = {
        "llmvoice OpenAIAdapter": lambda n: llmvoice_setup(n, lambda: OpenAIAdapter("gpt-4o", counter=counter)),
        "llmvoice AnthropicAdapter": lambda n: llmvoice_setup(
            n, lambda: AnthropicAdapter("claude-sonnet-4-6", counter=counter)
        ),
        "llmvoice OpenAIAdapter + cache_prefix report (tiktoken o200k)": lambda n: llmvoice_setup(
            n, lambda: OpenAIAdapter("gpt-4o"), report=True
        ),
        "reference floor: shallow list build": floor_setup,
    }
    try:
        import llmbuffer  # noqa: F401

        rows["llmbuffer 0.3.0 PromptManager (agent_cycle)"] = llmbuffer_setup
    except ImportError:
        print("llmbuffer is not installed: `pip install llmbuffer==0.3.0` to compare", file=sys.stderr)

    results: dict[str, dict[int, float]] = {name: {} for name in rows}
    for name, setup in rows.items():
        for n in args.sizes:
            results[name][n] = time_turns(lambda setup=setup, n=n: setup(n), args.sessions, args.turns)

    def fmt(seconds: float) -> str:
        us = seconds * 1e6
        return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} µs"

    sizes = args.sizes
    print(
        f"Per-turn overhead: append(user) + build_request + append(assistant), median of "
        f"{args.sessions} sessions × {args.turns} turns"
    )
    print()
    header = "| operation | " + " | ".join(f"n={n}" for n in sizes) + f" | growth {sizes[0]}→{sizes[-1]} |"
    print(header)
    print("|---|" + "---:|" * (len(sizes) + 1))
    for name, by_n in results.items():
        growth = by_n[sizes[-1]] / by_n[sizes[0]]
        print(f"| {name} | " + " | ".join(fmt(by_n[n]) for n in sizes) + f" | {growth:.2f}× |")
    base = "llmvoice OpenAIAdapter"
    other = "llmbuffer 0.3.0 PromptManager (agent_cycle)"
    if other in results:
        print()
        ratios = ", ".join(f"n={n}: {results[other][n] / results[base][n]:.1f}×" for n in sizes)
        print(f"llmbuffer ÷ llmvoice (same turn, same process): {ratios}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"sessions": args.sessions, "turns": args.turns, "median_seconds": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
