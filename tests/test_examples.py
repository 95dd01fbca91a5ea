"""The examples in examples/ run and show a context that only grows at its stable end."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_pipecat_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Five LLM calls; each one's history (before the dynamic context) starts the next one."""
    pytest.importorskip("pipecat")
    await _load("pipecat_pipeline").main()
    lines = [line.split("bytes: ", 1)[1] for line in capsys.readouterr().out.splitlines() if "bytes: " in line]
    stable = [line.split(" | system: Caller status")[0] for line in lines]
    assert len(lines) == 5
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(stable))


def test_livekit_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Three prepared contexts, the last with the whole conversation in cache order."""
    pytest.importorskip("livekit.agents")
    _load("livekit_agent").main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == (
        "system: You are Ava, the voice agent of Northwind. | user: question 0 | assistant: answer 0 | user: question 1"
        " | assistant: answer 1 | system: Caller status at turn 2: premium tier | user: question 2"
    )
