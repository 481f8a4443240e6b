"""Tables as data: what a command or the HTML report shows, before any renderer sees it.

Builders hand rows of plain text and toned spans to a `Table`; `cli/output.py` renders it for the
terminal, as JSON and as Markdown, `report/html.py` as HTML. Nothing here imports a renderer, so
every layer can build a table and no layer below the CLI prints one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Tone = Literal["good", "best", "bad", "fail", "warn", "dim", "strong"]
"""What a span means, for renderers to colour: good (green), best (bold green: the one picked), bad (red),
fail (bold red), warn (yellow), dim, strong (bold)."""

Align = Literal["left", "right"]


@dataclass(frozen=True)
class Span:
    """A piece of text with a tone."""

    text: str
    tone: Tone | None = None


Piece = str | Span
"""Plain text or a toned span: what cells, titles and messages are made of."""

Cell = tuple[Span, ...]
CellLike = str | Span | Iterable[Piece]


def cell(value: CellLike) -> Cell:
    """A cell from a string, one span or several pieces."""
    if isinstance(value, str):
        return (Span(value),)
    if isinstance(value, Span):
        return (value,)
    return tuple(piece if isinstance(piece, Span) else Span(piece) for piece in value)


def plain(value: CellLike) -> str:
    """A cell's text without its tones."""
    return "".join(span.text for span in cell(value))


@dataclass(frozen=True)
class Column:
    """A column: its header and which side its cells keep to."""

    header: str
    align: Align = "left"


@dataclass
class Table:
    """A titled table of rows; `caption` is a line under it, `show_header` False for key/value lists."""

    title: Cell = ()
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    caption: Cell = ()
    show_header: bool = True

    @classmethod
    def of(
        cls, title: CellLike, columns: Iterable[str | Column], *, caption: CellLike = "", show_header: bool = True
    ) -> Table:
        """A table titled `title` with `columns` (a bare header keeps left)."""
        cols = [c if isinstance(c, Column) else Column(c) for c in columns]
        return cls(cell(title) if plain(title) else (), cols, [], cell(caption) if plain(caption) else (), show_header)

    def add_row(self, *cells: CellLike) -> None:
        """One row, a cell per column."""
        if len(cells) != len(self.columns):
            raise ValueError(
                f"row of {len(cells)} cells for {len(self.columns)} columns in table {plain(self.title)!r}"
            )
        self.rows.append(tuple(cell(c) for c in cells))

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON: its title and one object per row keyed by the headers."""
        headers = [c.header for c in self.columns]
        return {
            "title": plain(self.title),
            "rows": [dict(zip(headers, (plain(c) for c in row), strict=True)) for row in self.rows],
        }
