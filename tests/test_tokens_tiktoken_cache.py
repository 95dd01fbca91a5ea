from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry

from llmvoice import tokens
from llmvoice.errors import TokenizerFallbackWarning
from llmvoice.tokens import load_encoding, seed_tiktoken_cache

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network for tiktoken, and no encoding already loaded in its registry."""

    def no_network(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})


def test_writes_both_files_under_tiktoken_cache_keys(tmp_path: Path) -> None:
    directory = seed_tiktoken_cache(tmp_path / "cache")
    assert directory == tmp_path / "cache"
    assert sorted(p.name for p in directory.iterdir()) == sorted([key(O200K_URL), key(CL100K_URL)])
    assert hashlib.sha256((directory / key(O200K_URL)).read_bytes()).hexdigest() == O200K_SHA256
    assert hashlib.sha256((directory / key(CL100K_URL)).read_bytes()).hexdigest() == CL100K_SHA256


@pytest.mark.usefixtures("offline")
def test_unmodified_tiktoken_loads_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = seed_tiktoken_cache(str(tmp_path))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(directory))
    o200k = load_encoding("o200k_base")
    cl100k = load_encoding("cl100k_base")
    assert o200k is not None and cl100k is not None
    assert tiktoken.get_encoding("o200k_base").encode("hello world") == o200k.encode("hello world")
    assert tiktoken.get_encoding("cl100k_base").encode("hello world") == cl100k.encode("hello world")
    assert tiktoken.encoding_for_model("gpt-4o-mini").encode("Bonjour, ça va ?") == o200k.encode("Bonjour, ça va ?")


@pytest.mark.usefixtures("offline")
def test_default_directory_is_tiktoken_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "env"))
    assert seed_tiktoken_cache() == tmp_path / "env"
    assert tiktoken.get_encoding("o200k_base").encode("hello world") == [24912, 2375]


def test_data_gym_cache_dir_when_tiktoken_cache_dir_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(tmp_path / "gym"))
    assert seed_tiktoken_cache() == tmp_path / "gym"
    assert (tmp_path / "gym" / key(O200K_URL)).is_file()


def test_idempotent_and_valid_files_are_not_rewritten(tmp_path: Path) -> None:
    seed_tiktoken_cache(tmp_path)
    path = tmp_path / key(O200K_URL)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert seed_tiktoken_cache(tmp_path) == tmp_path
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([key(O200K_URL), key(CL100K_URL)])


def test_corrupt_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / key(CL100K_URL)
    path.write_bytes(b"not a tokenizer\n")
    seed_tiktoken_cache(tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CL100K_SHA256


def test_missing_encoding_warns_once_and_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(name: str) -> Any:
        return None

    monkeypatch.setattr(tokens, "load_encoding", unavailable)
    monkeypatch.setattr(tokens, "_seed_warned", set())
    with pytest.warns(TokenizerFallbackWarning) as caught:
        assert seed_tiktoken_cache(tmp_path / "a") == tmp_path / "a"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2  # one per encoding
    assert "o200k_base" in messages[0] and "cl100k_base" in messages[1]
    assert list((tmp_path / "a").iterdir()) == []
    seed_tiktoken_cache(tmp_path / "b")  # already warned: silent (warnings are errors here)


def test_disabled_cache_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    monkeypatch.setattr(tokens, "_seed_warned", set())
    with pytest.warns(TokenizerFallbackWarning, match="disabled"):
        assert seed_tiktoken_cache() == Path("")


def test_exported() -> None:
    assert "seed_tiktoken_cache" in tokens.__all__
