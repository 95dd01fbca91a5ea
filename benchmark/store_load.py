"""Load test of the session stores: concurrent sessions saving every turn, zero lost updates.

    python benchmark/store_load.py                       # SQLite in a temporary file
    python benchmark/store_load.py --redis redis://127.0.0.1:6379/0

Each of ``--workers`` threads plays its share of ``--sessions`` sessions for ``--turns`` turns:
load, append a user and an assistant message, save with the loaded version. In the contended
run two workers share every session and retry on a conflict (load again, apply again). At the
end every session must hold exactly the messages appended to it: a lost update would show as a
missing pair. Prints saves per second, the p50/p95 save latency and the conflicts retried.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from llmvoice import functional as fn
from llmvoice.errors import StoreConflictError
from llmvoice.store import RedisStore, SessionStore, SQLiteStore


def play(make: Callable[[], SessionStore], sessions: int, turns: int, workers: int, shared: bool) -> dict[str, float]:
    """Run the load; returns the figures (and raises if an update was lost)."""
    latencies: list[float] = []
    conflicts = [0]
    lock = threading.Lock()
    ids = [f"load-{n}" for n in range(sessions)]

    def worker(index: int) -> None:
        store = make()
        mine = ids if shared else ids[index::workers]
        for turn in range(turns):
            for session_id in mine:
                while True:
                    stored = store.load(session_id)
                    state = stored.state if stored else fn.new_state("You are Ava.", session_id=session_id)
                    state = fn.append_messages(
                        state,
                        [
                            {"role": "user", "content": f"w{index} t{turn} question " + "x" * 200},
                            {"role": "assistant", "content": "answer " + "y" * 300},
                        ],
                    )
                    started = time.perf_counter()
                    try:
                        store.save(state, expected_version=stored.version if stored else None)
                    except StoreConflictError:
                        with lock:
                            conflicts[0] += 1
                        continue
                    with lock:
                        latencies.append(time.perf_counter() - started)
                    break
        store.close()

    count = 2 if shared else workers
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    check = make()
    expected = 2 * turns * (2 if shared else 1)
    lost = 0
    for session_id in ids:
        stored = check.load(session_id)
        held = 0 if stored is None else len(stored.state.committed) + len(stored.state.recent)
        lost += expected - held
    check.close()
    if lost:
        raise SystemExit(f"LOST UPDATES: {lost // 2} turns missing")
    ordered = sorted(latencies)
    return {
        "saves": len(latencies),
        "saves_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "conflicts": conflicts[0],
        "lost": lost // 2,
    }


def main() -> None:
    """Run the load against SQLite and, with ``--redis``, Redis; print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--redis", help="a redis:// URL (its database is flushed first)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, Callable[[], SessionStore]]] = []
        for shared in (False, True):
            path = Path(tmp) / f"load-{shared}.db"
            targets.append((f"SQLite{' (2 writers per session)' if shared else ''}", lambda p=path: SQLiteStore(p)))
        if args.redis:
            import redis

            redis.Redis.from_url(args.redis).flushdb()
            targets.append(("Redis", lambda: RedisStore(args.redis, prefix="load:")))
            targets.append(("Redis (2 writers per session)", lambda: RedisStore(args.redis, prefix="load2:")))
        for label, make in targets:
            shared = "2 writers" in label
            figures = play(make, args.sessions, args.turns, args.workers, shared)
            rows.append((label, figures))
    print(f"{args.sessions} sessions x {args.turns} turns, {args.workers} worker threads (contended runs: 2)\n")
    print("| store | saves | saves/s | p50 save ms | p95 save ms | conflicts retried | lost updates |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, f in rows:
        print(
            f"| {label} | {f['saves']:,.0f} | {f['saves_per_s']:,.0f} | {f['p50_ms']:.2f} | {f['p95_ms']:.2f} | "
            f"{f['conflicts']:,.0f} | {f['lost']:.0f} |"
        )


if __name__ == "__main__":
    main()
