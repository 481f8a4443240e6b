"""The Python API: the recipe's stages from code, returning the pipeline's typed results.

    import edgepack
    result = edgepack.run("recipes/digits.toml", workdir="build")
    result.passed, result.stages["evaluate"].record.tflite, result.validation["host"].latency_ms["p90"]

    from edgepack import api
    converted = api.convert("recipes/digits.toml", workdir="build")  # a StageOutput[ConvertRecord]

Each function loads the recipe (a path or a shipped name) and runs through the stage cache in
`workdir`, exactly as the command of the same name; stages before the one asked for run (or come
from the cache) first. Errors are the typed `edgepack.errors` exceptions the CLI reports (a bad
recipe is a `RecipeError`, ...); an exceeded budget is not an exception: `run` and `gate` return the
results, and `RunResult.passed` says whether every budget holds. Progress goes to `reporter`
(default: silent). TensorFlow is imported by the stages that need it, not by `import edgepack`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.gate.budgets import BudgetResult
    from edgepack.pipeline import Pipeline, RunResult, StageOutput
    from edgepack.progress import Reporter
    from edgepack.records import ConvertRecord, DeviceRun, EvaluateRecord, OptimizeRecord, TrainRecord

DEFAULT_WORKDIR = "build"


def pipeline(
    recipe: str | Path | None = None,
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    model: str | Path | None = None,
    use_cache: bool = True,
    reporter: Reporter | None = None,
    bundled: bool = False,
) -> Pipeline:
    """The recipe's `Pipeline` (default recipe: digits). With `model`, a `.tflite` converted elsewhere
    stands in for the convert stage, judged against the recipe's model: measured as it is (as `validate
    --model`), or with `bundled` shipped like a model made here (as `bundle --model`: metadata, checks)."""
    from edgepack.pipeline import Pipeline
    from edgepack.pipeline.plan import Plan
    from edgepack.recipe import load_recipe

    loaded = load_recipe(None if recipe is None else str(recipe))
    plan = None
    if model is not None:
        plan = (Plan.bundle_given if bundled else Plan.measure_given)(Path(model))
    return Pipeline(loaded, Path(workdir), reporter, use_cache=use_cache, plan=plan)


def run(
    recipe: str | Path | None = None,
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    out: str | Path | None = None,
    zip: bool | None = None,
    sign_key: str | Path | None = None,
    use_cache: bool = True,
    reporter: Reporter | None = None,
) -> RunResult:
    """Every stage, the gate and the bundle (`edgepack run`): the stages, validation records, budget
    results (`.passed`), the board fits and the bundle's paths."""
    p = pipeline(recipe, workdir, use_cache=use_cache, reporter=reporter)
    return p.run(None if out is None else Path(out), zip, None if sign_key is None else Path(sign_key))


def train(
    recipe: str | Path | None = None, workdir: str | Path = DEFAULT_WORKDIR, **options: Any
) -> StageOutput[TrainRecord]:
    """The train stage (the float reference model and its test metrics)."""
    return pipeline(recipe, workdir, **options).train()


def optimize(
    recipe: str | Path | None = None, workdir: str | Path = DEFAULT_WORKDIR, **options: Any
) -> StageOutput[OptimizeRecord]:
    """The `[[optimize]]` stages (train first, or its cache)."""
    return pipeline(recipe, workdir, **options).optimize()


def convert(
    recipe: str | Path | None = None, workdir: str | Path = DEFAULT_WORKDIR, **options: Any
) -> StageOutput[ConvertRecord]:
    """The conversion to `.tflite` (the mode search's pick with `[convert.search]`)."""
    return pipeline(recipe, workdir, **options).convert()


def evaluate(
    recipe: str | Path | None = None, workdir: str | Path = DEFAULT_WORKDIR, **options: Any
) -> StageOutput[EvaluateRecord]:
    """The task's metrics of the float, optimized and `.tflite` models, and the fidelity per output."""
    return pipeline(recipe, workdir, **options).evaluate()


def validate(
    recipe: str | Path | None = None,
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    devices: list[str] | None = None,
    **options: Any,
) -> dict[str, DeviceRun]:
    """The shipped model on each device (default: the recipe's): one record per device (`DeviceRun.to_dict()`:
    its JSON form)."""
    return pipeline(recipe, workdir, **options).validate(devices)


def gate(recipe: str | Path | None = None, workdir: str | Path = DEFAULT_WORKDIR, **options: Any) -> list[BudgetResult]:
    """Every budget of the recipe against the run's figures (validating first)."""
    return pipeline(recipe, workdir, **options).gate()


def bundle(
    recipe: str | Path | None = None,
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    out: str | Path | None = None,
    zip: bool | None = None,
    sign_key: str | Path | None = None,
    **options: Any,
) -> list[Path]:
    """The bundle (gating first): the paths written."""
    p = pipeline(recipe, workdir, bundled=True, **options)
    return p.bundle(None if out is None else Path(out), zip, None if sign_key is None else Path(sign_key))
