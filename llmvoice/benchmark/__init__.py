"""The llmvoice benchmark: python -m llmvoice.benchmark --compare."""
