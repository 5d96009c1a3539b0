"""Differential fuzzing: mutate a case's inputs, run both programs untraced, shrink an input that diverges."""

__all__: list[str] = []
