"""The output sink: the only module that prints. Rich for people, JSON with `--json`.

Tables and results go to stdout; progress bars and errors to stderr, so that stdout can be
piped. With `--json`, stdout carries exactly one JSON document and there are no progress bars.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import rich.table
    from rich.console import Console
    from rich.progress import Progress
    from rich.text import Text

from edgepack.errors import EdgepackError
from edgepack.progress import NullReporter, Reporter
from edgepack.table import Cell, Table, plain

STYLES = {"good": "green", "bad": "red", "fail": "bold red", "warn": "yellow", "dim": "dim", "strong": "bold"}
_ALIGN = {"left": ":---", "right": "---:"}


@dataclass
class State:
    """Global options, set by the top-level callback."""

    json: bool = False
    debug: bool = False


state = State()


def stdout() -> Console:
    """The console for results."""
    from rich.console import Console

    return Console(soft_wrap=False)


def stderr() -> Console:
    """The console for progress, notes and errors (the real stderr, even while fd 2 is captured)."""
    from rich.console import Console

    from edgepack.native import terminal_stderr

    return Console(file=terminal_stderr())


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def rich_text(value: Cell) -> Text:
    """A cell as rich text, each span in its tone's style (the text itself never read as markup)."""
    from rich.text import Text

    text = Text()
    for span in value:
        text.append(span.text, style=STYLES[span.tone] if span.tone else "")
    return text


def rich_table(table: Table) -> rich.table.Table:
    """A neutral table as the terminal shows it."""
    from rich.table import Table as RichTable

    out = RichTable(title=rich_text(table.title) if table.title else None, title_justify="left")
    out.show_header = table.show_header
    if table.caption:
        out.caption = rich_text(table.caption)
    for column in table.columns:
        out.add_column(column.header, justify=column.align)
    for row in table.rows:
        out.add_row(*(rich_text(c) for c in row))
    return out


def print_table(table: Table | rich.table.Table) -> None:
    """Show a table on stdout."""
    stdout().print(rich_table(table) if isinstance(table, Table) else table)


def markdown_table(table: Table) -> str:
    """A table as GitHub-flavoured Markdown under its title (in bold)."""

    def text(value: Cell | str) -> str:
        raw = value if isinstance(value, str) else plain(value)
        return raw.replace("|", "\\|").replace("\n", "<br>").strip() or " "

    lines = [f"**{text(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(text(c.header) for c in table.columns) + " |")
    lines.append("|" + "|".join(_ALIGN[c.align] for c in table.columns) + "|")
    lines.extend("| " + " | ".join(text(c) for c in row) + " |" for row in table.rows)
    if table.caption:
        lines += ["", text(table.caption)]
    return "\n".join(lines)


def message(text: str) -> None:
    """A line for people (suppressed with --json)."""
    if not state.json:
        stdout().print(text)


def warning(text: str) -> None:
    """A loud warning on stderr (suppressed with --json, whose document carries it)."""
    from rich.markup import escape

    if not state.json:
        stderr().print(f"[bold red]WARNING[/]: {escape(text)}", highlight=False)


def render_error(error: EdgepackError) -> None:
    """Show an edgepack error: JSON on stdout with --json, else a short report on stderr."""
    from rich.markup import escape

    if state.json:
        emit_json(error.to_dict())
        return
    console = stderr()
    console.soft_wrap = True  # never break a path or a field name across lines
    console.print(f"[bold red]error[/] [dim]({error.code})[/]: {escape(error.message)}", highlight=False)
    if error.context:
        for line in error.context.splitlines():
            console.print(f"  {line}", highlight=False, markup=False)
    if error.hint:  # messages quote recipe tables ("[train]"): not rich markup
        console.print(f"[bold]hint[/]: {escape(error.hint)}", highlight=False)


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


def reporter() -> Reporter:
    """The reporter for the current mode: none with --json."""
    return NullReporter() if state.json else RichReporter()
