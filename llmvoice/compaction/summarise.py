"""The summarise strategy: an LLM summary of the cut span, written in the background.

The summary request is the conversation exactly as the provider has cached it, with the
instruction appended at its tail (:func:`summary_request`), so the provider reads the prefix
from its cache and only prefills the instruction: the summary is cheap and quick. It runs in the
background, never while a caller waits for a first token:

* with a running event loop, as a task (a synchronous callable runs in a worker thread);
* without one, in a worker thread of its own;
* with ``background=False``, inline, when :meth:`SummariseStrategy.compact` is called (for
  scripts, tests and the benchmark's virtual clock; the controller calls it after the turn).

One summary runs at a time. A summary that fails, comes back empty or takes longer than
``timeout_s`` leaves the history as it is, and the next attempt waits ``backoff_s``, doubling
after each failure in a row up to ``max_backoff_s``. A summary that arrives for a span that is
no longer the head of the history (a rollback or another cut happened meanwhile) is dropped.

Summaries are incremental: the summaries at the head of a cut span (written by earlier cuts)
are carried over verbatim and only the messages after them are summarised, so early details are
not worn away by summarising the same text again and again. When the carried summaries would
exceed ``max_summary_tokens``, the whole span, summaries included, is summarised into one.
Every summary records the ids of every message it stands for.

Use it with any client::

    async def summarize(job: SummaryJob) -> str:
        response = await client.chat.completions.create(**job.request)
        return job.text_of(response)

    controller = TTFTController(manager, strategy=SummariseStrategy(summarize))
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from llmvoice import functional as fn
from llmvoice.compaction.base import CompactionInput, Outcome, Replace, Skip, Strategy, Wait, covered_ids
from llmvoice.errors import ConfigurationError
from llmvoice.messages import Message

if TYPE_CHECKING:
    from llmvoice.adapters.base import ProviderAdapter
    from llmvoice.state import State

__all__ = ["DEFAULT_INSTRUCTION", "SummariseStrategy", "SummaryJob", "summary_request"]

_log = logging.getLogger("llmvoice.compaction")

#: The instruction appended after the cached conversation; ``{scope}`` says which part to summarise.
DEFAULT_INSTRUCTION: Final[str] = (
    "Summarise {scope} for your own later reference, in plain sentences: keep every name, number, "
    "date, order or booking reference, preference, decision and open question exactly as stated; "
    "drop greetings and small talk. Reply with the summary only."
)
_QUOTE_CHARS: Final[int] = 60
#: The smallest summary asked for, however tight the budget.
_MIN_SUMMARY_TOKENS: Final[int] = 32


def scope_of(state: State, start: int, cut: int) -> str:
    """Words for ``committed[start:cut]``, the part of the conversation a summary covers."""
    committed = state.committed
    scope = "the conversation above"
    if start > 0:
        scope += " after the earlier summaries at its start"
    if cut < len(committed) or state.recent:
        following = committed[cut] if cut < len(committed) else state.recent[0]
        text = " ".join(following.text.split())
        if text:
            quoted = text[:_QUOTE_CHARS] + ("..." if len(text) > _QUOTE_CHARS else "")
            scope += f', up to (not including) the {following.role} message that starts "{quoted}"'
    return scope


@dataclass(frozen=True, slots=True)
class SummaryJob:
    """One summary to write.

    Attributes:
        request: the provider request's keyword arguments: the cached conversation, the
            instruction at its tail, ``max_tokens``. Send it with your client as is.
        span: the blocks the new summary stands for, oldest first (earlier summaries carried over
            verbatim are not in it; when summaries are merged, they are).
        covers: the ids of every message the summary stands for.
        adapter: the session's adapter (:meth:`text_of` reads a response with it).
    """

    request: dict[str, Any]
    span: tuple[Message, ...]
    covers: tuple[int, ...]
    adapter: ProviderAdapter

    def text_of(self, response: Any) -> str:
        """The text of a provider response (an SDK object or its dict)."""
        message = self.adapter.parse_message(response)
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return ""


#: ``summarize(job)`` returns the summary text (or a provider response), or an awaitable of it.
SummaryFn = Callable[[SummaryJob], Any]


def summary_request(state: State, adapter: ProviderAdapter, instruction: str, max_tokens: int) -> dict[str, Any]:
    """The request that summarises ``state``: its conversation as cached, ``instruction`` at the tail.

    Raises:
        PendingToolCallsError: tool calls of the state still wait for results.
    """
    if state.open_tool_calls:
        from llmvoice.errors import PendingToolCallsError  # noqa: PLC0415

        raise PendingToolCallsError(
            f"cannot ask for a summary while tool calls {list(state.open_tool_calls)} wait for results",
            call_ids=state.open_tool_calls,
        )
    request = dict(fn.build_request(state, adapter, None).payload)
    request["messages"] = [*request["messages"], adapter.format_message(Message("user", instruction))]
    request["max_tokens"] = max_tokens
    return request


@dataclass(slots=True)
class _Run:
    key: tuple[str, int, tuple[int, ...]]
    deadline: float
    token: object


class SummariseStrategy(Strategy):
    """Replace the cut span with an LLM summary written in the background.

    Args:
        summarize: ``summarize(job)`` sends ``job.request`` and returns the summary text (or the
            provider's response, read with ``job.text_of``); sync or async.
        max_tokens: the summary's ``max_tokens`` (also what the planner reserves for it).
        instruction: what the request asks for, appended after the conversation.
        timeout_s: a summary not back after this long is given up (counted as a failure).
        backoff_s: the wait after the first failure; it doubles after each failure in a row.
        max_backoff_s: the longest wait between attempts.
        background: run the summary in the background (``False``: inline, in :meth:`compact`,
            which then blocks for the summary; an async ``summarize`` inside a running event
            loop still runs as a task).
        fallback: the strategy used while a summary cannot be had (failure, back-off); ``None``
            keeps the history as it is.
        max_summary_tokens: carried-over summaries beyond this many tokens are merged into one
            (default: 4 x ``max_tokens``).
    """

    name: ClassVar[str] = "summarise"

    def __init__(
        self,
        summarize: SummaryFn,
        *,
        max_tokens: int = 300,
        instruction: str = DEFAULT_INSTRUCTION,
        timeout_s: float = 20.0,
        backoff_s: float = 5.0,
        max_backoff_s: float = 300.0,
        background: bool = True,
        fallback: Strategy | None = None,
        max_summary_tokens: int | None = None,
    ) -> None:
        if not callable(summarize):
            raise ConfigurationError(f"summarize must be callable, not {type(summarize).__name__}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be a positive integer, not {max_tokens!r}")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ConfigurationError("instruction must be a non-empty string")
        for label, value in (("timeout_s", timeout_s), ("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not value >= 0
                or not math.isfinite(value)
            ):
                raise ConfigurationError(f"{label} must be a finite number >= 0, not {value!r}")
        if fallback is not None and not isinstance(fallback, Strategy):
            raise ConfigurationError(f"fallback must be a Strategy, not {type(fallback).__name__}")
        self.summarize = summarize
        self.replacement_tokens = max_tokens
        self.instruction = instruction
        self.timeout_s = float(timeout_s)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.background = background
        self.fallback = fallback
        self.max_tokens = max_tokens
        self.max_summary_tokens = 4 * max_tokens if max_summary_tokens is None else max_summary_tokens
        if (
            isinstance(self.max_summary_tokens, bool)
            or not isinstance(self.max_summary_tokens, int)
            or self.max_summary_tokens < max_tokens
        ):
            raise ConfigurationError(
                f"max_summary_tokens must be an integer >= max_tokens ({max_tokens}), not {max_summary_tokens!r}"
            )
        self._lock = threading.Lock()
        self._running: _Run | None = None
        self._done: tuple[tuple[str, int, tuple[int, ...]], str] | None = None
        self._failed: str | None = None  # a failure reported by the worker, not yet counted
        self._failures = 0
        self._retry_at = -math.inf
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: How many summaries were started, written, failed (timeouts included), timed out, dropped as stale.
        self.counts: dict[str, int] = {"started": 0, "written": 0, "failed": 0, "timed_out": 0, "stale": 0}

    # -- the decision ---------------------------------------------------------------------------

    def compact(self, data: CompactionInput) -> Outcome:
        """The summary of ``data.span`` when it is written; otherwise start it, or wait for it."""
        return self._decide(data, start=True)

    def observe(self, state: State, adapter: ProviderAdapter) -> None:
        """Reserve room for the summaries a cut would carry over (the planner reads it)."""
        carried = sum(adapter.committed_tokens(state)[: _leading_summaries(state.committed)])
        self.replacement_tokens = self.max_tokens + (
            carried if carried + self.max_tokens <= self.max_summary_tokens else 0
        )

    def _split(self, data: CompactionInput) -> tuple[int, int]:
        """How many summaries at the head of the span are carried over verbatim, and the new summary's size.

        Carried summaries and the new one must fit ``max_summary_tokens`` and the cut's budget;
        otherwise every summary is merged into one of at most the budget.
        """
        span = data.span
        carried = min(_leading_summaries(span), len(span))
        limit = min(self.max_summary_tokens, data.budget_tokens)
        if 0 < carried < len(span):
            tokens = sum(data.adapter.count_message_tokens(data.adapter.format_message(m)) for m in span[:carried])
            if tokens + self.max_tokens <= limit:
                return carried, self.max_tokens
        size = min(self.max_tokens, data.budget_tokens)
        return 0, max(size, _MIN_SUMMARY_TOKENS)

    def _decide(self, data: CompactionInput, *, start: bool) -> Outcome:
        carried, size = self._split(data)
        kept = tuple(data.span[:carried])
        span = tuple(data.span[carried:])
        key = (data.state.session_id, data.state.epoch, tuple(m.id for m in data.span))
        covers = covered_ids(span)
        with self._lock:
            if self._failed is not None:
                reason, self._failed = self._failed, None
                self._count_failure(data.now, reason)
            done, self._done = self._done, None
            if done is not None:
                if done[0] == key:
                    self._failures = 0
                    self.counts["written"] += 1
                    block = fn.summary_message(done[1], covers)
                    note = f"summarise: {len(span)} blocks summarised" + (
                        f", {carried} summaries kept" if carried else ""
                    )
                    return Replace((*kept, block), note)
                self.counts["stale"] += 1
                _log.info("summary dropped: the history changed while it was written")
            running = self._running
            if running is not None:
                if data.now <= running.deadline:
                    return Wait(f"summarise: a summary of {len(running.key[2])} blocks is being written")
                self._running = None
                self.counts["timed_out"] += 1
                self._count_failure(data.now, f"no summary after {self.timeout_s:g} s")
            if data.now < self._retry_at:
                wait = self._retry_at - data.now
                return self._instead(data, f"summarise: backing off {wait:.1f} s after {self._failures} failures")
            if not start:
                return Skip("summarise: no summary was written")
            if data.state.open_tool_calls:
                return Skip("summarise: tool calls wait for their results")
            instruction = self.instruction.replace("{scope}", scope_of(data.state, carried, data.cut))
            request = summary_request(data.state, data.adapter, instruction, size)
            job = SummaryJob(request, span, covers, data.adapter)
            token = object()
            self._running = _Run(key, data.now + self.timeout_s, token)
            self.counts["started"] += 1
        if not self.background and not (_is_async(self.summarize) and _loop_running()):
            self._run_inline(job, token)
            return self._decide(data, start=False)
        self._start(job, token)  # an async callable inside a running loop cannot run inline
        return Wait(f"summarise: writing a summary of {len(span)} blocks")

    def _instead(self, data: CompactionInput, reason: str) -> Outcome:
        if self.fallback is None:
            return Skip(reason)
        outcome = self.fallback.compact(data)
        if isinstance(outcome, Replace):
            return Replace(outcome.blocks, f"{reason}; {outcome.note or self.fallback.name}")
        return outcome

    def _count_failure(self, now: float, reason: str) -> None:
        self._failures += 1
        self.counts["failed"] += 1
        delay = min(self.backoff_s * 2 ** (self._failures - 1), self.max_backoff_s)
        self._retry_at = now + delay
        _log.warning("summary failed (%s); the history stays as it is, next attempt in %.1f s", reason, delay)

    # -- the background work --------------------------------------------------------------------

    def _deliver(self, token: object, text: str | None, error: str | None) -> None:
        with self._lock:
            running = self._running
            if running is None or running.token is not token:
                return  # given up on (timed out) or superseded: a late result is dropped
            self._running = None
            if text is not None and text.strip():
                self._done = (running.key, text.strip())
            else:
                self._failed = error or "the summary came back empty"

    def _text(self, job: SummaryJob, result: Any) -> str:
        return result if isinstance(result, str) else job.text_of(result)

    def _run_inline(self, job: SummaryJob, token: object) -> None:
        try:
            result = self.summarize(job)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result, self.timeout_s))
            self._deliver(token, self._text(job, result), None)
        except Exception as exc:
            self._deliver(token, None, f"{type(exc).__name__}: {exc}")

    def _start(self, job: SummaryJob, token: object) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task = loop.create_task(self._run_task(job, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmvoice-summary")
        self._executor.submit(self._run_inline, job, token)

    async def _run_task(self, job: SummaryJob, token: object) -> None:
        try:
            if _is_async(self.summarize):
                result = await asyncio.wait_for(self.summarize(job), self.timeout_s or None)
            else:
                result = await asyncio.wait_for(asyncio.to_thread(self.summarize, job), self.timeout_s or None)
                if inspect.isawaitable(result):
                    result = await asyncio.wait_for(result, self.timeout_s or None)
            self._deliver(token, self._text(job, result), None)
        except asyncio.TimeoutError:
            self._deliver(token, None, f"no summary after {self.timeout_s:g} s")
        except Exception as exc:
            self._deliver(token, None, f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Stop the worker thread and cancel a summary task still running."""
        for task in list(self._tasks):
            task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _leading_summaries(blocks: Sequence[Message]) -> int:
    count = 0
    for message in blocks:
        if message.kind != "summary":
            break
        count += 1
    return count


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _is_async(function: Callable[..., Any]) -> bool:
    call = getattr(function, "__call__", None)  # noqa: B004  (an object with an async __call__)
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


async def _await(result: Awaitable[Any], timeout_s: float) -> Any:
    return await asyncio.wait_for(result, timeout_s or None)
