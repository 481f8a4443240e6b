"""How library code reports progress without printing: a small protocol the CLI implements."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Task(Protocol):
    """One progress bar: advance it, optionally changing its description."""

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        """Move the bar `steps` forward."""


class Reporter(Protocol):
    """Where stages send progress and notes; the CLI renders them, libraries may ignore them."""

    def stage(self, name: str, detail: str) -> None:
        """A stage starts (or is taken from the cache, when `detail` says so)."""

    def task(self, description: str, total: int | None) -> AbstractContextManager[Task]:
        """A progress bar for `total` steps, closed when the context exits."""

    def note(self, message: str) -> None:
        """A remark worth a line (a warning, a fallback taken)."""


class _NullTask:
    def advance(self, steps: int = 1, description: str | None = None) -> None:
        return None


class NullReporter:
    """A reporter that shows nothing: the default for library use and `--json`."""

    def stage(self, name: str, detail: str) -> None:
        return None

    def task(self, description: str, total: int | None) -> AbstractContextManager[Task]:
        return nullcontext(_NullTask())

    def note(self, message: str) -> None:
        return None
