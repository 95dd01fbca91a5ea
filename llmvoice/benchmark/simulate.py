"""Simulated provider prompt caches on virtual time, for an offline benchmark.

Each simulated provider takes a request exactly as it would be passed to the official client
(``client.chat.completions.create(**request)`` for OpenAI, vLLM and llama.cpp;
``client.messages.create(**request)`` for Anthropic) and the virtual time ``now`` in seconds. It
applies that provider's documented cache rule and answers with a response dict whose usage uses
the provider's own field names, so llmvoice's adapters parse it unchanged::

    provider = make_provider("anthropic", seed=1)
    result = provider.send(request, now=0.0)
    AnthropicAdapter().parse_usage(result.response)   # Usage(input_tokens=..., cached_tokens=...)
    result.ttft_s, result.cost_usd

Cache rules (the facts and their sources are next to the constants below):

* **OpenAI** — automatic prefix caching for prompts of 1,024 tokens or more, hits in
  128-token increments, routed by a hash of the first 256 prompt tokens combined with
  ``prompt_cache_key``; ``in_memory`` retention keeps a prefix 5 minutes after its last use
  (the documented range is 5-10 minutes; 5 is simulated) and at most 1 hour, ``24h``
  retention 24 hours.
* **Anthropic** — explicit ``cache_control`` breakpoints on blocks of ``tools`` → ``system`` →
  ``messages`` (or one top-level ``cache_control``: automatic caching on the last block); a
  write only at a breakpoint whose prefix reaches the model's minimum; a read looks back at
  most 20 block positions per breakpoint; 5-minute or 1-hour TTL measured from the start of
  the request that last wrote or read the entry; at most 4 breakpoints, longer TTLs first.
* **vLLM** — automatic prefix caching of full 16-token KV blocks, block hash = hash(parent
  hash, block tokens), LRU eviction over a fixed block capacity.
* **llama.cpp** — one slot: the longest common token prefix with the previous request's
  prompt plus the tokens it generated.

A request is turned into tokens (:func:`prompt_tokens`) with the ``o200k_base`` encoding, in
the provider's cache order: tools, then the system prompt, then each message (role and
content; tool calls with name and arguments; tool results; an image as an 85-token
placeholder); ``cache_control`` markers are not part of the tokens. The tokens of each message
are memoised and prompts are compared message by message with chained hashes, so a send on a
20,000-token prompt costs well under a millisecond once its messages have been seen.

Time to first token is ``(base + a·uncached + b·cached) * lognormal(0, sigma)``, cache writes
counting as uncached, with constants fitted to published measurements (:class:`LatencyProfile`;
the four profiles carry their sources). Noise comes from a seeded :mod:`numpy` generator, so
the same seed and the same requests give the same TTFTs.

A simulated provider is not thread-safe; use one per benchmark contender.
"""

from __future__ import annotations

import abc
import hashlib
import itertools
import json
import math
import random
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

import numpy as np

from llmvoice.adapters.anthropic import anthropic_min_cacheable_tokens
from llmvoice.adapters.base import get_field
from llmvoice.errors import ConfigurationError, TokenizerFallbackWarning
from llmvoice.tokens import load_encoding

__all__ = [
    "ANTHROPIC_LOOKBACK_BLOCKS",
    "ANTHROPIC_MAX_BREAKPOINTS",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_READ",
    "ANTHROPIC_WRITE_1H",
    "ANTHROPIC_WRITE_5M",
    "LLAMACPP_PROFILE",
    "OPENAI_INCREMENT",
    "OPENAI_MIN_TOKENS",
    "OPENAI_PROFILE",
    "OPENAI_ROUTING_TOKENS",
    "VLLM_BLOCK_TOKENS",
    "VLLM_DEFAULT_CAPACITY_TOKENS",
    "VLLM_PROFILE",
    "LatencyProfile",
    "SimResult",
    "SimulatedAnthropic",
    "SimulatedLlamaCpp",
    "SimulatedOpenAI",
    "SimulatedProvider",
    "SimulatedVLLM",
    "anthropic_price",
    "fit_relative",
    "make_provider",
    "openai_price",
    "prompt_tokens",
]

_T = TypeVar("_T")

# ---------------------------------------------------------------------------------------------
# Results and latency profiles


@dataclass(frozen=True, slots=True)
class SimResult:
    """What one simulated request returned.

    Attributes:
        response: the provider-shaped response: ``{"model", "usage"}`` with the provider's own
            usage field names, plus ``"timings"`` for llama.cpp.
        ttft_s: simulated time to first token, in seconds.
        input_tokens: all prompt tokens, cached and cache-written ones included.
        cached_tokens: prompt tokens read from the cache (cache writes excluded).
        cache_write_tokens: prompt tokens written to the cache at a premium (Anthropic only;
            0 elsewhere).
        cost_usd: input cost (cache-write premium and cache-read discount applied) plus output
            cost; 0 for self-hosted engines.
    """

    response: dict[str, Any]
    ttft_s: float
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Time to first token as ``(base + a·uncached + b·cached) * lognormal(0, sigma)``.

    Attributes:
        base_s: fixed seconds per request (network, queueing, first decode step).
        per_uncached_s: seconds per prefilled prompt token (cache writes included).
        per_cached_s: seconds per prompt token read from the cache.
        noise_sigma: sigma of the multiplicative lognormal noise; 0 turns noise off.
        source: where the constants come from.

    Raises:
        ConfigurationError: a constant is negative or not finite.
    """

    base_s: float
    per_uncached_s: float
    per_cached_s: float
    noise_sigma: float
    source: str

    def __post_init__(self) -> None:
        for label in ("base_s", "per_uncached_s", "per_cached_s", "noise_sigma"):
            value = getattr(self, label)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigurationError(f"{label} must be a finite number >= 0, not {value!r}")

    def predict(self, uncached_tokens: int, cached_tokens: int) -> float:
        """The noise-free time to first token.

        Args:
            uncached_tokens: prompt tokens prefilled (cache writes included).
            cached_tokens: prompt tokens read from the cache.

        Returns:
            ``base_s + per_uncached_s·uncached_tokens + per_cached_s·cached_tokens`` seconds.
        """
        return self.base_s + self.per_uncached_s * uncached_tokens + self.per_cached_s * cached_tokens

    def sample(self, uncached_tokens: int, cached_tokens: int, rng: np.random.Generator) -> float:
        """One noisy time to first token.

        Args:
            uncached_tokens: prompt tokens prefilled (cache writes included).
            cached_tokens: prompt tokens read from the cache.
            rng: the generator the lognormal factor is drawn from (not drawn when sigma is 0).

        Returns:
            :meth:`predict` times a ``lognormal(0, noise_sigma)`` factor, in seconds.
        """
        ttft = self.predict(uncached_tokens, cached_tokens)
        if self.noise_sigma == 0:
            return ttft
        return ttft * float(rng.lognormal(0.0, self.noise_sigma))


# -- Anthropic --------------------------------------------------------------------------------
# Launch post https://www.anthropic.com/news/prompt-caching (Aug 2024), row "Chat with a book
# (100,000 token cached prompt)": 11.5 s to first token without caching, 2.4 s with it.
_ANTHROPIC_BOOK_TOKENS: Final[int] = 100_000
_ANTHROPIC_BOOK_UNCACHED_S: Final[float] = 11.5
_ANTHROPIC_BOOK_CACHED_S: Final[float] = 2.4
# Assumed per-request overhead (not in the post); both rows are solved with it subtracted:
# a = (11.5 - 0.4) / 100k = 1.11e-4 s/token, b = (2.4 - 0.4) / 100k = 2.0e-5 s/token.
_ANTHROPIC_BASE_S: Final[float] = 0.4

ANTHROPIC_PROFILE: Final[LatencyProfile] = LatencyProfile(
    base_s=_ANTHROPIC_BASE_S,
    per_uncached_s=(_ANTHROPIC_BOOK_UNCACHED_S - _ANTHROPIC_BASE_S) / _ANTHROPIC_BOOK_TOKENS,
    per_cached_s=(_ANTHROPIC_BOOK_CACHED_S - _ANTHROPIC_BASE_S) / _ANTHROPIC_BOOK_TOKENS,
    noise_sigma=0.15,  # assumed
    source=(
        "https://www.anthropic.com/news/prompt-caching: 100k-token prompt 11.5 s uncached, 2.4 s cached; "
        "base 0.4 s assumed, a = (11.5-0.4)/100k, b = (2.4-0.4)/100k; sigma 0.15 assumed"
    ),
)


# -- OpenAI -----------------------------------------------------------------------------------
# Cookbook "Prompt Caching 201"
# (https://github.com/openai/openai-cookbook/blob/main/examples/Prompt_Caching_201.ipynb):
# "For the shortest prompts (1024 tokens), cached requests are 7% faster, but at the longer end
# (150k+ tokens) we're seeing 67% faster TTFT."
_OPENAI_SHORT_TOKENS: Final[int] = 1024
_OPENAI_SHORT_CACHED_RATIO: Final[float] = 1 - 0.07
_OPENAI_LONG_TOKENS: Final[int] = 150_000
_OPENAI_LONG_CACHED_RATIO: Final[float] = 1 - 0.67
# Assumed: an uncached 1,024-token prompt takes 0.45 s to first token (the cookbook gives only
# ratios). Public voice benchmarks put gpt-4o / gpt-4o-mini TTFB around 0.6-0.8 s median at
# longer prompts (Daily aiewf-eval, https://github.com/kwindla/aiewf-eval), so 0.45 s at 1k is on the fast side of that.
_OPENAI_SHORT_UNCACHED_S: Final[float] = 0.45


def _solve_two_ratios(
    short_tokens: int, short_uncached_s: float, short_ratio: float, long_tokens: int, long_ratio: float
) -> tuple[float, float, float]:
    """Solve base, a, b from t_cached(n) = ratio(n) · t_uncached(n) at two sizes and t_uncached(short).

    With t_uncached(n) = base + a·n and t_cached(n) = base + b·n (the whole prompt cached) and
    k = long/short: base = k·T·(r_short - r_long) / ((1 - r_long)·(k - 1)), a = (T - base)/short,
    b = (r_short·T - base)/short.
    """
    k = long_tokens / short_tokens
    total = short_uncached_s
    base = k * total * (short_ratio - long_ratio) / ((1 - long_ratio) * (k - 1))
    return base, (total - base) / short_tokens, (short_ratio * total - base) / short_tokens


_OPENAI_BASE_S, _OPENAI_PER_UNCACHED_S, _OPENAI_PER_CACHED_S = _solve_two_ratios(
    _OPENAI_SHORT_TOKENS,
    _OPENAI_SHORT_UNCACHED_S,
    _OPENAI_SHORT_CACHED_RATIO,
    _OPENAI_LONG_TOKENS,
    _OPENAI_LONG_CACHED_RATIO,
)  # base ≈ 0.406 s, a ≈ 4.32e-5 s/token, b ≈ 1.24e-5 s/token

OPENAI_PROFILE: Final[LatencyProfile] = LatencyProfile(
    base_s=_OPENAI_BASE_S,
    per_uncached_s=_OPENAI_PER_UNCACHED_S,
    per_cached_s=_OPENAI_PER_CACHED_S,
    noise_sigma=0.2,  # assumed
    source=(
        "OpenAI cookbook Prompt Caching 201: cached 7% faster at 1,024 tokens, 67% faster at 150k; "
        "uncached 1,024-token TTFT 0.45 s assumed; base/a/b solved exactly from the three; sigma 0.2 assumed"
    ),
)


# -- vLLM -------------------------------------------------------------------------------------
# jevper local-server notes (https://github.com/zhulinchng/jevper; vLLM 0.30.1 serving
# Qwen3.5-9B at 4 bits on one RTX 3080 12 GB, run of 2026-09-25): a 2,388-token prompt with
# at most 192 tokens reused took 1.48 s to first token. The ≤192 reused tokens are neglected.
_VLLM_COLD_TOKENS: Final[int] = 2388
_VLLM_COLD_S: Final[float] = 1.48
# Gim et al., "Prompt Cache" (MLSys 2024, arXiv:2311.04934): TTFT "improvements range from 8x for
# GPU-based inference": a fully cached prompt is taken as 8x faster than the cold one.
_VLLM_CACHED_SPEEDUP: Final[float] = 8.0
# Assumed: loopback HTTP and scheduling.
_VLLM_BASE_S: Final[float] = 0.05

VLLM_PROFILE: Final[LatencyProfile] = LatencyProfile(
    base_s=_VLLM_BASE_S,
    per_uncached_s=(_VLLM_COLD_S - _VLLM_BASE_S) / _VLLM_COLD_TOKENS,  # ≈ 5.99e-4 s/token (~1,670 tok/s)
    per_cached_s=(_VLLM_COLD_S / _VLLM_CACHED_SPEEDUP - _VLLM_BASE_S) / _VLLM_COLD_TOKENS,  # ≈ 5.65e-5
    noise_sigma=0.1,  # assumed: a dedicated local GPU jitters less than a shared API
    source=(
        "jevper local-server notes (vLLM 0.30.1, Qwen3.5-9B 4-bit, RTX 3080): 2,388-token cold prompt 1.48 s; "
        "Gim et al. MLSys 2024: cached prompts up to 8x faster on GPU; base 0.05 s and sigma 0.1 assumed"
    ),
)


# -- llama.cpp --------------------------------------------------------------------------------
# Measured on a 2-vCPU x86-64 server (AVX-512, no GPU): llama-cpp-python 0.3.36, SmolLM2-135M Q4_1,
# n_threads=2, in-process TTFT medians. (uncached tokens, cached tokens, seconds):
# cold rows (0 reused), append rows (36 new tokens on the previous prompt) and identical-prompt
# rows (1 token re-evaluated).
_LLAMACPP_ROWS: Final[tuple[tuple[int, int, float], ...]] = (
    (594, 0, 2.380),
    (1006, 0, 4.322),
    (2104, 0, 10.320),
    (4016, 0, 24.193),
    (7052, 0, 55.765),
    (36, 594, 0.167),
    (36, 1006, 0.184),
    (36, 2104, 0.231),
    (36, 4016, 0.318),
    (36, 7052, 0.464),
    (1, 629, 0.015),
    (1, 1041, 0.018),
    (1, 2139, 0.026),
    (1, 4051, 0.039),
    (1, 7087, 0.065),
)


def fit_relative(rows: Sequence[tuple[int, int, float]]) -> tuple[float, float, float]:
    """Least-squares base, a, b of ``base + a·uncached + b·cached``, minimising relative error."""
    design = np.array([[1.0, float(uncached), float(cached)] for uncached, cached, _ in rows])
    seconds = np.array([t for _, _, t in rows])
    weights = 1.0 / seconds
    coef = np.linalg.lstsq(design * weights[:, None], seconds * weights, rcond=None)[0]
    return float(coef[0]), float(coef[1]), float(coef[2])


# ≈ base 4.4e-3 s, a 5.07e-3 s/token (~197 tok/s), b 8.0e-6 s/token. The linear form cannot
# follow attention's growth with context: cold rows come out +27% (0.6k) to -36% (7k), append
# rows +15% to -47%, identical-prompt rows within ±8%; at 2k: +3%, -12% and +3%.
_LLAMACPP_BASE_S, _LLAMACPP_PER_UNCACHED_S, _LLAMACPP_PER_CACHED_S = fit_relative(_LLAMACPP_ROWS)

LLAMACPP_PROFILE: Final[LatencyProfile] = LatencyProfile(
    base_s=_LLAMACPP_BASE_S,
    per_uncached_s=_LLAMACPP_PER_UNCACHED_S,
    per_cached_s=_LLAMACPP_PER_CACHED_S,
    noise_sigma=0.05,  # the measured min-max spread is within a few percent of the medians
    source=(
        "measured: llama-cpp-python 0.3.36, SmolLM2-135M Q4_1, 2 threads, 2-vCPU x86-64 CPU: "
        "relative least squares over the 15 cold / append / identical-prompt rows, 0.6k-7k tokens; sigma 0.05"
    ),
)


# ---------------------------------------------------------------------------------------------
# Prices (USD per million tokens)

# OpenAI, https://openai.com/api/pricing: (input, cached input, output). gpt-4o's and gpt-4.1's
# cached prices are also in the cookbook's Prompt Caching 201 table.
_OPENAI_PRICES: Final[dict[str, tuple[float, float, float]]] = {
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1": (2.00, 0.50, 8.00),
}
_OPENAI_DEFAULT_PRICE: Final[str] = "gpt-4o-mini"

# Anthropic (base input, output). Base input prices from the prompt-caching page (snapshot
# 2026-08-21); output prices from https://platform.claude.com/docs/en/about-claude/pricing.
# Opus 4.6-5 and Sonnet 5 outputs are taken at 5x input, the ratio of every listed Claude model.
# The first pattern found in the model name wins; unknown models use Sonnet 4.6's prices.
_ANTHROPIC_PRICES: Final[tuple[tuple[str, tuple[float, float]], ...]] = (
    ("sonnet-4-6", (3.00, 15.00)),
    ("sonnet-4-5", (3.00, 15.00)),
    ("sonnet-5", (2.00, 10.00)),
    ("haiku-4-5", (1.00, 5.00)),
    ("opus-4-5", (5.00, 25.00)),
    ("opus-4-6", (5.00, 25.00)),
    ("opus-4-7", (5.00, 25.00)),
    ("opus-4-8", (5.00, 25.00)),
    ("opus-5", (5.00, 25.00)),
)
_ANTHROPIC_DEFAULT_PRICE: Final[tuple[float, float]] = (3.00, 15.00)
# "5-minute cache write tokens are 1.25 times the base input tokens price"; "1-hour cache write
# tokens are 2 times"; "Cache read tokens are 0.1 times" (Anthropic prompt-caching page).
ANTHROPIC_WRITE_5M: Final[float] = 1.25
"""Price of a 5-minute cache write, as a multiple of the base input price."""
ANTHROPIC_WRITE_1H: Final[float] = 2.0
"""Price of a 1-hour cache write, as a multiple of the base input price."""
ANTHROPIC_READ: Final[float] = 0.1
"""Price of a cache read, as a multiple of the base input price."""

_PER_TOKEN: Final[float] = 1e-6


def openai_price(model: str) -> tuple[float, float, float]:
    """USD per million tokens ``(input, cached input, output)`` for an OpenAI model (longest name prefix)."""
    best = ""
    for name in _OPENAI_PRICES:
        if model.startswith(name) and len(name) > len(best):
            best = name
    return _OPENAI_PRICES[best or _OPENAI_DEFAULT_PRICE]


def anthropic_price(model: str) -> tuple[float, float]:
    """USD per million tokens ``(base input, output)`` for an Anthropic model; cache rates are multiples."""
    for pattern, price in _ANTHROPIC_PRICES:
        if pattern in model:
            return price
    return _ANTHROPIC_DEFAULT_PRICE


# ---------------------------------------------------------------------------------------------
# Tokenising a request

# Structure ids outside o200k_base's ordinary ranks (all below 199,998), so encode_ordinary never
# produces them: every rendered block ends with _END and the token stream splits back into the
# same segments, which makes segment-level comparison exact.
_START: Final[int] = 200_264
_END: Final[int] = 200_265
_SEP: Final[int] = 200_266
_CALL: Final[int] = 200_267
_IMAGE: Final[int] = 200_268
_ORDINARY_IDS: Final[int] = 199_998
# An image is a fixed 85 tokens: OpenAI's flat cost of a low-detail image
# (https://platform.openai.com/docs/guides/vision). Its ids derive from the image's source, so
# different images differ and the same image matches.
_IMAGE_TOKENS: Final[int] = 85
_IMAGE_TYPES: Final[frozenset[str]] = frozenset({"image", "image_url", "input_image"})
_TEXT_TYPES: Final[frozenset[str]] = frozenset({"text", "input_text", "output_text"})

_DUMPS: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_MEMO_MAX: Final[int] = 200_000
_memo: dict[Hashable, Any] = {}
_encode_fn: Callable[[str], list[int]] | None = None


def _encoder() -> Callable[[str], list[int]]:
    global _encode_fn  # noqa: PLW0603 - set once per process
    if _encode_fn is None:
        encoding = load_encoding("o200k_base")
        if encoding is not None:
            _encode_fn = encoding.encode_ordinary
        else:
            warnings.warn(
                "o200k_base is not available offline; simulated prompts use an estimate of one token per "
                "4 characters (pip install quicktok-v1 for exact tokens)",
                TokenizerFallbackWarning,
                stacklevel=3,
            )
            _encode_fn = _estimate_encode
    return _encode_fn


def _estimate_encode(text: str) -> list[int]:
    return [_stable_int(text[i : i + 4]) % _ORDINARY_IDS for i in range(0, len(text), 4)]


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def _encode(text: str) -> list[int]:
    return _encoder()(text) if text else []


class _Seg:
    """The tokens of one rendered block, with a hash of them (equal tokens, equal hash)."""

    __slots__ = ("h", "n", "toks")

    def __init__(self, toks: Sequence[int]) -> None:
        self.toks: tuple[int, ...] = tuple(toks)
        self.n = len(self.toks)
        # Python's hash of a tuple of ints does not depend on PYTHONHASHSEED.
        self.h = hash(self.toks)


def _memoised(key: Hashable, build: Callable[..., _T], *args: Any) -> _T:
    """``build(*args)``, memoised under ``key`` (a structural key of the rendered value)."""
    try:
        value: _T | None = _memo.get(key)
    except TypeError:  # an unhashable leaf (an SDK object): fall back to its repr
        key = ("repr", repr(key))
        value = _memo.get(key)
    if value is None:
        value = build(*args)
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        _memo[key] = value
    return value


# Structural keys: cheap to build (long strings keep their cached hash) and exact: every value a
# rendering depends on is in the key, tagged so that a dict, a list and a leaf never collide.
_DICT: Final[str] = "\x00dict"
_LIST: Final[str] = "\x00list"


def _freeze(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if type(value) is dict or isinstance(value, Mapping):
        return (_DICT, *((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return (_LIST, *(_freeze(item) for item in value))
    if isinstance(value, (bool, float)):  # True == 1 == 1.0, but they render differently
        return (type(value).__name__, value)
    return value


def _block_key(block: Any) -> Any:
    """Key of one content block; a text block renders from its text and cache_control only."""
    if (type(block) is dict or isinstance(block, Mapping)) and block.get("type") == "text":
        control = block.get("cache_control")
        return ("text", block.get("text"), None if control is None else _freeze(control))
    return _freeze(block)


def _content_key(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, (list, tuple)):
        return (_LIST, *[_block_key(block) for block in content])
    return _freeze(content)


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping) and "cache_control" in value:
        return {k: v for k, v in value.items() if k != "cache_control"}
    return value


def _image_tokens(part: Any) -> list[int]:
    seeded = random.Random(_stable_int(_DUMPS(_without_cache_control(part))))
    return [_IMAGE, *(seeded.randrange(_ORDINARY_IDS) for _ in range(_IMAGE_TOKENS - 1))]


def _part_tokens(part: Any) -> list[int]:
    """Tokens of one content part or block (text, image, tool use, tool result, other)."""
    if isinstance(part, str):
        return _encode(part)
    if not isinstance(part, Mapping):
        return _encode(str(part))
    kind = part.get("type")
    if kind in _TEXT_TYPES:
        return _encode(str(part.get("text") or ""))
    if kind in _IMAGE_TYPES:
        return _image_tokens(part)
    if kind == "tool_use":
        arguments = _DUMPS(part.get("input") or {})
        return [_CALL, *_encode(f"{part.get('id', '')} {part.get('name', '')}"), _SEP, *_encode(arguments)]
    if kind == "tool_result":
        return [*_encode(str(part.get("tool_use_id", ""))), _SEP, *_content_tokens(part.get("content"))]
    return _encode(_DUMPS(_without_cache_control(part)))


def _content_tokens(content: Any) -> list[int]:
    if content is None:
        return []
    if isinstance(content, str):
        return _encode(content)
    if isinstance(content, Sequence):
        tokens: list[int] = []
        for part in content:
            tokens += _part_tokens(part)
        return tokens
    return _part_tokens(content)


def _header(role: str) -> list[int]:
    return [_START, *_encode(role), _SEP]


def _openai_message_seg(message: Mapping[str, Any]) -> _Seg:
    role = str(message.get("role") or "")
    name = message.get("name")
    tokens = _header(f"{role}:{name}" if isinstance(name, str) and name else role)
    tokens += _content_tokens(message.get("content"))
    for call in message.get("tool_calls") or ():
        arguments = get_field(call, "function", "arguments")
        tokens.append(_CALL)
        tokens += _encode(str(get_field(call, "function", "name") or ""))
        tokens.append(_SEP)
        tokens += _encode(arguments if isinstance(arguments, str) else _DUMPS(arguments or {}))
    tokens.append(_END)
    return _Seg(tokens)


def _tool_seg(tool: Any, first: bool) -> _Seg:
    return _Seg([*(_header("tools") if first else ()), *_encode(_DUMPS(_without_cache_control(tool))), _END])


_Marked = tuple[tuple[_Seg, str | None], ...]


def _ttl_of(block: Any) -> str | None:
    """The TTL of a block's ``cache_control``, ``None`` without one; ValueError when malformed."""
    if not isinstance(block, Mapping):
        return None
    control = block.get("cache_control")
    if control is None:
        return None
    return _parse_cache_control(control)


def _parse_cache_control(control: Any) -> str:
    if not isinstance(control, Mapping) or control.get("type") != "ephemeral":
        raise ValueError(f"cache_control must be {{'type': 'ephemeral'}}, not {control!r}")
    ttl = control.get("ttl", "5m")
    if ttl not in _TTL_SECONDS:
        raise ValueError(f"cache_control.ttl must be '5m' or '1h', not {ttl!r}")
    return str(ttl)


def _blocks_seg(role: str, blocks: Sequence[Any]) -> _Marked:
    """One segment per block, the role header on the first; with each block's breakpoint TTL."""
    out: list[tuple[_Seg, str | None]] = []
    for index, block in enumerate(blocks):
        tokens = _header(role) if index == 0 else []
        tokens += _part_tokens(block)
        tokens.append(_END)
        out.append((_Seg(tokens), _ttl_of(block)))
    return tuple(out)


def _marked_tool(tool: Any, first: bool) -> tuple[_Seg, str | None]:
    return _tool_seg(tool, first), _ttl_of(tool)


def _marked_message(message: Mapping[str, Any]) -> _Marked:
    return _blocks_seg(str(message.get("role") or ""), _as_blocks(message.get("content")))


def _as_blocks(content: Any) -> Sequence[Any]:
    if isinstance(content, Sequence) and not isinstance(content, str) and content:
        return content
    return [content if content is not None else ""]


def _render_openai(request: Mapping[str, Any]) -> list[_Seg]:
    segs: list[_Seg] = []
    for index, tool in enumerate(request.get("tools") or ()):
        first = index == 0
        segs.append(_memoised(("openai-tool", first, _freeze(tool)), _tool_seg, tool, first))
    for message in request.get("messages") or ():
        calls = message.get("tool_calls")
        key = (
            "openai-message",
            message.get("role"),
            message.get("name"),
            _content_key(message.get("content")),
            _freeze(calls) if calls else None,
        )
        segs.append(_memoised(key, _openai_message_seg, message))
    return segs


def _render_anthropic(request: Mapping[str, Any]) -> tuple[list[_Seg], list[tuple[int, str]]]:
    """Segments (one per block) and breakpoints ``(block index, ttl)`` in tools → system → messages order."""
    marked: list[tuple[_Seg, str | None]] = []
    for index, tool in enumerate(request.get("tools") or ()):
        first = index == 0
        marked.append(_memoised(("anthropic-tool", first, _freeze(tool)), _marked_tool, tool, first))
    system = request.get("system")
    if system:
        marked += _memoised(("anthropic-system", _content_key(system)), _blocks_seg, "system", _as_blocks(system))
    for message in request.get("messages") or ():
        key = ("anthropic-message", message.get("role"), _content_key(message.get("content")))
        marked += _memoised(key, _marked_message, message)
    segs = [seg for seg, _ in marked]
    breakpoints = [(index, ttl) for index, (_, ttl) in enumerate(marked) if ttl is not None]
    return segs, breakpoints


_KINDS: Final[frozenset[str]] = frozenset({"openai", "anthropic", "vllm", "llamacpp"})


def prompt_tokens(request: Mapping[str, Any], provider_kind: str) -> list[int]:
    """The token sequence a provider's prefix cache sees for a request.

    Tools, then the system prompt (Anthropic's top-level ``system``), then each message: a role
    header, the content (text, tool calls with name and arguments, tool results, images as an
    85-token placeholder) and an end marker. ``cache_control`` markers are ignored. Text is
    encoded with ``o200k_base``; structure tokens use ids outside its ordinary vocabulary.

    Args:
        request: the request as passed to the official client.
        provider_kind: ``"openai"``, ``"vllm"`` or ``"llamacpp"`` (the Chat Completions shape) or
            ``"anthropic"`` (the Messages shape).

    Returns:
        The token ids, in cache order.

    Raises:
        ConfigurationError: ``provider_kind`` is unknown.
    """
    if provider_kind not in _KINDS:
        raise ConfigurationError(f"provider_kind must be one of {sorted(_KINDS)}, not {provider_kind!r}")
    segs = _render_anthropic(request)[0] if provider_kind == "anthropic" else _render_openai(request)
    return [token for seg in segs for token in seg.toks]


class _Prompt:
    """A rendered prompt: its segments, chained prefix hashes and cumulative token ends."""

    __slots__ = ("chain", "ends", "segs", "total")

    def __init__(self, segs: list[_Seg]) -> None:
        self.segs = segs
        chain: list[int] = []
        ends: list[int] = []
        h = 0
        total = 0
        for seg in segs:
            h = hash((h, seg.h))
            chain.append(h)
            total += seg.n
            ends.append(total)
        self.chain = chain
        self.ends = ends
        self.total = total

    def end_of(self, count: int) -> int:
        """Tokens in the first ``count`` segments."""
        return self.ends[count - 1] if count else 0

    def head(self, n: int) -> tuple[int, ...]:
        """The first ``n`` tokens."""
        out: list[int] = []
        for seg in self.segs:
            out += seg.toks[: n - len(out)]
            if len(out) >= n:
                break
        return tuple(out)

    def extended(self, seg: _Seg) -> _Prompt:
        """This prompt with one more segment."""
        return _Prompt([*self.segs, seg])


def _common_segments(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two chained-hash lists (binary search: a chain is a prefix code)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] == b[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _common_tokens(a: Iterable[int], b: Iterable[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def _lcp(a: _Prompt, b: _Prompt) -> int:
    """Longest common token prefix: equal segments by hash, then token by token from the first difference."""
    same = _common_segments(a.chain, b.chain)
    rest_a = itertools.chain.from_iterable(seg.toks for seg in a.segs[same:])
    rest_b = itertools.chain.from_iterable(seg.toks for seg in b.segs[same:])
    return a.end_of(same) + _common_tokens(rest_a, rest_b)


# ---------------------------------------------------------------------------------------------
# Providers


@dataclass(slots=True)
class _Served:
    """The cache outcome of one request, before output, TTFT and cost."""

    input_tokens: int
    cached_tokens: int
    write_5m: int = 0
    write_1h: int = 0

    @property
    def uncached(self) -> int:
        return self.input_tokens - self.cached_tokens


_SWEEP_EVERY: Final[int] = 512


class SimulatedProvider(abc.ABC):
    """A provider's prompt cache, simulated on virtual time.

    Subclasses implement the provider's cache rule; :meth:`send` adds output tokens, time to
    first token and cost::

        provider = SimulatedOpenAI(seed=7)
        result = provider.send({"model": "gpt-4o-mini", "messages": messages}, now=12.5)

    Args:
        profile: the latency profile (default: the provider's own, e.g. :data:`OPENAI_PROFILE`).
        seed: seed of the TTFT noise generator.
        output_tokens: tokens generated per request (capped by the request's ``max_tokens``).

    Raises:
        ConfigurationError: ``output_tokens`` is negative or ``profile`` is not a
            :class:`LatencyProfile`.

    Attributes:
        name: the provider's name, as accepted by :func:`make_provider`.
        profile: the latency profile in use.
        seed: the noise seed.
        output_tokens: tokens generated per request.
    """

    name: ClassVar[str] = "custom"
    default_profile: ClassVar[LatencyProfile] = OPENAI_PROFILE

    def __init__(self, *, profile: LatencyProfile | None = None, seed: int = 0, output_tokens: int = 40) -> None:
        if profile is not None and not isinstance(profile, LatencyProfile):
            raise ConfigurationError(f"profile must be a LatencyProfile, not {type(profile).__name__}")
        if not isinstance(output_tokens, int) or isinstance(output_tokens, bool) or output_tokens < 0:
            raise ConfigurationError(f"output_tokens must be an integer >= 0, not {output_tokens!r}")
        self.profile: LatencyProfile = profile if profile is not None else self.default_profile
        self.seed = seed
        self.output_tokens = output_tokens
        self._rng = np.random.default_rng(seed)
        self._sends = 0
        self._clear()

    def send(self, request: Mapping[str, Any], now: float) -> SimResult:
        """Serve one request at virtual time ``now``.

        Args:
            request: the keyword arguments of the official client's create call.
            now: virtual time of the request's start, in seconds.

        Returns:
            The provider-shaped response, TTFT, normalised token counts and cost.

        Raises:
            TypeError: ``request`` is not a mapping.
            ValueError: ``now`` is not finite, or the provider would reject the request (400).
        """
        if not isinstance(request, Mapping):
            raise TypeError(f"request must be a mapping, not {type(request).__name__}")
        now = float(now)
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, not {now!r}")
        self._sends += 1
        if self._sends % _SWEEP_EVERY == 0:
            self._sweep(now)
        served = self._serve(request, now)
        output = self._output(request)
        ttft = self.profile.sample(served.uncached, served.cached_tokens, self._rng)
        model = str(request.get("model") or "")
        return SimResult(
            response=self._response(model, served, output, ttft),
            ttft_s=ttft,
            input_tokens=served.input_tokens,
            cached_tokens=served.cached_tokens,
            cache_write_tokens=served.write_5m + served.write_1h,
            cost_usd=self._cost(model, served, output),
        )

    def reset(self) -> None:
        """Empty the cache and restart the noise generator from the seed."""
        self._rng = np.random.default_rng(self.seed)
        self._sends = 0
        self._clear()

    def _output(self, request: Mapping[str, Any]) -> int:
        output = self.output_tokens
        for key in ("max_tokens", "max_completion_tokens"):
            cap = request.get(key)
            if isinstance(cap, int) and not isinstance(cap, bool):
                output = min(output, max(cap, 0))
        return output

    def _sweep(self, now: float) -> None:  # noqa: B027 - optional hook
        """Drop expired cache entries (called every few hundred sends)."""

    @abc.abstractmethod
    def _clear(self) -> None:
        """Empty the cache."""

    @abc.abstractmethod
    def _serve(self, request: Mapping[str, Any], now: float) -> _Served:
        """Apply the cache rule: look the prompt up, then record what this request cached."""

    @abc.abstractmethod
    def _response(self, model: str, served: _Served, output: int, ttft: float) -> dict[str, Any]:
        """The provider-shaped response dict."""

    def _cost(self, model: str, served: _Served, output: int) -> float:
        """Cost in USD (self-hosted engines: 0)."""
        return 0.0


def _openai_usage(served: _Served, output: int, *, details: bool = True) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": served.input_tokens,
        "completion_tokens": output,
        "total_tokens": served.input_tokens + output,
    }
    if details:
        usage["prompt_tokens_details"] = {"cached_tokens": served.cached_tokens}
    return usage


def _option(request: Mapping[str, Any], key: str) -> Any:
    """A request option, top-level or inside ``extra_body`` (how older SDKs pass new fields)."""
    value = request.get(key)
    if value is None:
        extra = request.get("extra_body")
        if isinstance(extra, Mapping):
            value = extra.get(key)
    return value


# -- OpenAI -----------------------------------------------------------------------------------
# https://developers.openai.com/api/docs/guides/prompt-caching:
# "Caching is enabled automatically for prompts that are 1024 tokens or longer."
OPENAI_MIN_TOKENS: Final[int] = 1024
# "Cache hits occur in increments of 128 tokens."
OPENAI_INCREMENT: Final[int] = 128
# "Requests are routed to a machine based on a hash of the initial prefix of the prompt. The hash
# typically uses the first 256 tokens"; "When you provide prompt_cache_key, it is combined with
# the prefix hash".
OPENAI_ROUTING_TOKENS: Final[int] = 256
# in_memory: "cached prefixes generally remain active for 5 to 10 minutes of inactivity, up to a
# maximum of one hour" (the lower end, 5 minutes, is simulated); 24h: "up to a maximum of 24 hours".
_RETENTION: Final[dict[str, tuple[float, float]]] = {
    "in_memory": (300.0, 3600.0),
    "24h": (86_400.0, 86_400.0),
}


class _Node:
    """A cached prompt segment on an OpenAI machine (a node of the bucket's prefix tree)."""

    __slots__ = ("children", "created", "idle_s", "last_used", "max_age_s", "parent", "seg")

    def __init__(self, seg: _Seg | None, parent: _Node | None, now: float, idle_s: float, max_age_s: float) -> None:
        self.seg = seg
        self.parent = parent
        self.created = now
        self.last_used = now
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.children: list[_Node] = []

    def alive(self, now: float) -> bool:
        return now - self.last_used < self.idle_s and now - self.created < self.max_age_s


class SimulatedOpenAI(SimulatedProvider):
    """OpenAI Chat Completions' automatic prompt caching.

    * Prompts shorter than 1,024 tokens are neither cached nor served from the cache.
    * Routing: a cached prefix lives in a bucket keyed by the model, a hash of the first 256
      prompt tokens and ``prompt_cache_key``; another key or another start misses.
    * A hit is the longest prefix shared with any live cached prompt of the bucket, reported as
      ``floor(match / 128) · 128`` in ``usage.prompt_tokens_details.cached_tokens``.
    * Retention (``prompt_cache_retention``, top-level or in ``extra_body``): ``"in_memory"``
      (the default here) keeps a prefix 300 s after its last use (documented: 5-10 minutes)
      and at most 1 h after it was first cached; ``"24h"`` keeps it 24 h. Using a prefix
      refreshes it.
    * Cost: input at the model's price, cached tokens at the cached price, output at the output
      price (gpt-4o-mini's prices for unknown models). Writes cost nothing extra.

    Not modelled: overflow to other machines beyond ~15 requests per minute per prefix and key,
    and the GPT-5.6 explicit-breakpoint mode.
    """

    name: ClassVar[str] = "openai"
    default_profile: ClassVar[LatencyProfile] = OPENAI_PROFILE

    def _clear(self) -> None:
        # Per routing bucket: the root of its prefix tree and its nodes by chained segment hash.
        self._roots: dict[int, _Node] = {}
        self._trees: dict[int, dict[int, _Node]] = {}

    def _serve(self, request: Mapping[str, Any], now: float) -> _Served:
        retention = _option(request, "prompt_cache_retention") or "in_memory"
        if retention not in _RETENTION:
            raise ValueError(f"prompt_cache_retention must be 'in_memory' or '24h', not {retention!r}")
        idle_s, max_age_s = _RETENTION[retention]
        prompt = _Prompt(_render_openai(request))
        total = prompt.total
        if total < OPENAI_MIN_TOKENS:
            return _Served(total, 0)
        key = _option(request, "prompt_cache_key")
        model = str(request.get("model") or "")
        bucket = hash((model, prompt.head(OPENAI_ROUTING_TOKENS), None if key is None else str(key)))
        root = self._roots.get(bucket)
        if root is None:
            root = self._roots[bucket] = _Node(None, None, now, math.inf, math.inf)
            self._trees[bucket] = {}
        tree = self._trees[bucket]
        segs, chain = prompt.segs, prompt.chain
        # Whole segments along the tree while they are live, refreshing them (they are used).
        parent = root
        matched = 0
        for h in chain:
            node = tree.get(h)
            if node is None or not node.alive(now):
                break
            node.last_used = now
            node.idle_s, node.max_age_s = idle_s, max_age_s
            if node.parent is not parent:  # its parent expired and was swept, then cached again
                node.parent = parent
                parent.children.append(node)
            parent = node
            matched += 1
        # Then token by token into the live child sharing most of the first differing segment.
        match = prompt.end_of(matched)
        if matched < len(segs):
            toks = segs[matched].toks
            shared = [
                _common_tokens(child.seg.toks, toks)
                for child in parent.children
                if child.seg is not None and child.alive(now)
            ]
            match += max(shared, default=0)
        # The rest of the prompt is cached on this machine too.
        for seg, h in zip(segs[matched:], chain[matched:], strict=True):
            node = tree.get(h)
            if node is None:
                node = tree[h] = _Node(seg, parent, now, idle_s, max_age_s)
                parent.children.append(node)
            else:
                # Everything after the first miss is computed again: a fresh entry from now, even
                # where an older copy of the segment outlived its expired ancestor.
                node.created = now
                node.last_used = now
                node.idle_s, node.max_age_s = idle_s, max_age_s
                if node.parent is not parent:
                    node.parent = parent
                    parent.children.append(node)
            parent = node
        cached = match // OPENAI_INCREMENT * OPENAI_INCREMENT if match >= OPENAI_MIN_TOKENS else 0
        return _Served(total, cached)

    def _sweep(self, now: float) -> None:
        for bucket, tree in list(self._trees.items()):
            live = {h: node for h, node in tree.items() if node.alive(now)}
            if not live:
                del self._trees[bucket], self._roots[bucket]
                continue
            self._trees[bucket] = live
            kept = {id(node) for node in live.values()}
            for node in (self._roots[bucket], *live.values()):
                node.children = [child for child in node.children if id(child) in kept]

    def _response(self, model: str, served: _Served, output: int, ttft: float) -> dict[str, Any]:
        return {"model": model, "usage": _openai_usage(served, output)}

    def _cost(self, model: str, served: _Served, output: int) -> float:
        price_in, price_cached, price_out = openai_price(model)
        return (served.uncached * price_in + served.cached_tokens * price_cached + output * price_out) * _PER_TOKEN


# -- Anthropic --------------------------------------------------------------------------------
# https://platform.claude.com/docs/en/build-with-claude/prompt-caching (snapshot 2026-08-21):
# "The lookback window is 20 blocks. The system checks at most 20 positions per breakpoint,
# counting the breakpoint itself as the first."
ANTHROPIC_LOOKBACK_BLOCKS: Final[int] = 20
# "You can define up to 4 cache breakpoints"
ANTHROPIC_MAX_BREAKPOINTS: Final[int] = 4
# Default TTL 5 minutes; {"type": "ephemeral", "ttl": "1h"} for an hour. "The lifetime is measured
# from the start of the request that writes or reads the cache entry".
_TTL_SECONDS: Final[dict[str, float]] = {"5m": 300.0, "1h": 3600.0}


class _Entry:
    """A cache entry at one block boundary."""

    __slots__ = ("expires", "ttl_s")

    def __init__(self, expires: float, ttl_s: float) -> None:
        self.expires = expires
        self.ttl_s = ttl_s


class SimulatedAnthropic(SimulatedProvider):
    """Anthropic Messages prompt caching with explicit breakpoints.

    * Blocks, in cache order: each tool, each system block (a string system is one block), each
      message content block (a string content is one block). A block with ``cache_control`` is a
      breakpoint; a top-level ``cache_control`` puts one on the last block (automatic caching).
    * Read: for each breakpoint, the positions from the breakpoint back to 19 blocks before it
      are checked for a live entry that an earlier request wrote at exactly that prefix; the hit
      is the longest found over all breakpoints.
    * Write: an entry at each breakpoint whose prefix has at least the model's minimum tokens
      (:func:`~llmvoice.adapters.anthropic_min_cacheable_tokens`). An entry lives 5 minutes (or
      1 hour) from the start of the request that last wrote or read it.
    * Usage: ``cache_read_input_tokens`` = the hit; ``cache_creation_input_tokens`` = tokens from
      the hit to the last breakpoint (0 when that prefix is below the minimum), split into
      ``cache_creation.ephemeral_1h_input_tokens`` (up to the last 1-hour breakpoint) and
      ``ephemeral_5m_input_tokens``; ``input_tokens`` = the rest.
    * More than 4 breakpoints, a 5-minute breakpoint before a 1-hour one, or a malformed
      ``cache_control`` raise :class:`ValueError`, as the API answers 400.
    * Cost: base input price, writes at 1.25x (5 min) or 2x (1 h), reads at 0.1x, plus output.

    Not modelled: invalidation by ``tool_choice``, thinking or other non-prompt parameters, and
    concurrent requests (an entry is usable by the next request at once).
    """

    name: ClassVar[str] = "anthropic"
    default_profile: ClassVar[LatencyProfile] = ANTHROPIC_PROFILE

    def _clear(self) -> None:
        self._entries: dict[tuple[str, int], _Entry] = {}

    def _serve(self, request: Mapping[str, Any], now: float) -> _Served:
        segs, breakpoints = _render_anthropic(request)
        auto = request.get("cache_control")
        if auto is not None and segs:
            ttl = _parse_cache_control(auto)
            last = len(segs) - 1
            if breakpoints and breakpoints[-1][0] == last:
                if breakpoints[-1][1] != ttl:
                    raise ValueError("the last block's cache_control has a different TTL from the top-level one")
            else:
                breakpoints.append((last, ttl))
        if len(breakpoints) > ANTHROPIC_MAX_BREAKPOINTS:
            raise ValueError(
                f"A maximum of {ANTHROPIC_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {len(breakpoints)}."
            )
        shorter_seen = False
        for _, ttl in breakpoints:
            if ttl == "5m":
                shorter_seen = True
            elif shorter_seen:
                raise ValueError("a ttl='1h' cache_control block must not come after a ttl='5m' one")
        prompt = _Prompt(segs)
        total = prompt.total
        if not breakpoints:
            return _Served(total, 0)
        model = str(request.get("model") or "")
        minimum = anthropic_min_cacheable_tokens(model)
        entries = self._entries
        # Read: the longest live entry within the lookback window of any breakpoint.
        hit_index = -1
        hit_entry: _Entry | None = None
        for index, _ in breakpoints:
            for position in range(index, max(index - ANTHROPIC_LOOKBACK_BLOCKS, -1), -1):
                if position <= hit_index:
                    break
                entry = entries.get((model, prompt.chain[position]))
                if entry is not None and now < entry.expires:
                    hit_index, hit_entry = position, entry
                    break
        read = prompt.end_of(hit_index + 1)
        if hit_entry is not None:
            hit_entry.expires = now + hit_entry.ttl_s
        # Write: an entry at every breakpoint whose prefix is cacheable.
        last_1h = read
        for index, ttl in breakpoints:
            end = prompt.ends[index]
            if end < minimum:
                continue
            ttl_s = _TTL_SECONDS[ttl]
            key = (model, prompt.chain[index])
            entry = entries.get(key)
            if entry is None or now >= entry.expires:
                entries[key] = _Entry(now + ttl_s, ttl_s)
            else:
                entry.ttl_s = max(entry.ttl_s, ttl_s)
                entry.expires = now + entry.ttl_s
            if ttl == "1h":
                last_1h = max(last_1h, end)
        last_end = prompt.ends[breakpoints[-1][0]]
        if last_end < minimum or last_end <= read:
            return _Served(total, read)
        return _Served(total, read, write_5m=last_end - last_1h, write_1h=last_1h - read)

    def _sweep(self, now: float) -> None:
        self._entries = {key: entry for key, entry in self._entries.items() if now < entry.expires}

    def _response(self, model: str, served: _Served, output: int, ttft: float) -> dict[str, Any]:
        written = served.write_5m + served.write_1h
        usage = {
            "input_tokens": served.input_tokens - served.cached_tokens - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": served.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": served.write_5m,
                "ephemeral_1h_input_tokens": served.write_1h,
            },
            "output_tokens": output,
        }
        return {"model": model, "usage": usage}

    def _cost(self, model: str, served: _Served, output: int) -> float:
        base, price_out = anthropic_price(model)
        plain = served.input_tokens - served.cached_tokens - served.write_5m - served.write_1h
        input_units = (
            plain
            + served.cached_tokens * ANTHROPIC_READ
            + served.write_5m * ANTHROPIC_WRITE_5M
            + served.write_1h * ANTHROPIC_WRITE_1H
        )
        return (input_units * base + output * price_out) * _PER_TOKEN


# -- vLLM -------------------------------------------------------------------------------------
# https://docs.vllm.ai/en/latest/design/prefix_caching/: "we hash each kv-cache block
# by the tokens in the block and the tokens in the prefix before the block"; "We only cache full
# blocks"; block size 16 for standard transformer models.
VLLM_BLOCK_TOKENS: Final[int] = 16
# Default capacity: 200k tokens of KV cache (12,500 blocks), an assumption for one GPU.
VLLM_DEFAULT_CAPACITY_TOKENS: Final[int] = 200_000
_VLLM_MEMO_MAX: Final[int] = 500_000


class SimulatedVLLM(SimulatedProvider):
    """vLLM's automatic prefix caching (16-token blocks, LRU eviction).

    * Only full 16-token blocks are cached; block hash = hash(parent block hash, block tokens),
      so a block matches only with its whole prefix. ``extra_body.cache_salt`` (or a top-level
      ``cache_salt``) is mixed into the first block's hash, isolating tenants.
    * A hit is 16 x the number of leading prompt blocks in the cache. When the whole prompt is
      cached the last token is recomputed to get logits (vLLM v1's ``get_computed_blocks``), so
      at most ``(prompt_tokens - 1) // 16`` blocks are hits.
    * After a request its blocks become most recently used in reverse order (the last block of
      a request is evicted first, as vLLM frees blocks in reverse); the least recently used
      blocks are evicted beyond the capacity.
    * Usage as OpenAI (``usage.prompt_tokens_details.cached_tokens``, served with
      ``--enable-prompt-tokens-details``); self-hosted, so the cost is 0.

    Not modelled: caching of generated tokens, batching between concurrent requests.

    Args:
        capacity_tokens: KV-cache capacity in tokens (rounded down to whole blocks, at least one).
        profile: the latency profile (default :data:`VLLM_PROFILE`).
        seed: seed of the TTFT noise generator.
        output_tokens: tokens generated per request.

    Raises:
        ConfigurationError: ``capacity_tokens`` is below one block.
    """

    name: ClassVar[str] = "vllm"
    default_profile: ClassVar[LatencyProfile] = VLLM_PROFILE

    def __init__(
        self,
        *,
        capacity_tokens: int = VLLM_DEFAULT_CAPACITY_TOKENS,
        profile: LatencyProfile | None = None,
        seed: int = 0,
        output_tokens: int = 40,
    ) -> None:
        if not isinstance(capacity_tokens, int) or capacity_tokens < VLLM_BLOCK_TOKENS:
            raise ConfigurationError(f"capacity_tokens must be at least {VLLM_BLOCK_TOKENS}, not {capacity_tokens!r}")
        self.capacity_tokens = capacity_tokens
        self._capacity_blocks = capacity_tokens // VLLM_BLOCK_TOKENS
        super().__init__(profile=profile, seed=seed, output_tokens=output_tokens)

    def _clear(self) -> None:
        self._blocks: OrderedDict[int, None] = OrderedDict()
        # Block hashes completed in each prompt segment, keyed by (salt, chained segment hash):
        # the state after a segment depends only on the prefix up to it.
        self._memo: dict[tuple[str | None, int], tuple[tuple[int, ...], int, tuple[int, ...]]] = {}

    def _block_hashes(self, prompt: _Prompt, salt: str | None) -> list[int]:
        memo = self._memo
        if len(memo) > _VLLM_MEMO_MAX:
            memo.clear()
        parent = hash(("cache_salt", salt)) if salt is not None else 0
        tail: tuple[int, ...] = ()
        hashes: list[int] = []
        for seg, h in zip(prompt.segs, prompt.chain, strict=False):
            state = memo.get((salt, h))
            if state is None:
                toks = tail + seg.toks
                full = len(toks) - len(toks) % VLLM_BLOCK_TOKENS
                done: list[int] = []
                for start in range(0, full, VLLM_BLOCK_TOKENS):
                    parent = hash((parent, toks[start : start + VLLM_BLOCK_TOKENS]))
                    done.append(parent)
                state = memo[(salt, h)] = (tuple(done), parent, toks[full:])
            hashes += state[0]
            parent, tail = state[1], state[2]
        return hashes

    def _serve(self, request: Mapping[str, Any], now: float) -> _Served:
        prompt = _Prompt(_render_openai(request))
        salt = _option(request, "cache_salt")
        hashes = self._block_hashes(prompt, None if salt is None else str(salt))
        blocks = self._blocks
        usable = max(prompt.total - 1, 0) // VLLM_BLOCK_TOKENS
        hit = 0
        for h in hashes[:usable]:
            if h not in blocks:
                break
            hit += 1
        for h in reversed(hashes):
            if h in blocks:
                blocks.move_to_end(h)
            else:
                blocks[h] = None
        while len(blocks) > self._capacity_blocks:
            blocks.popitem(last=False)
        return _Served(prompt.total, hit * VLLM_BLOCK_TOKENS)

    def _response(self, model: str, served: _Served, output: int, ttft: float) -> dict[str, Any]:
        return {"model": model, "usage": _openai_usage(served, output)}


# -- llama.cpp --------------------------------------------------------------------------------
# llama-cpp-python 0.3.36 (measured, see LLAMACPP_PROFILE): llama.cpp keeps one slot and
# reuses "the longest common prefix" of the previous call's prompt plus its generated tokens;
# "If the whole prompt matches, it replays 1 token." Decode: "~12 ms per token".
_LLAMACPP_DECODE_S: Final[float] = 0.012


class SimulatedLlamaCpp(SimulatedProvider):
    """llama.cpp's single-slot prompt cache (``cache_prompt``).

    * The slot holds the previous request's prompt tokens followed by the tokens it generated.
      Generated tokens are a fixed pseudo-random sequence derived from the request's prompt, so
      the next prompt — which renders the assistant reply through the chat template — does not
      match them.
    * A hit is the longest common token prefix of the new prompt with the slot; when the whole
      prompt matches, 1 token is evaluated again. Only the immediately previous request counts:
      two alternating conversations evict each other.
    * ``extra_body.cache_prompt`` (or a top-level ``cache_prompt``) set to false disables reuse.
    * Usage like the server: ``usage`` without ``prompt_tokens_details``, and ``timings`` with
      ``prompt_n`` (tokens evaluated) and ``cache_n`` (tokens reused). Self-hosted: cost 0.
    """

    name: ClassVar[str] = "llamacpp"
    default_profile: ClassVar[LatencyProfile] = LLAMACPP_PROFILE
    #: One slot serves one request at a time (the benchmark runner queues behind background work).
    serial: ClassVar[bool] = True

    def _clear(self) -> None:
        self._slot: _Prompt | None = None

    def _serve(self, request: Mapping[str, Any], now: float) -> _Served:
        prompt = _Prompt(_render_openai(request))
        total = prompt.total
        cached = 0
        if self._slot is not None and _option(request, "cache_prompt") is not False and total:
            cached = min(_lcp(self._slot, prompt), total - 1)
        seed = prompt.chain[-1] if prompt.chain else 0
        generator = random.Random(seed)
        generated = _Seg([generator.randrange(_ORDINARY_IDS) for _ in range(self._output(request))])
        self._slot = prompt.extended(generated)
        return _Served(total, cached)

    def _response(self, model: str, served: _Served, output: int, ttft: float) -> dict[str, Any]:
        evaluated = served.uncached
        prompt_ms = ttft * 1000.0
        predicted_ms = output * _LLAMACPP_DECODE_S * 1000.0
        timings = {
            "cache_n": served.cached_tokens,
            "prompt_n": evaluated,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / evaluated if evaluated else 0.0,
            "prompt_per_second": evaluated / ttft if ttft > 0 else 0.0,
            "predicted_n": output,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": _LLAMACPP_DECODE_S * 1000.0 if output else 0.0,
            "predicted_per_second": 1.0 / _LLAMACPP_DECODE_S if output else 0.0,
        }
        return {"model": model, "usage": _openai_usage(served, output, details=False), "timings": timings}


_PROVIDERS: Final[dict[str, type[SimulatedProvider]]] = {
    "openai": SimulatedOpenAI,
    "anthropic": SimulatedAnthropic,
    "vllm": SimulatedVLLM,
    "llamacpp": SimulatedLlamaCpp,
}


def make_provider(name: str, **kwargs: Any) -> SimulatedProvider:
    """Build a simulated provider by name.

    Args:
        name: ``"openai"``, ``"anthropic"``, ``"vllm"`` or ``"llamacpp"``.
        **kwargs: the provider's keyword arguments (``profile``, ``seed``, ``output_tokens``;
            ``capacity_tokens`` for vLLM).

    Returns:
        A fresh provider with an empty cache.

    Raises:
        ConfigurationError: ``name`` is unknown or an argument is invalid.
    """
    try:
        cls = _PROVIDERS[name]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown provider {name!r}; expected one of {', '.join(_PROVIDERS)}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"bad arguments for {name!r}: {exc}") from exc
