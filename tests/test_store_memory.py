"""Cross-session memory: rolling per (user, skill), isolated, bounded, recalled once in the static prefix."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from llmvoice import PromptManager
from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.errors import StoreError
from llmvoice.store import RECALL_HEADING, SQLiteStore, recall_prompt, remember, remember_session, trim_memory
from llmvoice.tokens import EstimateCounter

SYSTEM = "You are Ava, the voice agent of Northwind."


def test_memory_rolls_per_user_and_skill(tmp_path: Path) -> None:
    """remember() appends to the (user, skill) memory; other users and skills are untouched."""
    store = SQLiteStore(tmp_path / "m.db")
    remember(store, "user-1", "support", "Order NW-1 was late.")
    remember(store, "user-1", "support", "Prefers calls before 11 am.")
    remember(store, "user-2", "support", "Asked about tents.")
    assert (
        store.load_memory("user-1", "support"),
        store.load_memory("user-2", "support"),
        store.load_memory("user-1", "sales"),
    ) == ("Order NW-1 was late. Prefers calls before 11 am.", "Asked about tents.", None)


def test_the_size_limit_keeps_the_newest_sentences() -> None:
    """Past the limit the oldest whole sentences go first; a single long sentence is cut hard."""
    assert trim_memory("One two. Three four. Five six.", 21) == "Three four. Five six."
    assert trim_memory("One two. Three four. Five six.", 20) == "Five six."
    assert trim_memory("x" * 50, 10) == "x" * 10


def test_remember_respects_the_limit(tmp_path: Path) -> None:
    """The stored memory never exceeds the limit."""
    store = SQLiteStore(tmp_path / "m.db")
    for n in range(50):
        text = remember(store, "u1", "support", f"Call {n} went fine.", limit=100)
    assert len(text) <= 100 and text.endswith("Call 49 went fine.")


@pytest.mark.parametrize(("user", "skill"), [("../u", "support"), ("u1", "a/b"), ("u 1", "s"), ("u1", "*")])
def test_hostile_user_and_skill_ids_are_refused(tmp_path: Path, user: str, skill: str) -> None:
    """User ids and skills are validated like session ids."""
    store = SQLiteStore(tmp_path / "m.db")
    with pytest.raises(StoreError, match=r"invalid (user id|skill)"):
        remember(store, user, skill, "x")


def test_recall_block_is_in_the_static_prefix_once_and_stays_byte_stable(tmp_path: Path) -> None:
    """The next session's system prompt carries the recall block once; its requests keep it in the cached prefix."""
    store = SQLiteStore(tmp_path / "m.db")
    remember(store, "u1", "support", "Order NW-39416 was delayed.")
    manager = PromptManager(
        recall_prompt(SYSTEM, store.load_memory("u1", "support")),
        adapter=OpenAIAdapter(counter=EstimateCounter()),
        session_id="next-call",
    )
    prefixes = []
    for turn in range(4):
        manager.append({"role": "user", "content": f"question {turn}"})
        messages = manager.build_messages(dynamic_context=f"context {turn}")
        stable = messages[: messages.index({"role": "system", "content": f"context {turn}"})]
        prefixes.append(json.dumps(stable))
        manager.append({"role": "assistant", "content": f"answer {turn}"})
    system = manager.build_messages()[0]["content"]
    assert (system.count(RECALL_HEADING), system.endswith("Order NW-39416 was delayed.")) == (1, True)
    assert all(later[:-1].startswith(earlier[:-1]) for earlier, later in itertools.pairwise(prefixes))


def test_no_memory_leaves_the_prompt_unchanged() -> None:
    """Without memory the system prompt is exactly the base one."""
    assert (recall_prompt(SYSTEM, None), recall_prompt(SYSTEM, "  "), recall_prompt("", "x")) == (
        SYSTEM,
        SYSTEM,
        f"{RECALL_HEADING}\nx",
    )


def test_remember_session_keeps_the_newest_summary_and_the_closing(tmp_path: Path) -> None:
    """At session end the newest summary block and the closing line go to the user's memory."""
    store = SQLiteStore(tmp_path / "m.db")
    state = fn.append_messages(
        fn.new_state("S", session_id="c1"),
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    )
    state = fn.rebase(state, 2, [fn.summary_message("Caller asked about order NW-1.", [0, 1])])
    text = remember_session(store, "u1", "support", state, closing="Call ended politely.")
    empty = remember_session(store, "u2", "support", fn.new_state("S"))
    assert (text, empty, store.load_memory("u2", "support")) == (
        "Caller asked about order NW-1. Call ended politely.",
        None,
        None,
    )
