"""The `edgepack` command. Nothing here imports TensorFlow: commands import what they need."""

from __future__ import annotations

import typer

from edgepack import __version__
from edgepack.cli import devices, gate, inspect, keys, output, recipes, stages

app = typer.Typer(
    name="edgepack",
    help="Optimize, convert, validate, bundle and gate Keras models for the edge, from one recipe.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgepack {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    json_output: bool = typer.Option(False, "--json", help="Machine-readable output on stdout; no progress bars."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Global options."""
    output.state.json = json_output
    output.state.debug = debug


stages.register(app)
gate.register(app)
inspect.register(app)
keys.register(app)
app.add_typer(recipes.app, name="recipes")
app.add_typer(devices.app, name="devices")
app.add_typer(gate.manifest_app, name="manifest")


def main() -> None:
    """Console-script entry point."""
    app()
