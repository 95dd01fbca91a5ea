"""The TTFT controller: measurement, statistics, latency model, planner and the async driver.

:class:`TTFTController` wraps a :class:`~llmvoice.PromptManager` per session; :func:`wrap` puts
it around an existing ``llm_fn(messages, **kwargs)`` without changing the app.
"""

from llmvoice.control.controller import ControllerStats, TTFTController, Turn, TurnRecord
from llmvoice.control.measure import BufferedStreamWarning, Measurement, StreamObserver
from llmvoice.control.model import PRIORS, LatencyModel, LatencyPrior
from llmvoice.control.planner import Decision, PlanInput, plan
from llmvoice.control.stats import Hysteresis, RollingStats, Sample, Snapshot
from llmvoice.control.wrap import ManagedLLM, wrap

__all__ = [
    "PRIORS",
    "BufferedStreamWarning",
    "ControllerStats",
    "Decision",
    "Hysteresis",
    "LatencyModel",
    "LatencyPrior",
    "ManagedLLM",
    "Measurement",
    "PlanInput",
    "RollingStats",
    "Sample",
    "Snapshot",
    "StreamObserver",
    "TTFTController",
    "Turn",
    "TurnRecord",
    "plan",
    "wrap",
]
