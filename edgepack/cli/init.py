"""`edgepack init MODEL`: a commented starter recipe for your own saved model and data.

The logic is `edgepack.starter`; this module parses the options and shows the result
(TensorFlow and numpy are imported inside the command only, so `edgepack --help` stays fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

from edgepack.cli import output
from edgepack.cli.boundary import boundary

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

        It has the shapes, the task, a guessed normalization (flagged as a guess), post-training int8, the
        host and budgets from a first measurement.

        Exit 2 when the model or data cannot be read, the data cannot serve --task, or the file exists.
        """
        from edgepack.starter import write_starter

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
    from rich.markup import escape

    if output.state.json:
        output.emit_json(result.to_dict())
        return
    s = result.starter
    fit = s.plan.fit
    output.message(f"[bold]wrote[/] {escape(str(result.path))}: task {fit.kind} ({escape(fit.why)})")
    output.message(f"  model: {escape(s.model.summary())}")
    if s.model.bridge_problem:
        output.message(f"  [yellow]no [[optimize]] stages[/]: {escape(s.model.bridge_problem)}")
    if s.plan.kind == "none":
        output.message("  [yellow]TODO[/]: no --data: the recipe reads data.npz beside it")
    norm = "GUESS" if s.norm.guess else "from the model"
    output.message(f"  normalization ({norm}): mean {s.norm.mean}, std {s.norm.std}: {escape(s.norm.why)}")
    if s.measured is None:
        output.message(f"  no budgets: {escape(s.unmeasured_why)}")
    else:
        output.print_table(_measured_table(s.measured, s.budgets))
    output.message(f"next: edgepack run {escape(str(result.path))}")


def _measured_table(measured: Any, budgets: list[Any]) -> Table:
    from rich.table import Table

    table = Table(title=f"first measurement ({measured.on})", title_justify="left")
    for column in ("figure", "measured"):
        table.add_column(column, justify="right" if column == "measured" else "left")
    table.add_row("model size (shipped)", f"{measured.size_bytes:,} B")
    if measured.latency_ms:
        figures = " / ".join(f"{measured.latency_ms[k]:.3f}" for k in ("p50", "p90", "p99") if k in measured.latency_ms)
        table.add_row("latency on host p50 / p90 / p99", f"{figures} ms")
    if measured.float_value is not None:
        table.add_row(f"{measured.metric}, float / int8", f"{measured.float_value:.4g} / {measured.tflite_value:.4g}")
    if measured.worst_sqnr_db is not None:
        table.add_row("worst output SQNR, int8 vs float", f"{measured.worst_sqnr_db:.2f} dB")
    for budget in budgets:
        table.add_row(f"budget {budget.key}", "not set (see the recipe)" if budget.unset else budget.toml)
    return table
