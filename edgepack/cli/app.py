"""The `edgepack` command. Nothing here imports TensorFlow: commands import what they need.

Commands load lazily: `edgepack --help` lists them from `COMMANDS` without importing one command
module, and `edgepack run ...` (or `edgepack run --help`) imports the module that defines `run`
(and what that module imports: `gate` uses the run's tables), never another command's.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import typer
import typer.main

from edgepack import __version__
from edgepack.cli import output
from edgepack.cli.group import Group, typer_app

GLOBAL_FLAGS = ("--json", "--debug")  # accepted before the command and anywhere after it

# command -> (its module in edgepack.cli, the Typer group there or None for a `register(app)` module, the
# line `edgepack --help` shows: the first paragraph of the command's help, which tests/ hold it to)
COMMANDS: dict[str, tuple[str, str | None, str]] = {
    "run": ("stages", None, "Run the whole recipe: train, optimize, convert, evaluate, validate, gate, bundle."),
    "train": ("stages", None, "Build and train the recipe's model (the float reference)."),
    "optimize": ("stages", None, "Apply the recipe's optimize stages (pruning, QAT) to the trained model."),
    "convert": ("stages", None, "Convert the optimized model to .tflite in the recipe's mode."),
    "search": (
        "search",
        None,
        "Run the recipe's [convert.search] as an Optuna study several workers and machines share.",
    ),
    "evaluate": ("stages", None, "Accuracy of the float, optimized and .tflite models on the test split."),
    "validate": ("stages", None, "Measure latency, memory and output parity of the .tflite on the recipe's devices."),
    "bundle": ("stages", None, "Write the bundle: the model with its metadata, labels, formats and manifests."),
    "gate": (
        "gate",
        None,
        "Check budgets against a bundle (directory or .zip); exit 0 when all hold, 3 when any is exceeded.",
    ),
    "verify": (
        "gate",
        None,
        "Re-hash every artifact and check the model against its declared tensors; exit 2 naming what changed.",
    ),
    "compare": ("compare", None, "Compare two bundles: each figure old, new and its change, regressions flagged."),
    "report": ("compare", None, "Write the HTML report of an existing bundle."),
    "init": ("init", None, "Write a commented starter recipe for your own model and data."),
    "inspect": (
        "inspect",
        None,
        "Inputs, outputs, op histogram, per-op MACs and parameters, peak activation memory, float ops.",
    ),
    "keygen": (
        "keys",
        None,
        "Write a new Ed25519 key pair to sign bundles with (`run --sign PATH`, `verify --key PATH.pub`).",
    ),
    "recipes": ("recipes", "app", "List, show and check recipes."),
    "devices": ("devices", "app", "List device profiles and check that a device is reachable and ready."),
    "manifest": ("gate", "manifest_app", "The bundle manifest's published JSON Schema."),
}


@functools.cache
def _module_group(module: str, attribute: str | None) -> Any:
    """The click group of one CLI module's commands (its `register(app)` functions), or of its Typer group."""
    loaded = importlib.import_module(f"edgepack.cli.{module}")
    if attribute is not None:
        return typer.main.get_group(getattr(loaded, attribute))
    commands = typer_app("")
    loaded.register(commands)
    return typer.main.get_group(commands)


def command_paths() -> list[list[str]]:
    """Every command as the words that call it: ["run"], ..., ["recipes"], ["recipes", "list"], ... (imports
    every command module: for docs, tests and benches, not for `--help`)."""
    paths = []
    for name, (module, attribute, _) in COMMANDS.items():
        paths.append([name])
        if attribute is not None:
            paths += [[name, sub] for sub in _module_group(module, attribute).commands]
    return paths


class _LazyCommands(Mapping[str, Any]):
    """The top-level group's commands: the names of `COMMANDS`, each command built when first looked up
    (Typer's "Did you mean ...?" reads the names alone)."""

    def __getitem__(self, name: str) -> Any:
        module, attribute, _ = COMMANDS[name]
        group = _module_group(module, attribute)
        return group if attribute is not None else group.commands[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _Edgepack(Group):
    """The top-level group: commands from `COMMANDS`, imported when asked for; `--json` and `--debug`
    typed after a command (`edgepack inspect M --json`) are moved before it, where the global options
    are parsed; nothing after a `--` is touched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands()  # type: ignore[assignment]  # read-only: nothing is added to it

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
        return super().parse_args(ctx, list(dict.fromkeys(flags)) + rest)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)  # the names alone (Typer's own builds every command)

    def summary(self, ctx: Any, name: str) -> str | None:
        """From `COMMANDS`: listing the commands imports none of their modules."""
        return COMMANDS[name][2]


app = typer_app(
    "Optimize, convert, validate, bundle and gate Keras models for the edge, from one recipe.",
    cls=_Edgepack,
    name="edgepack",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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
