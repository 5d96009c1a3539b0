"""Where an effect began (its own module: the file states and the effects model both carry one)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Origin"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an effect began: host, pid, and its position in happens-before order, normalised to [0, 1]."""

    host: str
    pid: int
    order: float
