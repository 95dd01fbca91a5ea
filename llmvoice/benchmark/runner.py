"""Play a scenario through one contender against one provider, on virtual time.

The runner owns the clock and the bookkeeping; contenders only build and send requests. For
each turn it hands the user's utterance to the contender, lets it send one request per scripted
step, hands back the scripted answer, then gives it the idle time in which the reply is spoken
for background work. Everything a provider reports is recorded per request; a turn's latency is
the sum of the time to first token of its steps (a tool round must finish before the spoken
reply can start; tool execution and decoding of the tool call are the same for every
contender and are left out).

Two figures come from the script itself, the same for every contender:

* the **irreducible** input of a request: the tokens that did not exist before it (the system
  prompt and tools on the first request, then the new user utterance, the previous answer and
  tool results, and the dynamic context when it changed). No cache can avoid prefilling them.
* the **planted facts**: a contender retains a fact when its last request still contains the
  fact's text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from llmvoice.benchmark.base import Contender, Scenario, Step, Target, Turn
from llmvoice.benchmark.simulate import SimResult, make_provider
from llmvoice.errors import ConfigurationError
from llmvoice.tokens import load_encoding

__all__ = [
    "DEFAULT_MODELS",
    "SPEECH_WORDS_PER_S",
    "Provider",
    "RequestRecord",
    "RunResult",
    "TurnRecord",
    "irreducible_tokens",
    "run",
    "simulated_provider",
    "speech_seconds",
]

#: Model used per simulated provider when none is given (prices and minimum cacheable lengths
#: follow the model name).
DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-6",
    "vllm": "Qwen/Qwen2.5-7B-Instruct",
    "llamacpp": "SmolLM2-135M-Instruct",
    "local": "SmolLM2-135M-Instruct",
    "openai-compatible": "default",
}

# Chat-format overhead per message (role and separators), as in OpenAI's token-counting guide.
_MESSAGE_OVERHEAD = 4


class Provider(Protocol):
    """What the runner sends through: a simulated cache, the local engine or a live API.

    A provider with a true ``serial`` attribute serves one request at a time (a single-slot
    engine): the runner then makes a turn's request wait for a background request still running.
    """

    def send(self, request: Mapping[str, Any], now: float) -> SimResult:
        """Serve one request at virtual time ``now``."""
        ...  # pragma: no cover


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the provider served it.

    Attributes:
        turn: turn index.
        step: step index within the turn (``-1`` for background requests).
        background: sent from idle time (summaries, pre-warms), off the latency path.
        at_s: virtual time the request was sent.
        ttft_s: time to first token.
        input_tokens: all prompt tokens (cached and cache-written included).
        cached_tokens: prompt tokens read from the cache.
        cache_write_tokens: prompt tokens written to the cache at a premium.
        irreducible_tokens: tokens new at this request (0 for background requests).
        cost_usd: the request's cost.
    """

    turn: int
    step: int
    background: bool
    at_s: float
    ttft_s: float
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    irreducible_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One turn, as the user experienced it.

    Attributes:
        turn: turn index.
        at_s: virtual time the user stopped speaking.
        ttft_s: silence before the spoken reply: the sum of the steps' time to first token.
        input_tokens: prompt tokens over the turn's foreground requests.
        cached_tokens: of which read from the cache.
        cache_write_tokens: of which written to the cache.
        irreducible_tokens: tokens new in this turn.
        cost_usd: cost of the turn's requests, background ones included.
        overhead_s: time the contender itself spent on the turn's critical path, from the user's
            utterance to the last reply (``user_turn``, ``call``, ``reply``; sends excluded).
        idle_s: time the contender spent off the critical path (``speech_start`` while the user
            speaks, ``idle`` while the reply plays; sends excluded).
    """

    turn: int
    at_s: float
    ttft_s: float
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    irreducible_tokens: int
    cost_usd: float
    overhead_s: float
    idle_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything one contender did over one scenario.

    Attributes:
        contender: the contender's registry name.
        label: its display name.
        budget: the budget knob it ran with (``None``: its default).
        knob: what the budget sets, or ``None``.
        scenario: scenario name.
        provider: the target provider.
        model: the model name.
        turns: per-turn records (fewer than the scenario's turns only if ``error`` is set).
        requests: per-request records, background ones included.
        facts_total: planted facts in the played turns.
        facts_retained: keys of the facts still in the last request.
        final_input_tokens: prompt tokens of the last foreground request (context kept).
        counters: compactions, rebases and rollbacks.
        error: why the run stopped early, or ``None``.
    """

    contender: str
    label: str
    budget: int | None
    knob: str | None
    scenario: str
    provider: str
    model: str
    turns: tuple[TurnRecord, ...]
    requests: tuple[RequestRecord, ...]
    facts_total: int
    facts_retained: tuple[str, ...]
    final_input_tokens: int
    counters: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None


def simulated_provider(target: Target, *, seed: int = 0) -> Provider:
    """A simulated cache with the rules of ``target.provider``.

    Args:
        target: ``openai``, ``anthropic``, ``vllm`` or ``llamacpp``.
        seed: the TTFT noise seed.

    Returns:
        A fresh provider with an empty cache.

    Raises:
        ConfigurationError: the provider has no simulator.
    """
    return make_provider(target.provider, seed=seed)


class _Counter:
    """Token counts of text, memoised (o200k_base, or 4 characters per token without it)."""

    def __init__(self) -> None:
        self._encoding = load_encoding("o200k_base")
        self._memo: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        count = self._memo.get(text)
        if count is None:
            if self._encoding is not None:
                count = len(self._encoding.encode_ordinary(text))
            else:
                count = max(1, len(text) // 4) if text else 0
            self._memo[text] = count
        return count


def irreducible_tokens(scenario: Scenario, count: Callable[[str], int] | None = None) -> list[list[int]]:
    """Tokens new at each request of the script, per turn and step.

    Args:
        scenario: the scenario.
        count: a token counter for text (default: o200k_base, memoised).

    Returns:
        ``result[turn][step]``: the tokens no cache could have held at that request.
    """
    text_count: Callable[[str], int] = count if count is not None else _Counter()

    def message_tokens(message: Mapping[str, Any]) -> int:
        total = _MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            total += text_count(content)
        elif content is not None:
            total += text_count(json.dumps(content, ensure_ascii=False, sort_keys=True))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += text_count(str(function.get("name", ""))) + text_count(str(function.get("arguments", "")))
        return total

    result: list[list[int]] = []
    pending = text_count(scenario.system_prompt) + _MESSAGE_OVERHEAD
    pending += sum(text_count(json.dumps(tool, ensure_ascii=False, sort_keys=True)) for tool in scenario.tools)
    context: str | None = None
    for turn in scenario.turns:
        steps: list[int] = []
        pending += message_tokens({"role": "user", "content": turn.user})
        if turn.context is not None and turn.context != context:
            pending += text_count(turn.context) + _MESSAGE_OVERHEAD
        context = turn.context
        for step in turn.steps:
            steps.append(pending)
            pending = message_tokens(step.assistant) + sum(message_tokens(r) for r in step.tool_results)
        result.append(steps)
    return result


def _fact_text(request: Mapping[str, Any] | None) -> str:
    if request is None:
        return ""
    return json.dumps(request, ensure_ascii=False).lower()


def _generation_s(result: SimResult) -> float:
    """Seconds the answer took after its first token (llama.cpp's ``timings.predicted_ms``)."""
    timings = result.response.get("timings") if isinstance(result.response, Mapping) else None
    if isinstance(timings, Mapping) and isinstance(timings.get("predicted_ms"), int | float):
        return float(timings["predicted_ms"]) / 1000.0
    return 0.0


#: Speaking rate used to place the start of an utterance before its end (conversational English,
#: about 150 words a minute).
SPEECH_WORDS_PER_S: Final[float] = 2.5


def speech_seconds(utterance: str) -> float:
    """How long the user speaks ``utterance`` at :data:`SPEECH_WORDS_PER_S` (at least 0.5 s)."""
    return max(len(utterance.split()) / SPEECH_WORDS_PER_S, 0.5)


def run(
    scenario: Scenario,
    contender: Contender,
    provider: Provider,
    *,
    registry_name: str | None = None,
    on_turn: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> RunResult:
    """Play ``scenario`` through ``contender`` against ``provider``.

    Args:
        scenario: the script.
        contender: a fresh contender built for this scenario and target.
        provider: a fresh provider (an empty cache), used by this contender only.
        registry_name: the contender's registry name for reports (default: its ``name``).
        on_turn: called with the turn index after each turn (progress bars).
        clock: wall clock used to measure the contender's own overhead.

    Returns:
        The run's records. An exception raised by the contender or the provider stops the run;
        its message is kept in ``error`` and the turns played so far are returned.
    """
    irreducible = irreducible_tokens(scenario)
    requests: list[RequestRecord] = []
    turns: list[TurnRecord] = []
    last_request: list[Mapping[str, Any] | None] = [None]
    send_time = [0.0]
    error: str | None = None
    facts = [fact for fact in scenario.facts if fact.turn < len(scenario.turns)]

    serial = bool(getattr(provider, "serial", False))
    busy_until = [-math.inf]

    def sender(turn: int, step: int, at: float, background: bool) -> Callable[[Mapping[str, Any]], SimResult]:
        def send(request: Mapping[str, Any]) -> SimResult:
            started = clock()
            try:
                result = provider.send(request, now=at)
            finally:
                send_time[0] += clock() - started
            if serial:
                # One slot: a background request (a pre-warm, a summary) occupies the engine
                # until it has answered, and a turn's request sent meanwhile waits for it.
                if background:
                    begin = max(at, busy_until[0])
                    busy_until[0] = begin + result.ttft_s + _generation_s(result)
                elif busy_until[0] > at:
                    result = dataclasses.replace(result, ttft_s=result.ttft_s + busy_until[0] - at)
            if not background:
                last_request[0] = request
            requests.append(
                RequestRecord(
                    turn=turn,
                    step=step,
                    background=background,
                    at_s=at,
                    ttft_s=result.ttft_s,
                    input_tokens=result.input_tokens,
                    cached_tokens=result.cached_tokens,
                    cache_write_tokens=result.cache_write_tokens,
                    irreducible_tokens=0 if background else irreducible[turn][step],
                    cost_usd=result.cost_usd,
                )
            )
            return result

        return send

    previous_end = -math.inf
    for index, turn in enumerate(scenario.turns):
        try:
            speech_at = max(previous_end, turn.at_s - speech_seconds(turn.user))
            record = _play_turn(
                index,
                turn,
                contender,
                speech_at=speech_at,
                sender=sender,
                send_time=send_time,
                clock=clock,
                requests=requests,
            )
            turns.append(record)
            previous_end = turn.at_s + record.ttft_s
        except Exception as exc:  # a contender or provider failure ends this contender's run
            error = f"turn {index}: {type(exc).__name__}: {exc}"
            break
        if on_turn is not None:
            on_turn(index)
    try:
        contender.close()
    except Exception as exc:  # pragma: no cover - reported, never raised
        error = error or f"close: {type(exc).__name__}: {exc}"
    text = _fact_text(last_request[0])
    retained = tuple(fact.key for fact in facts if fact.value.lower() in text)
    final_input = next((r.input_tokens for r in reversed(requests) if not r.background), 0)
    return RunResult(
        contender=registry_name or contender.name,
        label=getattr(contender, "label", contender.name),
        budget=contender.budget,
        knob=contender.knob,
        scenario=scenario.name,
        provider=contender.target.provider,
        model=contender.target.model,
        turns=tuple(turns),
        requests=tuple(requests),
        facts_total=len(facts),
        facts_retained=retained,
        final_input_tokens=final_input,
        counters=dict(contender.counters),
        error=error,
    )


def _play_turn(
    index: int,
    turn: Turn,
    contender: Contender,
    *,
    speech_at: float,
    sender: Callable[[int, int, float, bool], Callable[[Mapping[str, Any]], SimResult]],
    send_time: list[float],
    clock: Callable[[], float],
    requests: list[RequestRecord],
) -> TurnRecord:
    first_record = len(requests)
    send_time[0] = 0.0
    started = clock()
    contender.speech_start(speech_at, sender(index, -1, speech_at, True))
    idle = (clock() - started) - send_time[0]
    send_time[0] = 0.0
    started = clock()
    contender.user_turn(turn)
    at = turn.at_s
    ttft = 0.0
    steps: Sequence[Step] = turn.steps
    for number, step in enumerate(steps):
        before = len(requests)
        result = contender.call(sender(index, number, at, False))
        if len(requests) != before + 1:
            raise ConfigurationError(
                f"{contender.name}: call() must send exactly one request, it sent {len(requests) - before}"
            )
        ttft += result.ttft_s
        at += result.ttft_s
        contender.reply(step)
    overhead = (clock() - started) - send_time[0]
    send_time[0] = 0.0
    started = clock()
    contender.idle(sender(index, -1, at, True))
    idle += (clock() - started) - send_time[0]
    mine = requests[first_record:]
    foreground = [r for r in mine if not r.background]
    return TurnRecord(
        turn=index,
        at_s=turn.at_s,
        ttft_s=ttft,
        input_tokens=sum(r.input_tokens for r in foreground),
        cached_tokens=sum(r.cached_tokens for r in foreground),
        cache_write_tokens=sum(r.cache_write_tokens for r in foreground),
        irreducible_tokens=sum(r.irreducible_tokens for r in foreground),
        cost_usd=sum(r.cost_usd for r in mine),
        overhead_s=max(overhead, 0.0),
        idle_s=max(idle, 0.0),
    )
