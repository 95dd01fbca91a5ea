"""Compaction strategies: what replaces a span of history the planner decides to cut.

The planner (:mod:`llmvoice.control.planner`) chooses *where* to cut, always at a turn
boundary; a :class:`Strategy` chooses *what stands for* the archived span:

* :class:`WindowStrategy`: nothing, a plain cut (the default; every other strategy's fallback);
* :class:`SemanticStrategy`: the span's turns most relevant to the current turn, quoted whole;
* :class:`SummariseStrategy`: an LLM summary, written in the background from the cached prefix;
* :class:`CallableStrategy`: your callable (llmbuffer's ``compaction_hook`` shape is accepted).

Tool-output masking (:mod:`llmvoice.compaction.masking`) works at commit time instead: set
``tool_output_limit`` on the :class:`~llmvoice.PromptManager`. Nothing is ever lost: the cut span
and every masked output stay in the state's archive (and come back on rollback).
"""

from llmvoice.compaction.base import (
    SELECTION_HEADING,
    CompactionInput,
    Outcome,
    Replace,
    Skip,
    Strategy,
    Wait,
    apply,
    choose_cut,
    covered_ids,
    last_user_text,
    render,
    selection_message,
)
from llmvoice.compaction.custom import CallableStrategy, CompactionHook, HookAdapter, from_llmbuffer_hook
from llmvoice.compaction.masking import MASKED_NOTE, find_archived, mask_tool_output
from llmvoice.compaction.semantic import DEFAULT_MODEL, Embedder, SemanticStrategy, find_model
from llmvoice.compaction.summarise import DEFAULT_INSTRUCTION, SummariseStrategy, SummaryJob, summary_request
from llmvoice.compaction.window import WindowStrategy

__all__ = [
    "DEFAULT_INSTRUCTION",
    "DEFAULT_MODEL",
    "MASKED_NOTE",
    "SELECTION_HEADING",
    "CallableStrategy",
    "CompactionHook",
    "CompactionInput",
    "Embedder",
    "HookAdapter",
    "Outcome",
    "Replace",
    "SemanticStrategy",
    "Skip",
    "Strategy",
    "SummariseStrategy",
    "SummaryJob",
    "Wait",
    "WindowStrategy",
    "apply",
    "choose_cut",
    "covered_ids",
    "find_archived",
    "find_model",
    "from_llmbuffer_hook",
    "last_user_text",
    "mask_tool_output",
    "render",
    "selection_message",
    "summary_request",
]
