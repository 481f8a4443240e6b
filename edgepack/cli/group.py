"""The command groups every `typer.Typer` of the CLI uses: plain help, and `--help` that stays fast.

Help is click's plain text (`rich_markup_mode=None`): Typer's Rich help imports Markdown and traceback
rendering (about 100 ms) before it prints a line. A group's own `--help` option has no default in Typer
0.29, so the missing value of `edgepack run --help` goes through Typer's pydantic coercion (pydantic's
import alone is about 60 ms); `Group` gives it False, which is a bool and skips the coercion.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup


def first_paragraph(text: str | None) -> str:
    """The first paragraph of a command's help, on one line: what a command list shows for it."""
    return " ".join((text or "").split("\n\n")[0].split())


class Group(TyperGroup):
    """A Typer group whose `--help` defaults to False and whose command list wraps each command's first
    paragraph instead of cutting it at about 45 characters with "..."."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option

    def summary(self, ctx: Any, name: str) -> str | None:
        """The line the command list shows for `name` (None: a hidden command, not listed)."""
        command = self.get_command(ctx, name)
        return None if command is None or command.hidden else first_paragraph(command.help)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help())  # on stdout, as `--help` (click's plain path writes it to stderr)
            ctx.exit(2)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, line) for name in self.list_commands(ctx) if (line := self.summary(ctx, name)) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def typer_app(help: str, cls: type[Group] = Group, **options: Any) -> typer.Typer:
    """A `typer.Typer` with `Group` (or a subclass), plain help and no completion commands."""
    return typer.Typer(cls=cls, help=help, rich_markup_mode=None, add_completion=False, **options)
