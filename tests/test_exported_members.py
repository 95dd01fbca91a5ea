"""The public surface: every exported name exists, is listed once and is documented."""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

import pytest

import llmvoice

PUBLIC_MODULES = [
    "llmvoice.messages",
    "llmvoice.state",
    "llmvoice.functional",
    "llmvoice.manager",
    "llmvoice.errors",
    "llmvoice.adapters",
    "llmvoice.testing",
    "llmvoice.tokens",
    "llmvoice.compaction",
    "llmvoice.compaction.base",
    "llmvoice.compaction.custom",
    "llmvoice.compaction.masking",
    "llmvoice.compaction.semantic",
    "llmvoice.compaction.summarise",
    "llmvoice.compaction.window",
    "llmvoice.control",
    "llmvoice.integrations",
    "llmvoice.store",
    "llmvoice.store.base",
    "llmvoice.store.memory",
    "llmvoice.store.redis",
    "llmvoice.store.saver",
    "llmvoice.store.sqlite",
    "llmvoice.integrations.livekit",
    "llmvoice.integrations.pipecat",
    "llmvoice.control.controller",
    "llmvoice.control.measure",
    "llmvoice.control.model",
    "llmvoice.control.planner",
    "llmvoice.control.stats",
    "llmvoice.control.wrap",
    "llmvoice.benchmark.base",
    "llmvoice.benchmark.cli",
    "llmvoice.benchmark.contenders",
    "llmvoice.benchmark.live",
    "llmvoice.benchmark.local",
    "llmvoice.benchmark.metrics",
    "llmvoice.benchmark.report",
    "llmvoice.benchmark.runner",
    "llmvoice.benchmark.scenarios",
    "llmvoice.benchmark.simulate",
    "llmvoice.benchmark.summarizer",
]


def _isort_key(name: str) -> tuple[int, list[Any]]:
    """Ruff RUF022's isort-style order: SCREAMING_CASE, then CamelCase, then the rest; natural order within."""
    if name.isupper() and len(name) > 1:
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return (group, natural)


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _has_own_docstring(obj: Any) -> bool:
    doc = obj.__doc__
    if not doc or not doc.strip():
        return False
    # dataclasses invent "Name(field, ...)" when a class has no docstring
    return not (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("))


def _undocumented(module: ModuleType) -> list[str]:
    missing: list[str] = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not _has_own_docstring(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                if inspect.isfunction(func) and not (func.__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    return missing


class TestPackageAll:
    """llmvoice.__all__."""

    def test_sorted_as_written(self) -> None:
        """__all__ is already in isort-style order (constants, classes, then the rest)."""
        assert llmvoice.__all__ == sorted(llmvoice.__all__, key=_isort_key)

    def test_unique(self) -> None:
        """__all__ lists every name once."""
        assert len(llmvoice.__all__) == len(set(llmvoice.__all__))

    def test_names_exist(self) -> None:
        """Every name in __all__ is an attribute of the package."""
        assert [name for name in llmvoice.__all__ if not hasattr(llmvoice, name)] == []

    def test_star_import(self) -> None:
        """from llmvoice import * binds exactly the names in __all__."""
        namespace: dict[str, Any] = {}
        exec("from llmvoice import *", namespace)
        assert sorted(k for k in namespace if k != "__builtins__") == sorted(llmvoice.__all__)

    def test_version(self) -> None:
        """__version__ is 0.1.0."""
        assert llmvoice.__version__ == "0.1.0"

    def test_documented(self) -> None:
        """Every exported class and function, and their public methods, have a docstring."""
        assert _undocumented(llmvoice) == []

    def test_package_docstring(self) -> None:
        """The package has a module docstring."""
        assert bool((llmvoice.__doc__ or "").strip())


class TestPublicModules:
    """The __all__ of each public module."""

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_has_all(self, name: str) -> None:
        """The module defines __all__ as a list of strings."""
        module = _module(name)
        assert (type(module.__all__), all(isinstance(n, str) for n in module.__all__)) == (list, True)

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_names_exist(self, name: str) -> None:
        """Every name in the module's __all__ exists."""
        module = _module(name)
        assert [n for n in module.__all__ if not hasattr(module, n)] == []

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_unique(self, name: str) -> None:
        """The module's __all__ lists every name once."""
        module = _module(name)
        assert len(module.__all__) == len(set(module.__all__))

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_sorted(self, name: str) -> None:
        """The module's __all__ is in isort-style order."""
        module = _module(name)
        assert module.__all__ == sorted(module.__all__, key=_isort_key)

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_documented(self, name: str) -> None:
        """Every public class and function of the module, and their public methods, have a docstring."""
        assert _undocumented(_module(name)) == []

    @pytest.mark.parametrize("name", PUBLIC_MODULES)
    def test_module_docstring(self, name: str) -> None:
        """The module has a module docstring."""
        assert bool((_module(name).__doc__ or "").strip())

    def test_package_reexports_are_identical(self) -> None:
        """Names the package re-exports are the same objects as in their home modules."""
        homes = {
            "Message": "llmvoice.messages",
            "ToolCall": "llmvoice.messages",
            "State": "llmvoice.state",
            "SCHEMA_VERSION": "llmvoice.state",
            "PromptManager": "llmvoice.manager",
            "OpenAIAdapter": "llmvoice.adapters",
            "InvalidMessageError": "llmvoice.errors",
        }
        assert {n: getattr(llmvoice, n) is getattr(_module(m), n) for n, m in homes.items()} == dict.fromkeys(
            homes, True
        )

    def test_every_error_derives_from_base(self) -> None:
        """Every exported error class derives from LLMVoiceError and every warning from LLMVoiceWarning."""
        errors = _module("llmvoice.errors")
        wrong = []
        for n in errors.__all__:
            cls = getattr(errors, n)
            base = llmvoice.LLMVoiceWarning if issubclass(cls, Warning) else llmvoice.LLMVoiceError
            if not issubclass(cls, base):
                wrong.append(n)
        assert wrong == []
