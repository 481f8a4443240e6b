"""`edgepack recipes list|show|check`: the shipped recipes and recipe validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.cli.group import typer_app
from edgepack.errors import EXIT_BAD_INPUT, BadInputError
from edgepack.table import Span, Table

app = typer_app(help="List, show and check recipes.", no_args_is_help=True)


@app.command("list")
@boundary
def list_cmd() -> None:
    """List the shipped recipes."""
    from edgepack.recipe.load import list_recipes, load_recipe

    rows = []
    for path in list_recipes():
        loaded = load_recipe(str(path))
        rows.append({"name": path.stem, "path": str(path), "description": loaded.recipe.description})
    table = Table.of("recipes", ["name", "description"])
    for row in rows:
        table.add_row(row["name"], row["description"])
    output.result(rows, table)


@app.command("show")
@boundary
def show(name: str = typer.Argument(..., help="A recipe name in recipes/ or a path.")) -> None:
    """Print a recipe's file, or with --json its resolved form (every default filled in)."""
    from edgepack.recipe.load import load_recipe, resolve_recipe_path

    path = resolve_recipe_path(name)
    loaded = load_recipe(str(path))
    if not output.result({"path": str(path), "sha256": loaded.sha256, "recipe": loaded.recipe.resolved()}):
        output.verbatim(path.read_text(encoding="utf-8"))


@app.command("check")
@boundary
def check(files: list[Path] = typer.Argument(..., help="Recipe files (or shipped names) to validate.")) -> None:
    """Validate recipes; exit 2 naming the file, field and value of every problem."""
    from edgepack.recipe.load import load_recipe

    problems: list[BadInputError] = []
    checked = []
    for file in files:
        try:
            loaded = load_recipe(str(file))
            _check_builder(loaded)
            checked.append({"recipe": str(file), "ok": True, "sha256": loaded.sha256})
        except BadInputError as exc:
            problems.append(exc)
            checked.append({"recipe": str(file), "ok": False, "error": exc.to_dict()})
    if output.state.json:
        output.emit_json(checked)
        if problems:
            raise typer.Exit(EXIT_BAD_INPUT)
        return
    for row in checked:
        if row["ok"]:
            output.message(Span("ok", "good"), f" {row['recipe']}")
    for problem in problems[:-1]:
        output.render_error(problem)
    if problems:
        raise problems[-1]


def _check_builder(loaded: Any) -> None:
    """Each builder's args against its signature and declared bounds (the model's, a distillation student's).

    Its module is imported: the shipped builders' (`edgepack.models.zoo`) imports no TensorFlow; a user's
    module may."""
    from edgepack.models.builders import check_recipe_builders

    check_recipe_builders(loaded)
