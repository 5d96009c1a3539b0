"""Equivalence by effects: Obs extraction, comparison with a Myers alignment, and the run harness."""

__all__ = ["compare", "harness", "myers", "observe"]  # the public modules; each module's own __all__ marks its names
