"""The output sink: the only module that prints. Rich for people, JSON with `--json`, Markdown for summaries.

Tables and results go to stdout; progress bars (`cli/progress.py`) and errors to stderr, so that stdout can be
piped. With `--json`, stdout carries exactly one JSON document (`result`) and nothing for people: no
messages, no tables, no progress bars. Tables are `edgepack.table.Table`s, rendered here for the terminal
(`rich_table`) and as Markdown (`markdown_table`); messages are pieces of text and toned spans.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import rich.table
    from rich.console import Console
    from rich.text import Text

from edgepack.cli.progress import stderr
from edgepack.errors import EdgepackError
from edgepack.progress import NullReporter, Reporter
from edgepack.table import Cell, Piece, Span, Table, cell, plain

STYLES = {
    "good": "green",
    "best": "bold green",
    "bad": "red",
    "fail": "bold red",
    "warn": "yellow",
    "dim": "dim",
    "strong": "bold",
}
_ALIGN = {"left": ":---", "right": "---:"}

Line = Piece | Iterable[Piece]
"""A message line: a piece, or several."""


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


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def result(data: Any, *shown: Table | Line | None) -> bool:
    """A command's result: with --json the document `data`, else each table and message line of `shown` (None
    left out) in order. True when the JSON document went out (the caller has nothing more to show)."""
    if state.json:
        emit_json(data)
        return True
    show(*shown)
    return False


def show(*shown: Table | Line | None) -> None:
    """Each table and message line of `shown` (None left out) in order, for people (suppressed with --json)."""
    for item in shown:
        if isinstance(item, Table):
            print_table(item)
        elif item is not None:
            message(*cell(item))


def rich_text(value: Cell, style: str = "") -> Text:
    """A cell as rich text (in `style`), each span in its tone's style (the text itself never read as markup)."""
    from rich.text import Text

    text = Text(style=style)
    for span in value:
        text.append(span.text, style=STYLES[span.tone] if span.tone else "")
    return text


def rich_line(pieces: Iterable[Piece], highlight: bool = True) -> Text:
    """Pieces as one line of rich text, each span in its tone's style; with `highlight`, numbers, paths and the
    like coloured under the spans' styles, as rich highlights a printed string (the text never read as markup)."""
    from rich.highlighter import ReprHighlighter

    text = rich_text(cell(pieces))
    if not highlight:
        return text
    shown = ReprHighlighter()(text.plain)
    shown.copy_styles(text)
    return shown


def rich_table(table: Table) -> rich.table.Table:
    """A neutral table as the terminal shows it."""
    from rich.table import Table as RichTable

    title = rich_text(table.title, "table.title") if table.title else None
    out = RichTable(title=title, title_justify="left")
    out.show_header = table.show_header
    if table.caption:
        out.caption = rich_text(table.caption, "table.caption")
    for column in table.columns:
        out.add_column(column.header, justify=column.align)
    for row in table.rows:
        out.add_row(*(rich_text(c) for c in row))
    return out


def print_table(table: Table | rich.table.Table) -> None:
    """Show a table on stdout (suppressed with --json)."""
    if not state.json:
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


def summary_markdown(heading: str, verdict: str, tables: list[Table]) -> str:
    """A Markdown summary (`--markdown FILE`): a heading, the verdict line, then each table."""
    return "\n\n".join([f"## {heading}", verdict, *(markdown_table(t) for t in tables)]) + "\n"


def message(*pieces: Piece) -> None:
    """A line for people, its pieces plain text or toned spans (suppressed with --json)."""
    if not state.json:
        stdout().print(rich_line(pieces))


def pretty_json(data: Any) -> None:
    """A JSON value for people, indented and coloured (suppressed with --json)."""
    if not state.json:
        stdout().print_json(json.dumps(data, default=str))


def verbatim(text: str) -> None:
    """Text for people as it is: no markup, no highlighting (suppressed with --json)."""
    if not state.json:
        stdout().print(text, markup=False, highlight=False)


def warning(text: str) -> None:
    """A loud warning on stderr (suppressed with --json, whose document carries it)."""
    if not state.json:
        stderr().print(rich_line([Span("WARNING", "fail"), f": {text}"], highlight=False))


def render_error(error: EdgepackError) -> None:
    """Show an edgepack error: JSON on stdout with --json, else a short report on stderr."""
    if state.json:
        emit_json(error.to_dict())
        return
    console = stderr()
    console.soft_wrap = True  # never break a path or a field name across lines
    console.print(rich_line([Span("error", "fail"), " ", Span(f"({error.code})", "dim"), f": {error.message}"], False))
    if error.context:
        for line in error.context.splitlines():
            console.print(f"  {line}", highlight=False, markup=False)
    if error.hint:  # messages quote recipe tables ("[train]"): not rich markup
        console.print(rich_line([Span("hint", "strong"), f": {error.hint}"], highlight=False))


def reporter() -> Reporter:
    """The reporter for the current mode: none with --json, else progress bars on stderr (`cli/progress.py`)."""
    if state.json:
        return NullReporter()
    from edgepack.cli.progress import RichReporter

    return RichReporter()
