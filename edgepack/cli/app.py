"""The `edgepack` command. Nothing here imports TensorFlow: commands import what they need."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from edgepack import __version__
from edgepack.cli import compare, devices, gate, init, inspect, keys, output, recipes, stages

GLOBAL_FLAGS = ("--json", "--debug")  # accepted before the command and anywhere after it


class _Edgepack(TyperGroup):
    """The top-level group: `--json` and `--debug` typed after a command (`edgepack inspect M --json`) are
    moved before it, where the global options are parsed; nothing after a `--` is touched."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
        return super().parse_args(ctx, list(dict.fromkeys(flags)) + rest)


app = typer.Typer(
    cls=_Edgepack,
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
    json_output: bool = typer.Option(
        False, "--json", help="Machine-readable output on stdout; no progress bars (before or after the command)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks and native log lines (before or after the command)."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Global options."""
    output.state.json = json_output
    output.state.debug = debug


stages.register(app)
gate.register(app)
compare.register(app)
init.register(app)
inspect.register(app)
keys.register(app)
app.add_typer(recipes.app, name="recipes")
app.add_typer(devices.app, name="devices")
app.add_typer(gate.manifest_app, name="manifest")


def main() -> None:
    """Console-script entry point.

    A command that loaded TensorFlow ends with `os._exit` once its output is flushed and its
    conversion worker stopped: the interpreter's own teardown of TensorFlow (its atexit hooks, the
    freeing of its modules) takes 1-2 s and does nothing edgepack needs (files are written and
    renamed before a command returns)."""
    try:
        app()
    except SystemExit as exc:
        if "tensorflow" in sys.modules:
            _exit_now(exc.code)
        raise


def _exit_now(code: object) -> None:
    pool = sys.modules.get("edgepack.convert.pool")
    if pool is not None:
        pool.WORKER.stop()
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))
