"""The TTFT controller: measure every turn, model the cache, cut the history in rare planned steps.

:class:`TTFTController` wraps a :class:`~llmvoice.PromptManager`. Per turn it builds the request,
measures the time to first token, reads the cached tokens through the adapter, refits its latency
model and asks the :mod:`~llmvoice.control.planner` whether the next turn still meets the target.
When it does not, it cuts the head of the history in one large step (a *rebase*: the cut blocks go
to the archive, and the :mod:`~llmvoice.compaction` strategy writes what stands for them), pre-warms the new prefix in
the background, and switches to it at the next turn boundary. After a cut it checks the turns that
follow against the model; if the cut made them slower than predicted, it rolls back to the state
before the cut plus every message appended since.

Async use, one turn::

    controller = TTFTController(manager, target_ms=800, send_prewarm=warm)
    async with controller.turn({"role": "user", "content": text}, dynamic_context=rag) as turn:
        stream = await client.chat.completions.create(**turn.request)
        async for chunk in turn.observe(stream):
            speak(chunk)

The synchronous core (:meth:`TTFTController.begin_turn`, :meth:`~TTFTController.record`,
:meth:`~TTFTController.end_turn`) does no I/O: it returns the pre-warm requests for the caller to
send, which is how the benchmark drives it on virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Final

from llmvoice import functional as fn
from llmvoice.adapters.base import Usage
from llmvoice.compaction.base import CompactionInput, Replace, Strategy, Wait
from llmvoice.compaction.window import WindowStrategy
from llmvoice.control.measure import Measurement, StreamObserver, warn_buffered_once
from llmvoice.control.model import PRIORS, LatencyModel, LatencyPrior
from llmvoice.control.planner import Decision, PlanInput, plan, predict_s, verify
from llmvoice.control.stats import Hysteresis, RollingStats, Sample
from llmvoice.errors import ConfigurationError, LLMVoiceError
from llmvoice.manager import PromptManager
from llmvoice.messages import Message
from llmvoice.state import State

__all__ = ["ControllerStats", "TTFTController", "Turn", "TurnRecord", "truncate_tokens"]

_log = logging.getLogger("llmvoice.control")

#: Turns after a cut during which the controller compares observed and predicted TTFT.
_VERIFY_TURNS: Final[int] = 3
#: Turns a cut strategy is not used again after it was rolled back.
_COOLDOWN_TURNS: Final[int] = 40
#: The P95 spread assumed before enough turns were measured.
_PRIOR_SPREAD: Final[float] = 1.35
_MIN_SPREAD_SAMPLES: Final[int] = 12
#: The spread is this percentile of observed ÷ predicted TTFT: above P95, so that the P95 of
#: every 20-turn window, not only of the whole call, stays within the target.
_SPREAD_PERCENTILE: Final[float] = 97.5
#: Prior tokens a turn adds before any were measured.
_PRIOR_TURN_TOKENS: Final[float] = 150.0
#: Requests between refits of the latency model (a fit takes a few milliseconds; it runs after
#: the turn, never while a first token is awaited).
_REFIT_EVERY: Final[int] = 8
#: Observations the latency model keeps.
_MODEL_WINDOW: Final[int] = 50


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One finished turn, as :meth:`TTFTController.history` and ``verbose`` report it.

    Attributes:
        turn: the turn number, from 0.
        ttft_s: time to first token of the turn (tool rounds included), from when the turn was
            handed over.
        input_tokens: prompt tokens of the turn's requests.
        cached_tokens: of which read from the cache (reported, or estimated when not reported).
        estimated: the cached tokens were estimated (the provider reported none).
        censored: a request failed, timed out or was cancelled before its first token.
        action: what the controller decided after the turn (``keep``, ``rebase``, ``rollback``).
        reason: why.
    """

    turn: int
    ttft_s: float
    input_tokens: int
    cached_tokens: int
    estimated: bool
    censored: bool
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class ControllerStats:
    """Figures over the rolling window and counters over the session.

    Attributes:
        p50_ms: median TTFT over the window.
        p95_ms: 95th percentile over the window.
        p99_ms: 99th percentile over the window.
        jitter_ms: standard deviation over the window.
        turns: turns measured in the session.
        compactions: cuts applied (rebases).
        rebases: rebases applied.
        rollbacks: rollbacks applied.
        prewarms: pre-warm requests handed out.
        cached_share: cached / input tokens over the window.
        context_tokens: prompt tokens of the last turn.
    """

    p50_ms: float
    p95_ms: float
    p99_ms: float
    jitter_ms: float
    turns: int
    compactions: int
    rebases: int
    rollbacks: int
    prewarms: int
    cached_share: float
    context_tokens: int


@dataclass(slots=True)
class _Pending:
    """A decided cut waiting for its pre-warm.

    ``state`` is the session rebased at planning time (what the pre-warm carries); ``base`` the
    state it was rebased from. When nothing was appended since, switching reuses ``state``, whose
    history the adapter has already formatted and counted.
    """

    cut: int
    replacement: tuple[Message, ...]
    decision: Decision
    warm: bool
    base: State
    state: State


@dataclass(slots=True)
class _Watch:
    """The turns after a cut, checked against the model."""

    before: State
    predicted: list[float]
    observed: list[float]
    turns_left: int


class TTFTController:
    """Keeps a voice agent's TTFT under a target while keeping as much of the call as that allows.

    Example::

        manager = PromptManager(SYSTEM, adapter=OpenAIAdapter("gpt-4o-mini"))
        controller = TTFTController(manager, target_ms=800)
        request = controller.begin_turn({"role": "user", "content": "Hi"})
        ...  # send it, time it
        controller.record(ttft_s=0.42, usage=manager.adapter.parse_usage(response))
        controller.append({"role": "assistant", "content": "Hello!"})
        for warm in controller.end_turn():
            ...  # send in the background, then controller.prewarmed()

    Args:
        manager: the session's prompt manager (its adapter formats, counts and reads usage).
        target_ms: the P95 TTFT target in milliseconds; ``None`` steers by the caps alone.
        clock: seconds, monotonic (``time.monotonic``); inject a fake one for tests.
        window: requests in the rolling statistics.
        min_turns_between_cuts: turns that must pass after a cut before the next one.
        min_dynamic_share: when even an empty history would miss the target, the dynamic context
            is trimmed (its head kept, at a word boundary) down to at most this share of its
            tokens; 1.0, the default, never trims it.
        retention: the share of the history the target allows that a cut keeps.
        headroom: plan for a predicted P95 of at most ``headroom x target``.
        prewarm: pre-warm a new prefix before switching to it (otherwise switch at once).
        strategy: what replaces a cut span (default :class:`~llmvoice.compaction.WindowStrategy`:
            nothing, the span is archived); see :mod:`llmvoice.compaction`. It is consulted after
            the turn, never while the caller waits for a first token; a strategy whose work runs
            in the background (a summary, embeddings) holds the cut until it is done.
        max_context_tokens: cut when the prompt would exceed this (with or without a target).
        max_messages: cut when the committed history nears this many blocks.
        target_context_tokens: the prompt size a cap-forced cut aims for.
        prior: the latency model's prior (default: by adapter name).
        send_prewarm: ``async send_prewarm(request)`` for :meth:`turn`: sends a pre-warm request
            with the caller's client (without it, the async path switches without pre-warming).
        timeout_s: in :meth:`turn`, give up on a first token after this many seconds.
        on_compression: called with the :class:`~llmvoice.control.planner.Decision` of each cut.
        on_budget_violation: called with the window P95 (ms) when it goes over the target.
        on_rollback: called with the reason of each rollback.
        verbose: log one line per turn on the ``llmvoice.control`` logger (INFO).
    """

    def __init__(
        self,
        manager: PromptManager,
        *,
        target_ms: float | None = 800.0,
        clock: Callable[[], float] = time.monotonic,
        window: int = 20,
        min_turns_between_cuts: int = 5,
        min_dynamic_share: float = 1.0,
        retention: float = 0.5,
        headroom: float = 0.92,
        prewarm: bool = True,
        strategy: Strategy | None = None,
        max_context_tokens: int | None = None,
        max_messages: int | None = None,
        target_context_tokens: int | None = None,
        prior: LatencyPrior | None = None,
        send_prewarm: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
        timeout_s: float | None = None,
        on_compression: Callable[[Decision], None] | None = None,
        on_budget_violation: Callable[[float], None] | None = None,
        on_rollback: Callable[[str], None] | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(manager, PromptManager):
            raise ConfigurationError(f"manager must be a PromptManager, not {type(manager).__name__}")
        if target_ms is not None and not target_ms > 0:
            raise ConfigurationError(f"target_ms must be positive, not {target_ms}")
        if target_ms is None and max_context_tokens is None and max_messages is None:
            raise ConfigurationError("give target_ms, max_context_tokens or max_messages: nothing to steer by")
        for label, value in (
            ("max_context_tokens", max_context_tokens),
            ("max_messages", max_messages),
            ("target_context_tokens", target_context_tokens),
        ):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigurationError(f"{label} must be a positive integer, not {value!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigurationError(f"timeout_s must be positive, not {timeout_s}")
        if strategy is not None and not isinstance(strategy, Strategy):
            raise ConfigurationError(f"strategy must be an llmvoice compaction Strategy, not {type(strategy).__name__}")
        if not isinstance(min_turns_between_cuts, int) or min_turns_between_cuts < 0:
            raise ConfigurationError(f"min_turns_between_cuts must be an integer >= 0, not {min_turns_between_cuts!r}")
        self.manager = manager
        self.target_ms = target_ms
        self.min_turns_between_cuts = min_turns_between_cuts
        self.min_dynamic_share = min_dynamic_share
        self._dynamic_limit: int | None = None
        self.clock = clock
        self.retention = retention
        self.headroom = headroom
        self.prewarm = prewarm
        self.strategy: Strategy = strategy if strategy is not None else WindowStrategy()
        self.max_context_tokens = max_context_tokens
        self.max_messages = max_messages
        self.target_context_tokens = target_context_tokens
        self.send_prewarm = send_prewarm
        self.timeout_s = timeout_s
        self.on_compression = on_compression
        self.on_budget_violation = on_budget_violation
        self.on_rollback = on_rollback
        self.verbose = verbose
        adapter = manager.adapter
        engine = "llamacpp" if getattr(adapter, "server", None) == "llamacpp" else adapter.name
        self._prior = prior or PRIORS.get(engine, PRIORS["default"])
        self._model = LatencyModel.from_prior(self._prior, window=_MODEL_WINDOW)
        self._coefficients = self._model.coefficients
        self._unfitted = 0
        self._stats = RollingStats(window)
        self._gate = Hysteresis(target_ms if target_ms is not None else 1e12)
        # Check the plan's inputs once, so a bad retention or headroom fails here, not mid-call.
        PlanInput(
            1.0,
            (0.0, 0.0, 0.0),
            1.0,
            0,
            (),
            (),
            retention=retention,
            headroom=headroom,
            min_dynamic_share=min_dynamic_share,
        )
        self._ratios: deque[float] = deque(maxlen=max(window * 3, 30))
        self._turn_tokens = _PRIOR_TURN_TOKENS
        self._history_at_end: int | None = None
        self._pending: _Pending | None = None
        self._awaiting: tuple[int, Decision] | None = None  # (epoch, cut decision) held by the strategy
        self._watch: _Watch | None = None
        self._cooldown = 0
        self._records: list[TurnRecord] = []
        self._counters = {"compactions": 0, "rebases": 0, "rollbacks": 0, "prewarms": 0}
        # The turn in progress.
        self._turn_open = False
        self._started = 0.0
        self._context: str | None = None
        self._ttft = 0.0
        self._input = 0
        self._cached = 0
        self._estimated = False
        self._censored = False
        self._predicted = 0.0
        # What the previous request carried, to estimate cached tokens the provider does not report.
        self._sent_prefix: tuple[int, int] | None = None  # (epoch, prefix tokens)
        self._request_mix: tuple[int, int] = (0, 0)  # (prompt tokens, prefix tokens) of the last build
        self._ended_at: float | None = None  # when the last turn ended (for the gaps between turns)
        self._gaps: deque[float] = deque(maxlen=10)
        self._last_sent_at: float | None = None

    # -- the synchronous core -------------------------------------------------------------------

    def begin_turn(
        self,
        message: Mapping[str, Any] | Message | None = None,
        *,
        dynamic_context: str | None = None,
        started: float | None = None,
        stream: bool | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Start a turn: switch to a warm cut if one is ready, append ``message``, build the request.

        Args:
            message: the user's message (``None`` when it was appended already).
            dynamic_context: this turn's dynamic context.
            started: when the turn was handed over (default: now); TTFT counts from here.
            stream: passed to :meth:`~llmvoice.PromptManager.build_request`.
            **options: extra request keys.

        Returns:
            The request's keyword arguments for the provider's client.
        """
        self._started = self.clock() if started is None else started
        if self._ended_at is not None:
            self._gaps.append(max(self._started - self._ended_at, 0.0))
        self._switch_if_ready()
        if message is not None:
            self.manager.append(message)
        self._turn_open = True
        self._context = dynamic_context
        self._ttft = 0.0
        self._input = self._cached = 0
        self._estimated = self._censored = False
        self._predicted = 0.0
        return self._build(stream=stream, **options)

    def next_request(self, *, stream: bool | None = None, **options: Any) -> dict[str, Any]:
        """The next request of the turn (after a tool round's results were appended)."""
        if not self._turn_open:
            raise ConfigurationError("next_request() needs a turn in progress: call begin_turn() first")
        return self._build(stream=stream, **options)

    def _build(self, *, stream: bool | None, **options: Any) -> dict[str, Any]:
        if self._context is not None and self._dynamic_limit is not None:
            count = self.manager.adapter.counter.count_text
            self._context = truncate_tokens(self._context, self._dynamic_limit, count)
        request = self.manager.build_request(self._context, stream=stream, **options)
        state = self.manager.state
        prefix = self._prefix_tokens(state)
        self._request_mix = (prefix + self.manager.adapter.tail_tokens(state, self._context), prefix)
        return request

    def append(self, message: Mapping[str, Any] | Message | Any) -> None:
        """Append a message (the assistant's reply, a tool result) to the session."""
        self.manager.append(message)

    def record(
        self,
        *,
        ttft_s: float | None,
        usage: Usage | None = None,
        censored: bool = False,
        streamed: bool = True,
        sent_at: float | None = None,
    ) -> None:
        """Record one request of the current turn.

        Args:
            ttft_s: the request's time to first token (``None`` when no token came; then
                ``censored`` is implied and the time since the turn started is used).
            usage: the provider's usage, read through the adapter; ``None`` when not reported (the
                cached tokens are then estimated from what was sent before).
            censored: the request failed or timed out before its first token.
            streamed: ``False`` when ``ttft_s`` is the full latency of a non-streamed call.
            sent_at: when the request was sent (default: now), for the cache-expiry estimate.
        """
        if not self._turn_open:
            raise ConfigurationError("record() needs a turn in progress: call begin_turn() first")
        if ttft_s is None:
            censored = True
            ttft_s = max(self.clock() - self._started - self._ttft, 0.0)
        prompt_tokens, prefix_tokens = self._request_mix
        epoch = self.manager.state.epoch
        if usage is not None and usage.input_tokens is not None and usage.cached_tokens is not None:
            total, cached = usage.input_tokens, usage.cached_tokens
        else:
            total = usage.input_tokens if usage is not None and usage.input_tokens is not None else prompt_tokens
            cached = self._estimate_cached(epoch, prefix_tokens, total, sent_at)
            self._estimated = True
        cached = min(cached, total)
        predicted = predict_s(self._coefficients, total - cached, cached)
        if ttft_s > 0 and (not censored or ttft_s > predicted):
            self._model = self._model.observe(total - cached, cached, ttft_s, censored=censored)
            self._unfitted += 1
        if not censored and predicted > 0:
            self._ratios.append(ttft_s / predicted)
        self._stats = self._stats.add(
            Sample(
                ttft_s=ttft_s,
                input_tokens=total,
                cached_tokens=cached,
                censored=censored,
                streamed=streamed,
                turn=len(self._records),
            )
        )
        self._ttft += ttft_s
        self._predicted += predicted
        self._input += total
        self._cached += cached
        self._censored = self._censored or censored
        self._sent_prefix = (epoch, prefix_tokens)
        self._last_sent_at = self.clock() if sent_at is None else sent_at

    def _estimate_cached(self, epoch: int, prefix_tokens: int, total: int, sent_at: float | None) -> int:
        if self._sent_prefix is None or self._sent_prefix[0] != epoch:
            return 0
        ttl = self.manager.adapter.cache_ttl_s
        now = self.clock() if sent_at is None else sent_at
        if ttl is not None and self._last_sent_at is not None and now - self._last_sent_at > ttl:
            return 0
        cached = min(self._sent_prefix[1], prefix_tokens, total)
        return cached if cached >= self.manager.adapter.min_cacheable_tokens else 0

    def end_turn(self) -> list[dict[str, Any]]:
        """Finish the turn: update the statistics, verify the last cut, plan the next one.

        Returns:
            Pre-warm requests to send now, in the background (empty when none is needed). Call
            :meth:`prewarmed` once they were sent; the cut is switched to at the next turn.
        """
        if not self._turn_open:
            raise ConfigurationError("end_turn() needs a turn in progress: call begin_turn() first")
        self._turn_open = False
        self._ended_at = self.clock()
        turn = len(self._records)
        if self._unfitted >= _REFIT_EVERY:
            self._coefficients = self._model.coefficients
            self._unfitted = 0
        p95_ms = _percentile([s.ttft_s for s in self._stats.samples], 95.0) * 1000.0
        was_over = self._gate.over
        self._gate = self._gate.update(p95_ms)
        if self._gate.over and not was_over and self.on_budget_violation is not None:
            self.on_budget_violation(p95_ms)
        committed = self.manager.adapter.committed_tokens(self.manager.state)
        history = sum(committed)
        if self._history_at_end is not None and history > self._history_at_end:
            self._turn_tokens += 0.2 * ((history - self._history_at_end) - self._turn_tokens)
        self._history_at_end = history
        self._observe()
        action, reason = "keep", ""
        requests: list[dict[str, Any]] = []
        if self._verify_last_cut():
            action, reason = "rollback", self._rollback()
        elif self._pending is not None:
            reason = "keep: the planned cut waits for its pre-warm"
        elif self._awaiting is not None and self._awaiting[0] == self.manager.state.epoch:
            action, reason, requests = self._prepare_cut(self._awaiting[1])
        else:
            self._awaiting = None
            decision = self._plan(committed)
            reason = decision.reason
            blocked = self._prewarm_blocks(decision)
            if blocked is not None:
                reason = blocked
            elif decision.action == "rebase" and decision.cut is not None:
                action, reason, requests = self._prepare_cut(decision)
            elif decision.action == "trim_dynamic" and decision.dynamic_limit is not None:
                action = "trim_dynamic"
                self._dynamic_limit = decision.dynamic_limit
                if self.on_compression is not None:
                    self.on_compression(decision)
        self._cooldown = max(self._cooldown - 1, 0)
        record = TurnRecord(
            turn, self._ttft, self._input, self._cached, self._estimated, self._censored, action, reason
        )
        self._records.append(record)
        if self.verbose:
            _log.info(
                "turn %d: TTFT %.0f ms, %d tokens, %d cached%s, %s",
                turn,
                self._ttft * 1000,
                self._input,
                self._cached,
                " (estimated)" if self._estimated else "",
                reason or action,
            )
        return requests

    def prewarmed(self, ok: bool = True) -> None:
        """The pre-warm requests of the pending cut were sent (``ok``) or failed (the cut waits).

        Between turns the switch happens here, so the next turn does not pay for it; during a
        turn it waits for the next turn boundary.
        """
        if self._pending is not None and ok:
            self._pending.warm = True
            if not self._turn_open:
                self._switch_if_ready()

    def user_started_speaking(self) -> dict[str, Any] | None:
        """The caller started speaking: a pre-warm request when the cache is likely cold.

        Frameworks know when speech starts; calling this then lets a pre-warm run while the
        caller speaks, so the transcript arrives at a warm cache: at the start of the call, and
        after a pause longer than 90 % of the adapter's ``cache_ttl_s``.

        Returns:
            A pre-warm request to send in the background, or ``None`` when the cache is likely warm.
        """
        ttl = self.manager.adapter.cache_ttl_s
        if self._last_sent_at is not None and (ttl is None or self.clock() - self._last_sent_at <= 0.9 * ttl):
            return None
        state = self._pending.state if self._pending is not None else self.manager.state
        if self._pending is not None:
            self._pending.warm = True
        self._sent_prefix = (state.epoch, self._prefix_tokens(state))
        self._last_sent_at = self.clock()
        self._counters["prewarms"] += 1
        return self._prewarm_request(state)

    # -- planning -------------------------------------------------------------------------------

    def _spread(self) -> float:
        if len(self._ratios) < _MIN_SPREAD_SAMPLES:
            return _PRIOR_SPREAD
        return max(_percentile(self._ratios, _SPREAD_PERCENTILE), 1.0)

    def _plan(self, committed: Sequence[int]) -> Decision:
        state = self.manager.state
        adapter = self.manager.adapter
        boundaries = fn.turn_boundaries(state)
        data = PlanInput(
            target_s=(self.target_ms or 1e12) / 1000.0,
            coefficients=self._coefficients,
            spread=self._spread(),
            static_tokens=adapter.static_tokens(state),
            block_tokens=tuple(committed),
            boundaries=tuple(boundaries),
            dynamic_tokens=self._dynamic_tokens(),
            turn_tokens=self._turn_tokens,
            retention=self.retention,
            headroom=self.headroom,
            summary_tokens=self.strategy.replacement_tokens,
            max_context_tokens=self.max_context_tokens,
            max_messages=self.max_messages,
            target_context_tokens=self.target_context_tokens,
            # Right after a cut (or a rollback) only the hard caps may cut again.
            latency_control=self.target_ms is not None and self._cooldown == 0,
            min_dynamic_share=self.min_dynamic_share,
        )
        return plan(data)

    def _prewarm_blocks(self, decision: Decision) -> str | None:
        """Why a cut must wait on a server that runs one request at a time, or ``None``.

        There a pre-warm (a cold prefill of the new prefix) that outlasts the usual pause between
        turns holds up the next turn, so the cut is skipped.
        """
        if decision.action != "rebase" or not self.manager.adapter.serial or not self._gaps:
            return None
        prefill_s = decision.miss_s / max(self._spread(), 1.0)
        pause_s = _percentile(self._gaps, 50.0)
        if prefill_s <= pause_s:
            return None
        return (
            f"keep: a cut is due ({decision.reason}), but its pre-warm would take about {prefill_s:.1f} s and "
            f"turns arrive {pause_s:.1f} s apart on a server that runs one request at a time"
        )

    def _dynamic_tokens(self) -> int:
        if self._context is None:
            return 0
        prompt, prefix = self._request_mix
        return max(prompt - prefix, 0)

    def _observe(self) -> None:
        try:
            self.strategy.observe(self.manager.state, self.manager.adapter)
        except Exception as exc:  # background preparation must never break a turn
            _log.warning("%s strategy: observe failed (%s: %s)", self.strategy.name, type(exc).__name__, exc)

    def _prepare_cut(self, decision: Decision) -> tuple[str, str, list[dict[str, Any]]]:
        """Ask the strategy for the cut's replacement; rebase and pre-warm when it is ready."""
        assert decision.cut is not None
        state = self.manager.state
        strategy = self.strategy
        self._awaiting = None
        try:
            data = CompactionInput(state, decision.cut, self.manager.adapter, decision.summary_tokens, self.clock())
            outcome = strategy.compact(data)
        except Exception as exc:  # a broken strategy leaves the history as it is
            _log.warning("%s strategy failed (%s: %s); no cut", strategy.name, type(exc).__name__, exc)
            return "keep", f"keep: the {strategy.name} strategy failed ({type(exc).__name__})", []
        if isinstance(outcome, Wait):
            self._awaiting = (state.epoch, decision)
            return "keep", f"keep: a cut is due ({decision.reason}); {outcome.reason}", []
        if not isinstance(outcome, Replace):
            return "keep", f"keep: a cut is due ({decision.reason}); {outcome.reason}", []
        try:
            rebased = fn.rebase(state, decision.cut, outcome.blocks)
        except LLMVoiceError as exc:
            _log.warning("%s strategy: its replacement was refused (%s)", strategy.name, exc)
            return "keep", f"keep: the {strategy.name} replacement was refused ({exc})", []
        self._pending = _Pending(decision.cut, outcome.blocks, decision, not self.prewarm, state, rebased)
        if self.on_compression is not None:
            self.on_compression(decision)
        reason = f"{decision.reason}; {outcome.note}" if outcome.note else decision.reason
        if not self.prewarm:
            return "rebase", reason, []
        self._counters["prewarms"] += 1
        return "rebase", reason, [self._prewarm_request(rebased)]

    def _prewarm_request(self, state: State) -> dict[str, Any]:
        built = fn.build_request(state, self.manager.adapter, None)
        return self.manager.adapter.prewarm_request(built.payload)

    def _prefix_tokens(self, state: State) -> int:
        adapter = self.manager.adapter
        return adapter.static_tokens(state) + adapter.history_tokens(state)

    def _switch_if_ready(self) -> None:
        pending = self._pending
        if pending is None or not pending.warm:
            return
        self._pending = None
        before = self.manager.state
        if before is pending.base:
            self.manager.state = pending.state
        else:  # messages arrived since the plan: cut the current state the same way
            self.manager.rebase(pending.cut, pending.replacement)
        self._counters["compactions"] += 1
        self._counters["rebases"] += 1
        self._history_at_end = None
        self._cooldown = max(self._cooldown, self.min_turns_between_cuts)
        if self.prewarm:
            # The pre-warm carried exactly this prefix.
            self._sent_prefix = (self.manager.state.epoch, self._prefix_tokens(self.manager.state))
        self._watch = _Watch(before, [], [], _VERIFY_TURNS)

    def _verify_last_cut(self) -> bool:
        watch = self._watch
        if watch is None:
            return False
        watch.predicted.append(self._predicted)
        watch.observed.append(self._ttft)
        watch.turns_left -= 1
        if verify(watch.predicted, watch.observed):
            return True
        if watch.turns_left <= 0:
            self._watch = None
        return False

    def _rollback(self) -> str:
        watch = self._watch
        assert watch is not None
        self._watch = None
        self._pending = None
        self._awaiting = None
        observed = ", ".join(f"{o * 1000:.0f}" for o in watch.observed)
        predicted = ", ".join(f"{p * 1000:.0f}" for p in watch.predicted)
        self.manager.rollback(watch.before)
        self._counters["rollbacks"] += 1
        self._cooldown = _COOLDOWN_TURNS
        self._history_at_end = None
        reason = f"rollback: TTFT after the cut {observed} ms vs predicted {predicted} ms"
        if self.on_rollback is not None:
            self.on_rollback(reason)
        return reason

    def close(self) -> None:
        """Stop the strategy's background work (worker threads, summary tasks)."""
        self.strategy.close()

    # -- the async driver -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def turn(
        self,
        message: Mapping[str, Any] | Message | None = None,
        *,
        dynamic_context: str | None = None,
        stream: bool | None = True,
        **options: Any,
    ) -> AsyncIterator[Turn]:
        """One voice turn: build the request, time the reply, commit it, plan in the background.

        Inside the block, send ``turn.request`` and pass the stream through
        :meth:`Turn.observe`. On leaving the block the reply is appended (unless the caller
        appended it with :meth:`Turn.append`), even a partial one after a barge-in, and pre-warms
        are started as background tasks.
        """
        request = self.begin_turn(message, dynamic_context=dynamic_context, stream=stream, **options)
        handle = Turn(self, request)
        try:
            yield handle
        except BaseException:
            await handle._close()
            handle._finish(failed=True)
            self._background(self.end_turn())
            raise
        await handle._close()
        handle._finish(failed=False)
        self._background(self.end_turn())

    def _background(self, requests: list[dict[str, Any]]) -> None:
        if not requests:
            return
        if self.send_prewarm is None:
            self.prewarmed(True)
            return
        send = self.send_prewarm

        async def warm() -> None:
            try:
                for request in requests:
                    await send(request)
            except Exception as exc:  # a failed pre-warm only delays the switch
                _log.warning("pre-warm failed (%s: %s); the cut waits", type(exc).__name__, exc)
                self.prewarmed(False)
                return
            self.prewarmed(True)

        task = asyncio.get_running_loop().create_task(warm())
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    # -- reporting --------------------------------------------------------------------------------

    @property
    def history(self) -> tuple[TurnRecord, ...]:
        """Every finished turn, oldest first."""
        return tuple(self._records)

    @property
    def counters(self) -> dict[str, int]:
        """``compactions``, ``rebases``, ``rollbacks`` and ``prewarms`` so far (cheap, no statistics)."""
        return dict(self._counters)

    def stats(self) -> ControllerStats:
        """The rolling figures and the session's counters."""
        snap = self._stats.snapshot()
        last = self._records[-1].input_tokens if self._records else 0
        return ControllerStats(
            p50_ms=snap.p50_ms,
            p95_ms=snap.p95_ms,
            p99_ms=snap.p99_ms,
            jitter_ms=snap.jitter_std_ms,
            turns=len(self._records),
            compactions=self._counters["compactions"],
            rebases=self._counters["rebases"],
            rollbacks=self._counters["rollbacks"],
            prewarms=self._counters["prewarms"],
            cached_share=snap.cached_share,
            context_tokens=last,
        )

    def report(self) -> str:
        """A few lines on the session: TTFT percentiles, cache share, cuts and the model."""
        s = self.stats()
        base, a, b = self._coefficients
        target = "none" if self.target_ms is None else f"{self.target_ms:.0f} ms"
        return "\n".join(
            [
                f"turns {s.turns}, target {target}",
                f"TTFT P50 {_ms(s.p50_ms)}, P95 {_ms(s.p95_ms)}, P99 {_ms(s.p99_ms)}, jitter {_ms(s.jitter_ms)}",
                f"cached share {s.cached_share:.1%}, last prompt {s.context_tokens:,} tokens",
                f"rebases {s.rebases}, rollbacks {s.rollbacks}, pre-warms {s.prewarms}",
                f"model: {base * 1000:.0f} ms + {a * 1e6:.1f} µs/uncached + {b * 1e6:.2f} µs/cached token",
            ]
        )

    def print_report(self) -> None:
        """Print :meth:`report`."""
        print(self.report())


def truncate_tokens(text: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest head of ``text`` with at most ``limit`` tokens, cut at a word boundary.

    Args:
        text: the text to shorten.
        limit: the most tokens to keep (0 gives ``""``).
        count: the token counter (``adapter.counter.count_text``).
    """
    if count(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix, in characters, within the limit
        middle = (low + high + 1) // 2
        if count(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    head = text[:low]
    space = head.rfind(" ")
    return head[:space] if space > 0 and low < len(text) and not text[low].isspace() else head


def _percentile(values: Sequence[float] | deque[float], q: float) -> float:
    """Numpy's ``"linear"`` percentile of a short sequence, without numpy's per-call overhead."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q / 100.0 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f} ms"


_TASKS: set[asyncio.Task[None]] = set()


class Turn:
    """The turn in progress inside :meth:`TTFTController.turn`.

    Attributes:
        request: the keyword arguments for the provider's client.
        measurement: the last observed response's measurement, once observed.
    """

    def __init__(self, controller: TTFTController, request: dict[str, Any]) -> None:
        self._controller = controller
        self.request = request
        self.measurement: Measurement | None = None
        self._replied = False
        self._recorded = True
        self._observer: StreamObserver | None = None
        self._open: list[AsyncGenerator[Any, None]] = []

    async def _close(self) -> None:
        for generator in self._open:
            with contextlib.suppress(Exception):
                await generator.aclose()
        self._open.clear()

    def _new_observer(self) -> StreamObserver:
        c = self._controller
        self._recorded = False
        self._observer = StreamObserver(
            c.manager.adapter, started=c._started + c._ttft, clock=c.clock, timeout_s=c.timeout_s
        )
        return self._observer

    def observe(self, stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """Pass the provider's stream through unchanged while timing it and reading its usage.

        Leaving the ``async for`` early (the caller barged in) is fine: the turn closes the stream
        when its block ends and keeps the part of the reply that arrived.
        """
        generator = self._observe(stream)
        self._open.append(generator)
        return generator

    async def _observe(self, stream: AsyncIterable[Any]) -> AsyncGenerator[Any, None]:
        observer = self._new_observer()
        try:
            async with contextlib.aclosing(observer.observe(stream)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self._record(observer.measurement)

    def observe_sync(self, stream: Iterable[Any]) -> Iterator[Any]:
        """As :meth:`observe` for a synchronous stream."""
        observer = self._new_observer()
        try:
            yield from observer.observe_sync(stream)
        finally:
            self._record(observer.measurement)

    async def observe_response(self, awaitable: Awaitable[Any]) -> Any:
        """Await a non-streamed response, timing it as a whole."""
        observer = self._new_observer()
        try:
            return await observer.observe_awaitable(awaitable)
        finally:
            self._record(observer.measurement)

    def _record(self, measurement: Measurement | None) -> None:
        if self._recorded or measurement is None:
            return
        self._recorded = True
        self.measurement = measurement
        if measurement.buffered:
            warn_buffered_once(type(self._controller.manager.adapter).__name__)
        self._controller.record(
            ttft_s=measurement.ttft_s,
            usage=measurement.usage,
            censored=measurement.censored,
            streamed=measurement.streamed,
        )

    def append(self, message: Mapping[str, Any] | Message | Any) -> None:
        """Append the reply or a tool result yourself (then the turn does not append the reply)."""
        self._controller.append(message)
        self._replied = True

    def next_request(self, **options: Any) -> dict[str, Any]:
        """After a tool round's results were appended: the next request of this turn."""
        self.request = self._controller.next_request(stream=self.request.get("stream"), **options)
        self._replied = False
        return self.request

    def _finish(self, *, failed: bool) -> None:
        if self._observer is not None and not self._recorded:
            self._record(self._observer.measurement)
        if self.measurement is None and not self._replied:
            # Nothing was observed: count the turn as censored so it is not lost from the figures.
            self._controller.record(ttft_s=None, censored=True)
            return
        if self._replied or self.measurement is None:
            return
        m = self.measurement
        if m.tool_calls:
            # Tool calls need their results appended by the caller (Turn.append, next_request).
            _log.warning("the turn ended on tool calls the caller did not append; the reply is not committed")
            return
        if not m.text:
            return
        with contextlib.suppress(Exception):  # a reply the state refuses is dropped, never raised
            self._controller.append({"role": "assistant", "content": m.text})
