"""Framework integrations (optional extras): :mod:`llmvoice.integrations.pipecat`."""

__all__: list[str] = []
