"""Where a run's wall time goes: each stage's own seconds, the stages it asked for not counted twice.

Stages pull the stages before them (the gate asks for validation, which asks for the shipped model,
which asks for the conversion ...), so a stage's wall time contains its inputs' times. `StageClock`
keeps a stack: when a stage finishes, its inner stages' seconds are taken off, and the rest is its own.
The sum of the stages is the pipeline's wall time (less what ran outside any stage).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    """Own wall seconds per stage, in the order the stages finished first (data, train, ... bundle).

    One thread's: the stack is not shared safely, so stages run on the pipeline's thread (validation
    makes what the devices need before their threads start)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._inner: list[float] = []  # per open stage: the seconds of the stages it opened

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Count the block's wall time, less its inner stages', to `name` (again: added)."""
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            inner = self._inner.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - inner
            if self._inner:
                self._inner[-1] += elapsed
