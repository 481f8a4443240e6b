"""`edgepack run` and the single-stage commands (train, optimize, convert, evaluate, validate, bundle).

Each stage command runs the stages before it through the cache, so it can be run alone: an
unchanged earlier stage is a cache hit, not a re-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.errors import EXIT_BUDGET, BudgetExceeded
from edgepack.records import DeviceRun, device_dicts
from edgepack.summary.figures import arena_text, latency_figures
from edgepack.summary.gate import budget_table, failures
from edgepack.summary.mcu import ethos_u_table, memory_table
from edgepack.summary.run import (
    fallback_table,
    parity_text,
    quant_error_table,
    results_table,
    stages_table,
    weights_table,
)
from edgepack.summary.search import compression_table, granularity_table, search_table, tune_table
from edgepack.summary.throughput import throughput_tables
from edgepack.table import Piece, Span, Table

RECIPE = typer.Argument(
    None, help="Recipe name in recipes/ or a path to a .toml (default: digits).", show_default=False
)
WORKDIR = typer.Option(Path("build"), "--workdir", "-w", help="Where stage outputs are cached.")
NO_CACHE = typer.Option(False, "--no-cache", help="Re-run every stage even when its inputs are unchanged.")
OUT = typer.Option(None, "--out", "-o", help="Bundle directory (default: bundle.out, else WORKDIR/RECIPE/bundle).")
ZIP = typer.Option(None, "--zip/--no-zip", help="Also write BUNDLE.zip (default: bundle.zip in the recipe).")
JUNIT = typer.Option(None, "--junit", help="Write the budget results as JUnit XML to this file.")
MARKDOWN = typer.Option(
    None,
    "--markdown",
    metavar="FILE",
    help="Write the results and budget tables (with the deltas against the baseline) as "
    "GitHub-flavoured Markdown to FILE; also appended to $GITHUB_STEP_SUMMARY when set.",
)
SIGN = typer.Option(
    None,
    "--sign",
    help="Sign manifest.json with this Ed25519 private key (`edgepack keygen`); "
    "the manifest lists every artifact's sha256, so the signature covers them all.",
)


def _pipeline(
    recipe: str | None, workdir: Path, no_cache: bool, given: Path | None = None, bundled: bool = False
) -> Any:
    """The recipe's pipeline; with `given`, a .tflite converted elsewhere is its model (bundled: with metadata)."""
    from edgepack.pipeline import Pipeline
    from edgepack.pipeline.plan import Plan
    from edgepack.recipe import load_recipe

    loaded = load_recipe(recipe)
    plan = None
    if given is not None:
        plan = Plan.bundle_given(given) if bundled else Plan.measure_given(given)
    pipeline = Pipeline(
        loaded, workdir, output.reporter(), use_cache=not no_cache, quiet_native=not output.state.debug, plan=plan
    )
    if given is not None:
        pipeline.convert()  # a file that is not a model (or, to bundle, does not fit the recipe) is said now
    return pipeline


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to the top-level app."""

    @app.command()
    @boundary
    def run(
        recipe: str = RECIPE,
        workdir: Path = WORKDIR,
        no_cache: bool = NO_CACHE,
        out: Path = OUT,
        zip: bool = ZIP,
        junit: Path = JUNIT,
        sign: Path = SIGN,
        markdown: Path = MARKDOWN,
    ) -> None:
        """Run the whole recipe: train, optimize, convert, evaluate, validate, gate, bundle.

        Exit 0 when every budget holds, 3 when one is exceeded (the bundle is still written).
        """
        pipeline = _pipeline(recipe, workdir, no_cache)
        result = pipeline.run(out, zip, sign)
        _report_run(pipeline, result)
        if markdown is not None:
            _run_markdown(pipeline, result, markdown)
        finish_gate(result.gate, junit, pipeline.recipe.name)

    @app.command()
    @boundary
    def train(recipe: str = RECIPE, workdir: Path = WORKDIR, no_cache: bool = NO_CACHE) -> None:
        """Build and train the recipe's model (the float reference)."""
        _show_stage(_pipeline(recipe, workdir, no_cache).train())

    @app.command()
    @boundary
    def optimize(recipe: str = RECIPE, workdir: Path = WORKDIR, no_cache: bool = NO_CACHE) -> None:
        """Apply the recipe's optimize stages (pruning, QAT) to the trained model."""
        _show_stage(_pipeline(recipe, workdir, no_cache).optimize())

    @app.command()
    @boundary
    def convert(recipe: str = RECIPE, workdir: Path = WORKDIR, no_cache: bool = NO_CACHE) -> None:
        """Convert the optimized model to .tflite in the recipe's mode."""
        _show_stage(_pipeline(recipe, workdir, no_cache).convert())

    @app.command()
    @boundary
    def evaluate(recipe: str = RECIPE, workdir: Path = WORKDIR, no_cache: bool = NO_CACHE) -> None:
        """Accuracy of the float, optimized and .tflite models on the test split."""
        _show_stage(_pipeline(recipe, workdir, no_cache).evaluate())

    @app.command()
    @boundary
    def validate(
        recipe: str = RECIPE,
        workdir: Path = WORKDIR,
        no_cache: bool = NO_CACHE,
        model: Path = typer.Option(
            None,
            "--model",
            "-m",
            help="Validate this .tflite (any, not converted by edgepack) instead "
            "of the recipe's; nothing is trained or converted.",
        ),
        device: list[str] = typer.Option(
            None, "--device", "-d", help="Run on this device instead of the recipe's (repeatable)."
        ),
    ) -> None:
        """Measure latency, memory and output parity of the .tflite on the recipe's devices."""
        pipeline = _pipeline(recipe, workdir, no_cache, given=model)
        validation = pipeline.validate(devices=device or None)
        if not output.result(device_dicts(validation)):  # the lines and Vela's table are built for people only
            output.show(*_validation_lines(validation), *throughput_tables(validation), ethos_u_table(validation))

    @app.command()
    @boundary
    def bundle(
        recipe: str = RECIPE,
        workdir: Path = WORKDIR,
        no_cache: bool = NO_CACHE,
        out: Path = OUT,
        zip: bool = ZIP,
        sign: Path = SIGN,
        model: Path = typer.Option(
            None,
            "--model",
            "-m",
            help="Bundle this .tflite (converted elsewhere) instead of converting; "
            "it is evaluated and validated with the recipe's data and devices.",
        ),
    ) -> None:
        """Write the bundle: the model with its metadata, labels, formats and manifests.

        manifest.json says how it was made and lists every artifact's sha256; measurements.json holds the
        validation and budget results."""
        if sign is not None:
            from edgepack.bundle.signing import load_private_key

            load_private_key(sign)  # a bad key is said before any stage runs
        pipeline = _pipeline(recipe, workdir, no_cache, given=model, bundled=True)
        written = pipeline.bundle(out, zip, sign)
        output.result({"bundle": [str(p) for p in written]}, *(f"wrote {path}" for path in written))


def _validation_lines(validation: dict[str, DeviceRun]) -> list[list[Piece]]:
    """A line per device that ran the model: its latency (or TFLM's arena), runs, runtime, memory (Vela's
    estimates are a table)."""
    lines = []
    for name, rec in validation.items():
        if rec.estimate:  # ethos-u: Vela's estimate, in its table
            continue
        lat, ran = rec.latency_ms, rec.runtime or {}
        runtime = f"{ran.get('name')} {ran.get('version')}"
        if lat is None:  # tflm: the arena, not a latency
            if rec.arena:
                lines.append(
                    [f"{name}: TFLM arena {arena_text(rec.arena)} ({runtime}), outputs ", *parity_text(rec.parity)]
                )
            continue
        figures = ", ".join(f"{key} {value:.3f} ms" for key, value in latency_figures(lat).items())
        memory = f", peak RSS {rec.peak_rss_kb / 1024:.1f} MiB" if rec.peak_rss_kb is not None else ""
        lines.append([f"{name}: {figures} ({lat['runs']} runs, {rec.threads} thread(s), {runtime}){memory}"])
    return lines


def _show_stage(stage: Any) -> None:
    state = "cached" if stage.cached else "done"
    if not output.result(
        {stage.name: stage.to_dict()}, [Span(stage.name, "strong"), f" {state} (id {stage.id}) in {stage.dir}"]
    ):
        output.pretty_json(stage.record.to_dict())


def _report_run(pipeline: Any, result: Any) -> None:
    from edgepack.bundle.manifest import memory_record

    stages = result.stages
    memory = memory_record(pipeline.shipped().data, pipeline.measured_arena)
    data = {
        "recipe": pipeline.recipe.name,
        "recipe_sha256": pipeline.loaded.sha256,
        "stages": {name: s.to_dict() for name, s in stages.items()},
        "validation": device_dicts(result.validation),
        "search": pipeline.search_report(),
        "dense_granularity": pipeline.granularity_report(),
        "compression": pipeline.compression_report(),
        **pipeline.tune_report(),
        "gate": {"passed": result.passed, "results": [r.to_dict() for r in result.gate]},
        "memory": memory,
        "fits": {board: fit.to_dict() for board, fit in result.fits.items()},
        "bundle": [str(p) for p in result.bundle],
        "seconds": {name: round(s, 3) for name, s in result.seconds.items()},
    }
    if output.result(data):
        return  # the tables are built for people only
    output.show(
        *_run_tables(pipeline, result),
        *throughput_tables(result.validation),
        ethos_u_table(result.validation),
        memory_table(memory, result.fits),
        budget_table(result.gate),
        *(f"bundle: {path}" for path in result.bundle),
        time_line(result.seconds),
    )


def _run_tables(pipeline: Any, result: Any) -> list[Table]:
    """The run's tables down to its results: after each stage, kernels, quantization error, ops kept in float,
    the searches and choices, the results."""
    stages = result.stages
    optimized, converted = stages["optimize"].record, stages["convert"].record
    tables = [stages_table(stages["train"].record, optimized, converted, stages["evaluate"].record)]
    int4 = any(w.get("dtype") == "int4" for w in converted.weights.values())
    if int4 or any(s["kind"] in ("prune", "cluster") for s in optimized.stages):
        tables.append(weights_table(converted))
    if converted.quant_error.get("measured"):
        tables.append(quant_error_table(converted))
    if converted.fallback:
        tables.append(fallback_table(converted))
    if pipeline.search_report():
        tables.append(search_table(pipeline.search_report()))
    tables += [tune_table(search, pipeline.task.metric) for search in pipeline.tune_report().values()]
    if pipeline.granularity_report():
        tables.append(granularity_table(pipeline.granularity_report()))
    if pipeline.compression_report():
        tables.append(compression_table(pipeline.compression_report()))
    tables.append(
        results_table(
            stages["evaluate"].record,
            converted,
            result.validation,
            len(pipeline.shipped().data),
            pipeline.compression_report(),
        )
    )
    return tables


def time_line(seconds: dict[str, float]) -> Span:
    """Where the run's time went: 'time: 31.2 s (train 14.1 s, optimize 9.0 s, ...)', stages over 0.05 s."""
    parts = ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items() if s >= 0.05)
    return Span(f"time: {sum(seconds.values()):.1f} s" + (f" ({parts})" if parts else ""), "dim")


def _run_markdown(pipeline: Any, result: Any, path: Path) -> None:
    """The run's results and budget tables (and the deltas against its baseline) as a Markdown summary."""
    stages = result.stages
    tables = [
        results_table(
            stages["evaluate"].record,
            stages["convert"].record,
            result.validation,
            len(pipeline.shipped().data),
            pipeline.compression_report(),
        ),
        budget_table(result.gate),
    ]
    if pipeline.baseline is not None and result.bundle:
        from edgepack.bundle.figures import read_figures

        tables.append(baseline_table(pipeline.baseline, read_figures(result.bundle[0])))
    write_markdown(path, f"edgepack run: {pipeline.recipe.name}", result.gate, tables)


def baseline_table(baseline: Any, figures: Any) -> Table:
    """The comparison of a bundle's figures with its baseline's, as a table."""
    from edgepack.gate.compare import compare
    from edgepack.summary.gate import compare_table

    return compare_table(compare(baseline, figures), title=f"against the baseline {baseline.source}")


def write_markdown(path: Path, heading: str, results: list[Any], tables: list[Table]) -> None:
    """Write the summary to `path` (and $GITHUB_STEP_SUMMARY), saying so on the terminal."""
    from edgepack.cli.markdown import write_summary

    failed = failures(results)
    verdict = f"**{len(failed)} budget(s) exceeded**" if failed else "Every budget holds."
    for written in write_summary(path, output.summary_markdown(heading, verdict, tables)):
        output.message(f"summary: {written}")


def finish_gate(results: list[Any], junit: Path | None, suite: str) -> None:
    if junit is not None:
        from edgepack.gate.junit import write_junit

        write_junit(results, suite, junit)
    failed = failures(results)
    if failed and output.state.json:
        raise typer.Exit(EXIT_BUDGET)  # the JSON report already says which budgets failed
    if failed:
        raise BudgetExceeded(
            f"{len(failed)} budget(s) exceeded",
            context="\n".join(failed),
            hint="shrink the model, relax the budget, or look at the failing stage's figures",
        )
