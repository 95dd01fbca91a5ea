"""Checks every session store must pass, shared by the SQLite and Redis tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

from llmvoice import functional as fn
from llmvoice.errors import StoreConflictError
from llmvoice.state import State
from llmvoice.store import SessionStore


def make_state(session_id: str = "call-1", turns: int = 2) -> State:
    """A session of ``turns`` user/assistant exchanges."""
    state = fn.new_state("You are Ava.", session_id=session_id)
    for i in range(turns):
        state = fn.append_messages(
            state, [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        )
    return state


def kill_mid_save(store_code: str) -> None:
    """Run a writer (``store_code`` builds ``store``) saving in a loop, and SIGKILL it mid-loop."""
    script = textwrap.dedent(
        """
        from llmvoice import functional as fn
        STORE
        state = fn.new_state("S", session_id="crash")
        version = None
        i = 0
        while True:
            state = fn.append_messages(state, [{"role": "user", "content": "x" * 5000 + str(i)},
                                               {"role": "assistant", "content": "y" * 5000}])
            version = store.save(state, expected_version=version)
            i += 1
            if i == 3:
                print("ready", flush=True)
        """
    ).replace("STORE", store_code)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


def race(make_store: Callable[[], SessionStore], writers: int = 8) -> tuple[list[int], int]:
    """``writers`` threads save over version 1 at once; the versions won and the conflicts."""
    wins: list[int] = []
    conflicts: list[int] = []

    def write(n: int) -> None:
        try:
            wins.append(make_store().save(make_state(turns=2 + n), expected_version=1))
        except StoreConflictError:
            conflicts.append(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins, len(conflicts)
