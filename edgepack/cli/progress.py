"""Progress on the terminal: stage lines, notes and progress bars on stderr (`output.reporter()` gives one,
except with --json). With `cli/output.py` the only module that imports rich."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


def stderr() -> Console:
    """The console for progress, notes and errors (the real stderr, even while fd 2 is captured)."""
    from rich.console import Console

    from edgepack.native import terminal_stderr

    return Console(file=terminal_stderr())


class _RichTask:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self.progress, self.task_id = progress, task_id

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        if description is not None:
            self.progress.update(self.task_id, description=description)
        if steps:
            self.progress.advance(self.task_id, steps)


class RichReporter:
    """Progress bars and stage lines on stderr; bars of runs on several devices at once share one display."""

    def __init__(self) -> None:
        self.console = stderr()
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._open = 0

    def stage(self, name: str, detail: str) -> None:
        self.console.print(f"[bold cyan]{name}[/] [dim]{detail}[/]", highlight=False)

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[_RichTask]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with self._lock:  # rich allows one live display at a time: open it for the first bar only
            if self._progress is None:
                columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
                self._progress = Progress(*columns, console=self.console, transient=False)
                self._progress.start()
            progress = self._progress
            self._open += 1
            task_id = progress.add_task(description, total=total)
        try:
            yield _RichTask(progress, task_id)
        finally:
            with self._lock:
                self._open -= 1
                if self._open == 0:
                    progress.stop()
                    self._progress = None

    def note(self, message: str) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]note[/]: {escape(message)}", highlight=False)
