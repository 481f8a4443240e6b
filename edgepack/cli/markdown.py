"""The Markdown summary (`--markdown FILE` on `run` and `gate`): the tables the terminal shows, as
GitHub-flavoured Markdown, written to FILE and appended to `$GITHUB_STEP_SUMMARY` when it is set.

The tables are the ones `cli/summary.py` builds for the terminal, converted cell by cell (markup
stripped), so the file holds the same rows as the terminal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

from edgepack.fsutil import atomic_write_text

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
_ALIGN = {"left": ":---", "right": "---:", "center": ":---:", "full": "---", "default": "---"}


def plain(cell: Any) -> str:
    """A table cell's text without rich markup."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(str(cell)).plain


def table_markdown(table: Table) -> str:
    """One rich table as a GitHub-flavoured Markdown table under its title (in bold)."""

    def cell(value: Any) -> str:
        return plain(value).replace("|", "\\|").replace("\n", "<br>").strip() or " "

    columns = table.columns
    lines = [f"**{cell(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(cell(c.header) for c in columns) + " |")
    lines.append("|" + "|".join(_ALIGN.get(str(c.justify), "---") for c in columns) + "|")
    for row in zip(*(list(c.cells) for c in columns)):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def summary_markdown(heading: str, verdict: str, tables: list[Table]) -> str:
    """The whole summary: a heading, the verdict line, then each table."""
    return "\n\n".join([f"## {heading}", verdict, *(table_markdown(t) for t in tables)]) + "\n"


def write_summary(path: Path | None, text: str) -> list[Path]:
    """Write `text` to `path` (atomically) and append it to `$GITHUB_STEP_SUMMARY` when that is set (never
    overwriting it, even when `path` is that file); returns the files written."""
    written = []
    step = os.environ.get(STEP_SUMMARY)
    step_path = Path(step) if step else None
    if path is not None and not (step_path is not None and _same(path, step_path)):
        atomic_write_text(path, text)
        written.append(path)
    if step_path is not None and path is not None:
        with open(step_path, "a", encoding="utf-8") as handle:
            handle.write(("\n" if step_path.is_file() and step_path.stat().st_size else "") + text)
        written.append(step_path)
    return written


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()
