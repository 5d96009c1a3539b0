"""The scheduler (pure, seeded): which kept input to mutate next, and which results are worth keeping.

Without coverage feedback from two programs in two languages, "interesting" is a new behaviour: a pair of
outcome signatures (:meth:`Outcome.signature`: exit status, output length class, last stderr line, tree
shape) not seen before. Kept inputs are picked with weight 1/(1 + times picked), so new ones get turns soon
and none starves; the pool is bounded (the oldest non-seed input leaves first).

    >>> import random
    >>> s = Scheduler([FuzzInput(stdin=b"1")], random.Random(1))
    >>> s.observe(FuzzInput(stdin=b"2"), ("sigA",)), s.observe(FuzzInput(stdin=b"3"), ("sigA",))
    (True, False)
    >>> len(s.pool)
    2
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from sysweave.validator.fuzz.model import FuzzInput

__all__ = ["Entry", "Scheduler"]


@dataclass
class Entry:
    inp: FuzzInput
    seed: bool
    picked: int = 0


class Scheduler:
    def __init__(self, seeds: Sequence[FuzzInput], rng: random.Random, max_pool: int = 512) -> None:
        self.rng = rng
        self.max_pool = max_pool
        self.pool = [Entry(s, True) for s in seeds]
        self.seen: set[Hashable] = set()

    def next(self) -> FuzzInput:
        """The input to mutate next."""
        weights = [1.0 / (1 + e.picked) for e in self.pool]
        entry = self.rng.choices(self.pool, weights)[0]
        entry.picked += 1
        return entry.inp

    def splice_pool(self, k: int = 8) -> list[FuzzInput]:
        """A few kept inputs to splice from."""
        return [e.inp for e in self.rng.sample(self.pool, min(k, len(self.pool)))]

    def note(self, signature: Hashable) -> None:
        """A signature already covered (a seed's)."""
        self.seen.add(signature)

    def observe(self, inp: FuzzInput, signature: Hashable) -> bool:
        """Record a result; keep ``inp`` (True) when its signature is new."""
        if signature in self.seen:
            return False
        self.seen.add(signature)
        self.pool.append(Entry(inp, False))
        if len(self.pool) > self.max_pool:
            oldest = next(i for i, e in enumerate(self.pool) if not e.seed)
            del self.pool[oldest]
        return True
