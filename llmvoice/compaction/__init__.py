"""Compaction strategies: what replaces a span of history the planner decides to cut."""

__all__: list[str] = []
