"""`edgepack init MODEL`: a commented starter recipe for your own saved model and data.

The logic is `edgepack.init`; this module parses the options and shows the result
(TensorFlow and numpy are imported inside the command only, so `edgepack --help` stays fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.table import Span

MODEL = typer.Argument(
    ..., help="The saved model: .keras or .h5 (Keras 3 or tf_keras), or a SavedModel directory.", show_default=False
)
DATA = typer.Option(
    None,
    "--data",
    "-d",
    show_default=False,
    help="An .npz of arrays, or a folder with one sub-folder of images per class (default: the "
    "recipe points at data.npz beside it, and nothing is measured).",
)
TASK = typer.Option(
    None,
    "--task",
    "-t",
    show_default=False,
    help="classification | regression | anomaly | fidelity (default: guessed from the data).",
)
OUT = typer.Option(
    None,
    "--out",
    "-o",
    show_default=False,
    help="The recipe file to write (default: ./NAME.toml); an existing file is never overwritten.",
)
NAME = typer.Option(None, "--name", show_default=False, help="The recipe's name (default: the model file's stem).")
NO_MEASURE = typer.Option(False, "--no-measure", help="Write no budgets: skip the first measurement.")
IMPORTS = typer.Option(
    None,
    "--import",
    show_default=False,
    help="A module registering the model's custom Keras 3 layers (repeatable), found beside "
    "the model or installed; written to the recipe's model.imports.",
)
WORKDIR = typer.Option(
    None,
    "--workdir",
    "-w",
    show_default=False,
    help="Keep the measurement's stages here, for `edgepack run --workdir` to reuse "
    "(default: a temporary folder, removed).",
)


def register(app: typer.Typer) -> None:
    """Add `init` to the top-level app."""

    @app.command()
    @boundary
    def init(
        model: Path = MODEL,
        data: Path = DATA,
        task: str = TASK,
        out: Path = OUT,
        name: str = NAME,
        no_measure: bool = NO_MEASURE,
        workdir: Path = WORKDIR,
        imports: list[str] = IMPORTS,
    ) -> None:
        """Write a commented starter recipe for your own model and data.

        It has the shapes, the task, the normalization measured on the float model (without labels, a
        guess, flagged), images or tensors with the reason, post-training int8, the host and budgets from
        a first measurement (none when the float model scores near chance).

        Exit 2 when the model or data cannot be read, the data cannot serve --task, or the file exists.
        """
        from edgepack.init import write_starter

        result = write_starter(
            model,
            data=data,
            task=task,
            out=out,
            name=name,
            measure_it=not no_measure,
            reporter=output.reporter(),
            quiet_native=not output.state.debug,
            workdir=workdir,
            imports=tuple(imports or ()),
        )
        _report(result)


def _report(result: Any) -> None:
    from edgepack.cli.init_tables import candidates_table, measured_table
    from edgepack.init.render import IO_WHY

    if output.result(result.to_dict()):
        return
    s = result.starter
    fit = s.plan.fit
    output.message(Span("wrote", "strong"), f" {result.path}: task {fit.kind} ({fit.why})")
    output.message(f"  model: {s.model.summary()}")
    if s.model.bridge_problem:
        output.message("  ", Span("no [[optimize]] stages", "warn"), f": {s.model.bridge_problem}")
    if s.plan.kind == "none":
        output.message("  ", Span("TODO", "warn"), ": no --data: the recipe reads data.npz beside it")
    if s.plan.layout_why:
        output.message(f"  layout {s.plan.layout}: {s.plan.layout_why}")
    check = s.check
    if check is not None and check.candidates:
        output.print_table(candidates_table(check))
    norm = "GUESS" if s.norm.guess else ("measured" if check is not None and check.best else "from the model")
    output.message(f"  normalization ({norm}): mean {s.norm.mean}, std {s.norm.std}: {s.norm.why}")
    if check is not None and not check.checked:
        output.warning(f"normalization not checked: {check.why}; it is a guess the float model was never tried on")
    if s.warning:
        output.warning(s.warning)
    output.message(f"  io {s.io}: {IO_WHY}")
    if s.measured is not None:
        output.print_table(measured_table(s.measured, s.budgets or []))
    if s.budgets is None:
        output.message(f"  no budgets: {s.unmeasured_why}")
    output.message(f"next: edgepack run {result.path}")
