"""The summarise strategy: the summary request, incremental summaries, failures and background work."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from builders import assistant, calls, user

from llmvoice import functional as fn
from llmvoice.adapters import OpenAIAdapter
from llmvoice.compaction import (
    DEFAULT_INSTRUCTION,
    CompactionInput,
    Outcome,
    Replace,
    Skip,
    SummariseStrategy,
    SummaryJob,
    Wait,
    WindowStrategy,
    apply,
    summary_request,
)
from llmvoice.compaction.summarise import scope_of
from llmvoice.errors import ConfigurationError, PendingToolCallsError
from llmvoice.state import State
from llmvoice.tokens import EstimateCounter

ADAPTER = OpenAIAdapter(counter=EstimateCounter())
SYSTEM = "You are Ava."
NO_COUNTS = {"started": 0, "written": 0, "failed": 0, "timed_out": 0, "stale": 0}
#: What the first summary of talk()'s first two turns asks for.
SCOPE_4 = 'the conversation above, up to (not including) the user message that starts "question 2"'


def talk(turns: int = 3) -> State:
    """``turns`` committed user/assistant pairs: turn i is ids 2i ("question i") and 2i+1 ("answer i")."""
    state = fn.new_state(SYSTEM, session_id="s1")
    for i in range(turns):
        state = fn.append_messages(state, [user(f"question {i}"), assistant(f"answer {i}")])
    return state


def summarised() -> State:
    """talk(2) rebased at 2 with a summary (id 4, covering 0 and 1), then a third turn (ids 5, 6).

    The committed history is [summary 4, question 1, answer 1, question 2, answer 2]; the summary
    block takes 17 estimated tokens.
    """
    state = fn.rebase(talk(2), 2, [fn.summary_message("Ava greeted Sam.", (0, 1))])
    return fn.append_messages(state, [user("question 2"), assistant("answer 2")])


def ask(state: State, cut: int, *, budget_tokens: int = 300, now: float = 0.0) -> CompactionInput:
    return CompactionInput(state, cut, ADAPTER, budget_tokens, now)


def instruction(scope: str) -> dict[str, Any]:
    return {"role": "user", "content": DEFAULT_INSTRUCTION.replace("{scope}", scope)}


class Recorder:
    """A synchronous summarize callable: records its jobs, returns (or raises) its replies in turn."""

    def __init__(self, *replies: Any) -> None:
        self.replies = replies
        self.jobs: list[SummaryJob] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, job: SummaryJob) -> Any:
        self.jobs.append(job)
        self.threads.append(threading.current_thread())
        reply = self.replies[min(len(self.jobs), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply


class Gated:
    """A summarize callable whose i-th call signals ``entered[i]`` and blocks until ``gates[i]`` is set."""

    def __init__(self, *replies: str) -> None:
        self.replies = replies
        self.entered = [threading.Event() for _ in replies]
        self.gates = [threading.Event() for _ in replies]
        self.threads: list[str] = []

    def __call__(self, job: SummaryJob) -> str:
        index = len(self.threads)
        self.threads.append(threading.current_thread().name)
        self.entered[index].set()
        self.gates[index].wait(5.0)
        return self.replies[index]

    def release_all(self) -> None:
        for gate in self.gates:
            gate.set()


def settle(strategy: SummariseStrategy, data: CompactionInput) -> Outcome:
    """Ask until the worker thread has delivered (at most 5 s)."""
    deadline = time.monotonic() + 5.0
    outcome = strategy.compact(data)
    while isinstance(outcome, Wait) and time.monotonic() < deadline:
        time.sleep(0.002)
        outcome = strategy.compact(data)
    return outcome


# -- the request -----------------------------------------------------------------------------------


def test_summary_request_appends_the_instruction_to_the_cached_conversation() -> None:
    """The request is the built conversation, the instruction as a user message at its tail, and max_tokens."""
    state = fn.append_message(talk(1), user("question 1"))
    assert summary_request(state, ADAPTER, "Summarise.", 120) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "question 0"},
            {"role": "assistant", "content": "answer 0"},
            {"role": "user", "content": "question 1"},
            {"role": "user", "content": "Summarise."},
        ],
        "prompt_cache_key": "s1",
        "max_tokens": 120,
    }


def test_summary_request_refuses_open_tool_calls() -> None:
    """Tool calls without results raise PendingToolCallsError naming them."""
    state = fn.append_messages(talk(1), [user("where is it?"), calls("c1")])
    with pytest.raises(PendingToolCallsError, match=r"cannot ask for a summary while tool calls \['c1'\]") as info:
        summary_request(state, ADAPTER, "Summarise.", 120)
    assert info.value.call_ids == ("c1",)


def test_open_tool_calls_skip_the_summary() -> None:
    """compact does not ask for a summary while tool calls wait for their results."""
    summarize = Recorder("unused")
    state = fn.append_messages(talk(2), [user("where is it?"), calls("c1")])
    outcome = SummariseStrategy(summarize, background=False).compact(ask(state, 2))
    assert (outcome, summarize.jobs) == (Skip("summarise: tool calls wait for their results"), [])


# -- the scope wording -----------------------------------------------------------------------------


def test_request_names_the_message_after_the_cut() -> None:
    """A cut before the end asks for the conversation up to the message that follows the span."""
    summarize = Recorder("Sam asked twice.")
    SummariseStrategy(summarize, background=False).compact(ask(talk(3), 4))
    messages = summarize.jobs[0].request["messages"]
    assert (len(messages), messages[-1]) == (8, instruction(SCOPE_4))


def test_scope_quotes_sixty_characters_of_the_next_message() -> None:
    """A long following message is quoted to 60 characters (whitespace folded) and an ellipsis."""
    state = fn.append_messages(talk(1), [user("word " * 20 + "\n  end"), assistant("ok")])
    assert scope_of(state, 0, 2) == (
        'the conversation above, up to (not including) the user message that starts "' + "word " * 12 + '..."'
    )


def test_scope_at_the_end_names_the_first_recent_message() -> None:
    """A cut at the end of the committed history names the turn in progress, if any."""
    state = talk(2)
    in_progress = fn.append_message(state, user("question 2"))
    assert (scope_of(state, 0, 4), scope_of(in_progress, 0, 4)) == ("the conversation above", SCOPE_4)


def test_scope_mentions_the_earlier_summaries() -> None:
    """With summaries carried over at the head, the request asks for what follows them."""
    summarize = Recorder("Sam asked about question 1.")
    SummariseStrategy(summarize, background=False, max_tokens=50).compact(ask(summarised(), 3, budget_tokens=400))
    assert summarize.jobs[0].request["messages"][-1] == instruction(
        "the conversation above after the earlier summaries at its start, "
        'up to (not including) the user message that starts "question 2"'
    )


# -- inline summaries -------------------------------------------------------------------------------


def test_inline_summary_replaces_the_span() -> None:
    """background=False summarises at once: one summary block covering exactly the span's ids."""
    strategy = SummariseStrategy(Recorder("  Sam asked about two orders.\n"), background=False)
    outcome = strategy.compact(ask(talk(3), 4))
    assert (outcome, strategy.counts) == (
        Replace((fn.summary_message("Sam asked about two orders.", (0, 1, 2, 3)),), "summarise: 4 blocks summarised"),
        {**NO_COUNTS, "started": 1, "written": 1},
    )


def test_job_describes_the_span() -> None:
    """The job carries the span's blocks, their ids and the summary's max_tokens."""
    summarize = Recorder("ok")
    state = talk(3)
    SummariseStrategy(summarize, background=False, max_tokens=80).compact(ask(state, 4))
    job = summarize.jobs[0]
    assert (job.span, job.covers, job.request["max_tokens"], job.adapter) == (
        tuple(state.committed[:4]),
        (0, 1, 2, 3),
        80,
        ADAPTER,
    )


def test_apply_rebases_onto_the_summary() -> None:
    """apply() writes the summary in place of the span and starts a new epoch."""
    state, outcome = apply(talk(3), ADAPTER, SummariseStrategy(Recorder("Two orders."), background=False), 4)
    assert (state.epoch, [(m.kind, m.covers, m.text) for m in state.committed], isinstance(outcome, Replace)) == (
        1,
        [
            ("summary", (0, 1, 2, 3), "Summary of the earlier conversation:\nTwo orders."),
            ("message", (), "question 2"),
            ("message", (), "answer 2"),
        ],
        True,
    )


# -- incremental summaries --------------------------------------------------------------------------


def test_leading_summaries_are_carried_verbatim() -> None:
    """A summary at the head of the span is kept as it is; only the blocks after it are summarised."""
    summarize = Recorder("Sam asked about question 1.")
    state = summarised()
    strategy = SummariseStrategy(summarize, background=False, max_tokens=50)
    outcome = strategy.compact(ask(state, 3, budget_tokens=400))
    job = summarize.jobs[0]
    assert (job.span, job.covers, job.request["max_tokens"]) == (tuple(state.committed[1:3]), (2, 3), 50)
    assert outcome == Replace(
        (state.committed[0], fn.summary_message("Sam asked about question 1.", (2, 3))),
        "summarise: 2 blocks summarised, 1 summaries kept",
    )


@pytest.mark.parametrize(
    ("options", "budget_tokens", "carried"),
    [
        ({"max_summary_tokens": 67}, 400, True),  # 17 carried + 50 new fit exactly
        ({"max_summary_tokens": 66}, 400, False),
        ({}, 67, True),
        ({}, 66, False),
    ],
)
def test_summaries_merge_when_they_would_not_fit(options: dict[str, Any], budget_tokens: int, carried: bool) -> None:
    """Carried summaries are merged when carried + max_tokens exceeds max_summary_tokens or the budget."""
    summarize = Recorder("All of it.")
    state = summarised()
    outcome = SummariseStrategy(summarize, background=False, max_tokens=50, **options).compact(
        ask(state, 3, budget_tokens=budget_tokens)
    )
    job = summarize.jobs[0]
    assert isinstance(outcome, Replace)
    if carried:
        assert (len(job.span), job.covers, [b.covers for b in outcome.blocks]) == (2, (2, 3), [(0, 1), (2, 3)])
    else:
        assert (job.span, job.covers, outcome.blocks, outcome.note) == (
            tuple(state.committed[:3]),
            (0, 1, 2, 3),
            (fn.summary_message("All of it.", (0, 1, 2, 3)),),
            "summarise: 3 blocks summarised",
        )
        assert job.request["messages"][-1] == instruction(
            'the conversation above, up to (not including) the user message that starts "question 2"'
        )


@pytest.mark.parametrize(("budget_tokens", "requested"), [(500, 300), (300, 300), (40, 40), (32, 32), (10, 32)])
def test_summary_size_follows_the_budget(budget_tokens: int, requested: int) -> None:
    """The summary's max_tokens is the smaller of max_tokens and the budget, and at least 32."""
    summarize = Recorder("ok")
    SummariseStrategy(summarize, background=False).compact(ask(talk(3), 4, budget_tokens=budget_tokens))
    assert summarize.jobs[0].request["max_tokens"] == requested


def test_observe_reserves_room_for_carried_summaries() -> None:
    """replacement_tokens adds the carried summaries' tokens while they fit max_summary_tokens."""
    roomy = SummariseStrategy(Recorder("ok"), max_tokens=50)
    tight = SummariseStrategy(Recorder("ok"), max_tokens=50, max_summary_tokens=66)
    for strategy in (roomy, tight):
        strategy.observe(summarised(), ADAPTER)
    assert (roomy.replacement_tokens, tight.replacement_tokens) == (67, 50)


# -- failures ---------------------------------------------------------------------------------------


def test_failed_summary_skips_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    """A summary that raises leaves the history as it is; the next attempt waits 5 s."""
    strategy = SummariseStrategy(Recorder(RuntimeError("model offline")), background=False)
    with caplog.at_level(logging.WARNING, logger="llmvoice.compaction"):
        outcome = strategy.compact(ask(talk(3), 4, now=100.0))
    assert (outcome, strategy.counts, caplog.messages) == (
        Skip("summarise: backing off 5.0 s after 1 failures"),
        {**NO_COUNTS, "started": 1, "failed": 1},
        ["summary failed (RuntimeError: model offline); the history stays as it is, next attempt in 5.0 s"],
    )


def test_backoff_doubles_up_to_the_maximum() -> None:
    """Failures in a row wait 5, 10, 20 s, then max_backoff_s."""
    strategy = SummariseStrategy(Recorder(RuntimeError("down")), background=False, max_backoff_s=30.0)
    state = talk(3)
    reasons = [strategy.compact(ask(state, 4, now=now)) for now in (0.0, 5.0, 15.0, 35.0, 65.0)]
    assert reasons == [
        Skip("summarise: backing off 5.0 s after 1 failures"),
        Skip("summarise: backing off 10.0 s after 2 failures"),
        Skip("summarise: backing off 20.0 s after 3 failures"),
        Skip("summarise: backing off 30.0 s after 4 failures"),
        Skip("summarise: backing off 30.0 s after 5 failures"),
    ]


def test_retry_waits_for_the_back_off() -> None:
    """No attempt before the retry time; one at it; a success resets the back-off."""
    summarize = Recorder(RuntimeError("down"), "Back up.", RuntimeError("down again"))
    strategy = SummariseStrategy(summarize, background=False)
    state = talk(3)
    outcomes = [strategy.compact(ask(state, 4, now=now)) for now in (0.0, 4.5, 5.0, 10.0)]
    assert outcomes == [
        Skip("summarise: backing off 5.0 s after 1 failures"),
        Skip("summarise: backing off 0.5 s after 1 failures"),
        Replace((fn.summary_message("Back up.", (0, 1, 2, 3)),), "summarise: 4 blocks summarised"),
        Skip("summarise: backing off 5.0 s after 1 failures"),
    ]
    assert len(summarize.jobs) == 3


def test_fallback_cuts_while_backing_off() -> None:
    """With a window fallback, a failure and the back-off after it cut plainly."""
    summarize = Recorder(RuntimeError("down"))
    strategy = SummariseStrategy(summarize, background=False, fallback=WindowStrategy())
    state = talk(3)
    outcomes = [strategy.compact(ask(state, 4, now=now)) for now in (0.0, 1.0)]
    assert (outcomes, len(summarize.jobs)) == (
        [
            Replace((), "summarise: backing off 5.0 s after 1 failures; window"),
            Replace((), "summarise: backing off 4.0 s after 1 failures; window"),
        ],
        1,
    )


def test_empty_summary_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A summary of only whitespace counts as a failure."""
    strategy = SummariseStrategy(Recorder(" \n"), background=False)
    with caplog.at_level(logging.WARNING, logger="llmvoice.compaction"):
        outcome = strategy.compact(ask(talk(3), 4))
    assert (outcome, strategy.counts["failed"], strategy.counts["written"], caplog.messages) == (
        Skip("summarise: backing off 5.0 s after 1 failures"),
        1,
        0,
        ["summary failed (the summary came back empty); the history stays as it is, next attempt in 5.0 s"],
    )


def test_failure_without_fallback_keeps_the_history() -> None:
    """fallback=None: apply() returns the state unchanged with the Skip."""
    state = talk(3)
    strategy = SummariseStrategy(Recorder(RuntimeError("down")), background=False)
    new, outcome = apply(state, ADAPTER, strategy, 4)
    assert (new is state, outcome) == (True, Skip("summarise: backing off 5.0 s after 1 failures"))


# -- the background thread --------------------------------------------------------------------------


def test_background_thread_writes_the_summary() -> None:
    """Without an event loop the summary is written in a worker thread; a later call takes it."""
    summarize = Gated("Two orders.")
    strategy = SummariseStrategy(summarize)
    data = ask(talk(3), 4)
    try:
        first = strategy.compact(data)
        assert summarize.entered[0].wait(5.0)
        summarize.release_all()
        later = settle(strategy, data)
    finally:
        summarize.release_all()
        strategy.close()
    assert (first, later, summarize.threads[0].startswith("llmvoice-summary")) == (
        Wait("summarise: writing a summary of 4 blocks"),
        Replace((fn.summary_message("Two orders.", (0, 1, 2, 3)),), "summarise: 4 blocks summarised"),
        True,
    )


def test_one_summary_at_a_time() -> None:
    """While a summary is written, compact waits and starts no second one, even for another cut."""
    summarize = Gated("Two orders.")
    strategy = SummariseStrategy(summarize)
    state = talk(3)
    try:
        strategy.compact(ask(state, 4))
        assert summarize.entered[0].wait(5.0)
        again = [strategy.compact(ask(state, 4)), strategy.compact(ask(state, 2))]
        calls_made, started = len(summarize.threads), strategy.counts["started"]
    finally:
        summarize.release_all()
        strategy.close()
    assert (again, calls_made, started) == (
        [Wait("summarise: a summary of 4 blocks is being written")] * 2,
        1,
        1,
    )


def test_timeout_gives_up_and_drops_the_late_result(caplog: pytest.LogCaptureFixture) -> None:
    """A summary not back by the deadline is a failure; when it arrives later it is dropped."""
    summarize = Gated("late summary", "fresh summary")
    strategy = SummariseStrategy(summarize, timeout_s=1)
    state = talk(3)
    try:
        first = strategy.compact(ask(state, 4, now=0.0))
        assert summarize.entered[0].wait(5.0)
        at_deadline = strategy.compact(ask(state, 4, now=1.0))
        with caplog.at_level(logging.WARNING, logger="llmvoice.compaction"):
            kept, timed_out = apply(state, ADAPTER, strategy, 4, budget_tokens=300, now=1.5)
        counts = dict(strategy.counts)
        retry = strategy.compact(ask(state, 4, now=6.5))  # queued behind the blocked worker
        summarize.gates[0].set()  # the late result arrives...
        assert summarize.entered[1].wait(5.0)  # ...and has been delivered once the next job runs
        while_second_runs = strategy.compact(ask(state, 4, now=6.5))
        summarize.gates[1].set()
        final = settle(strategy, ask(state, 4, now=6.5))
    finally:
        summarize.release_all()
        strategy.close()
    assert (first, at_deadline, kept is state, timed_out, counts) == (
        Wait("summarise: writing a summary of 4 blocks"),
        Wait("summarise: a summary of 4 blocks is being written"),
        True,
        Skip("summarise: backing off 5.0 s after 1 failures"),
        {**NO_COUNTS, "started": 1, "failed": 1, "timed_out": 1},
    )
    assert caplog.messages == [
        "summary failed (no summary after 1 s); the history stays as it is, next attempt in 5.0 s"
    ]
    assert (retry, while_second_runs, final) == (
        Wait("summarise: writing a summary of 4 blocks"),
        Wait("summarise: a summary of 4 blocks is being written"),
        Replace((fn.summary_message("fresh summary", (0, 1, 2, 3)),), "summarise: 4 blocks summarised"),
    )


@pytest.mark.parametrize(("change", "covers"), [("rebase", (0, 1, 2, 3)), ("other cut", (0, 1))])
def test_stale_summary_is_dropped(change: str, covers: tuple[int, ...]) -> None:
    """A summary written for a span that is no longer the one asked for is dropped; a new one starts."""
    summarize = Gated("old summary", "new summary")
    strategy = SummariseStrategy(summarize)
    state = talk(3)
    # After the rebase (epoch 1) the span at cut 3 is [summary 6 (covering 0, 1), 2, 3]; it is merged.
    rebased = fn.rebase(state, 2, [fn.summary_message("Hello.", (0, 1))])
    newer = ask(rebased, 3) if change == "rebase" else ask(state, 2)
    try:
        strategy.compact(ask(state, 4))
        summarize.gates[0].set()
        deadline = time.monotonic() + 5.0
        while strategy.counts["started"] < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
            strategy.compact(newer)
        summarize.gates[1].set()
        final = settle(strategy, newer)
    finally:
        summarize.release_all()
        strategy.close()
    assert (strategy.counts, len(summarize.threads)) == ({**NO_COUNTS, "started": 2, "written": 1, "stale": 1}, 2)
    assert final == Replace(
        (fn.summary_message("new summary", covers),), f"summarise: {len(newer.span)} blocks summarised"
    )


# -- inside an event loop ---------------------------------------------------------------------------


async def test_async_summary_runs_as_a_task() -> None:
    """With a running loop an async summarize runs as a task on the loop's thread."""
    threads: list[threading.Thread] = []

    async def summarize(job: SummaryJob) -> str:
        threads.append(threading.current_thread())
        await asyncio.sleep(0)
        return "Two orders."

    strategy = SummariseStrategy(summarize)
    data = ask(talk(3), 4)
    first = strategy.compact(data)
    outcome: Outcome = first
    for _ in range(50):
        await asyncio.sleep(0)
        outcome = strategy.compact(data)
        if not isinstance(outcome, Wait):
            break
    strategy.close()
    assert (first, outcome, threads) == (
        Wait("summarise: writing a summary of 4 blocks"),
        Replace((fn.summary_message("Two orders.", (0, 1, 2, 3)),), "summarise: 4 blocks summarised"),
        [threading.main_thread()],
    )


async def test_async_summary_timeout_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """An async summarize that takes longer than timeout_s is given up and counted as a failure."""

    async def summarize(job: SummaryJob) -> str:
        await asyncio.Event().wait()
        return "never"

    strategy = SummariseStrategy(summarize, timeout_s=0.05)
    data = ask(talk(3), 4)
    outcome = strategy.compact(data)
    deadline = time.monotonic() + 5.0
    with caplog.at_level(logging.WARNING, logger="llmvoice.compaction"):
        while isinstance(outcome, Wait) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            outcome = strategy.compact(data)
    strategy.close()
    assert (outcome, strategy.counts, caplog.messages) == (
        Skip("summarise: backing off 5.0 s after 1 failures"),
        {**NO_COUNTS, "started": 1, "failed": 1},
        ["summary failed (no summary after 0.05 s); the history stays as it is, next attempt in 5.0 s"],
    )


async def test_sync_summary_in_a_loop_runs_in_a_thread() -> None:
    """With a running loop a synchronous summarize runs in a worker thread, not on the loop."""
    summarize = Recorder("Two orders.")
    strategy = SummariseStrategy(summarize)
    data = ask(talk(3), 4)
    outcome = strategy.compact(data)
    deadline = time.monotonic() + 5.0
    while isinstance(outcome, Wait) and time.monotonic() < deadline:
        await asyncio.sleep(0.002)
        outcome = strategy.compact(data)
    strategy.close()
    assert (outcome, len(summarize.threads), summarize.threads[0] is threading.main_thread()) == (
        Replace((fn.summary_message("Two orders.", (0, 1, 2, 3)),), "summarise: 4 blocks summarised"),
        1,
        False,
    )


async def test_close_cancels_the_summary_task() -> None:
    """close() cancels a summary task still running."""
    cancelled = asyncio.Event()

    async def summarize(job: SummaryJob) -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    strategy = SummariseStrategy(summarize)
    strategy.compact(ask(talk(3), 4))
    await asyncio.sleep(0)
    strategy.close()
    await asyncio.wait_for(cancelled.wait(), 5.0)
    assert cancelled.is_set()


def test_close_stops_the_worker_thread() -> None:
    """close() returns at once with a summary in the worker, and again after it; a fresh strategy closes too."""
    summarize = Gated("Two orders.")
    strategy = SummariseStrategy(summarize)
    try:
        strategy.compact(ask(talk(3), 4))
        assert summarize.entered[0].wait(5.0)
        strategy.close()
        strategy.close()
    finally:
        summarize.release_all()
    SummariseStrategy(Recorder("ok")).close()
    assert summarize.threads[0].startswith("llmvoice-summary")


# -- provider responses -----------------------------------------------------------------------------


def test_text_of_reads_an_openai_response() -> None:
    """job.text_of reads the content of a Chat Completions response (text parts joined; none is "")."""
    summarize = Recorder("ok")
    SummariseStrategy(summarize, background=False).compact(ask(talk(3), 4))
    job = summarize.jobs[0]

    def response(content: Any) -> dict[str, Any]:
        return {"choices": [{"message": {"role": "assistant", "content": content}}]}

    parts = [{"type": "text", "text": "Two"}, {"type": "text", "text": "orders."}]
    assert (job.text_of(response("Two orders.")), job.text_of(response(parts)), job.text_of(response(None))) == (
        "Two orders.",
        "Two\norders.",
        "",
    )


def test_a_provider_response_is_read_as_the_summary() -> None:
    """summarize may return the provider's response dict instead of the text."""
    reply = {"choices": [{"message": {"role": "assistant", "content": "Two orders."}}]}
    outcome = SummariseStrategy(Recorder(reply), background=False).compact(ask(talk(3), 4))
    assert outcome == Replace((fn.summary_message("Two orders.", (0, 1, 2, 3)),), "summarise: 4 blocks summarised")


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summarize", "options", "message"),
    [
        ("not callable", {}, "summarize must be callable, not str"),
        (None, {"max_tokens": 0}, "max_tokens must be a positive integer, not 0"),
        (None, {"max_tokens": True}, "max_tokens must be a positive integer, not True"),
        (None, {"instruction": "  "}, "instruction must be a non-empty string"),
        (None, {"timeout_s": -1}, "timeout_s must be a finite number >= 0, not -1"),
        (None, {"backoff_s": float("nan")}, "backoff_s must be a finite number >= 0, not nan"),
        (None, {"max_backoff_s": float("inf")}, "max_backoff_s must be a finite number >= 0, not inf"),
        (None, {"fallback": "window"}, "fallback must be a Strategy, not str"),
        (None, {"max_summary_tokens": 1.5}, "max_summary_tokens must be an integer >= max_tokens (300), not 1.5"),
        (None, {"max_summary_tokens": 0}, "max_summary_tokens must be an integer >= max_tokens (300), not 0"),
        (None, {"timeout_s": True}, "timeout_s must be a finite number >= 0, not True"),
    ],
)
def test_configuration_errors(summarize: Any, options: dict[str, Any], message: str) -> None:
    """Bad options raise ConfigurationError naming the option and the value."""
    with pytest.raises(ConfigurationError) as info:
        SummariseStrategy(Recorder("ok") if summarize is None else summarize, **options)
    assert str(info.value) == message


async def test_async_summarize_without_background_inside_a_loop_runs_as_a_task() -> None:
    """background=False cannot block a running loop: an async summarize becomes a task, then Replace."""

    async def summarize(job: SummaryJob) -> str:
        return "written in a task"

    state = fn.append_messages(
        fn.new_state("S", session_id="a"), [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]
    )
    strategy = SummariseStrategy(summarize, background=False)
    data = CompactionInput(state, 2, OpenAIAdapter(counter=EstimateCounter()), 300)
    first = strategy.compact(data)
    for _ in range(20):
        await asyncio.sleep(0)
    second = strategy.compact(data)
    assert (first, isinstance(second, Replace), strategy.counts["written"]) == (
        Wait("summarise: writing a summary of 2 blocks"),
        True,
        1,
    )
