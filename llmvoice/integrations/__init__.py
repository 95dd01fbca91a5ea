"""Framework integrations (optional extras `pipecat` and `livekit`).

:mod:`llmvoice.integrations.pipecat` and :mod:`llmvoice.integrations.livekit`.
"""

__all__: list[str] = []
