"""An `[[optimize]]` value found by search: `final_sparsity = "auto"` (the largest of `sparsity_grid`,
tried ascending) or `rank = "auto"` (the smallest of `rank_grid`, tried descending). Each value is the
whole `[[optimize]]` list fine-tuned again as its own cached stage (`optimize-sparsity-0.7`,
`optimize-rank-8`), judged by the recipe's budgets on the task's metric; the search stops at the first
value that breaks one (or after `max_tries`) and keeps the last that held."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgepack.recipe.optimize import Knob, auto_stages

if TYPE_CHECKING:
    from edgepack.pipeline.cache import StageOutput
    from edgepack.pipeline.inputs import RunInputs
    from edgepack.recipe.schema import Recipe
    from edgepack.records import OptimizeRecord, TrainRecord


def auto_stage(recipe: Recipe) -> tuple[int, Knob] | None:
    """The one stage whose value is "auto" (the recipe allows one), or None."""
    found = auto_stages(recipe.optimize)
    return found[0] if found else None


@dataclass(frozen=True)
class Tuned:
    """The search of an "auto" optimize value: the kept try's stage (it becomes `optimize`), the search as
    plain data (each try's value, the task's metrics of its fine-tuned model, the budgets, its seconds;
    the pick and why) and the stage of every try that held the budgets (what `[convert.search]` tries)."""

    stage: StageOutput[OptimizeRecord]
    report: dict[str, Any]
    held: dict[float, StageOutput[OptimizeRecord]]
    knob: Knob


def tuned(p: RunInputs, trained: StageOutput[TrainRecord], trained_model: Callable[[], Any]) -> Tuned:
    """Fine-tune each value of the grid towards the smaller model until one breaks a budget; the kept try's
    stage is the one the runner makes the run's `optimize`."""
    found = auto_stage(p.recipe)
    assert found is not None
    index, knob = found
    auto = p.recipe.optimize[index]
    grid = auto.grid  # type: ignore[union-attr]  # a prune or low-rank stage: auto_stage found its knob
    limit = min(len(grid), auto.max_tries or len(grid))  # type: ignore[union-attr]
    tries: list[dict[str, Any]] = []
    stages: dict[float, StageOutput[OptimizeRecord]] = {}
    started = time.perf_counter()
    for value in grid[:limit]:
        tried = time.perf_counter()
        stages[value] = _fine_tuned(p, trained, trained_model, index, knob, value)
        judged = _judged(p, stages[value], trained)
        tries.append({**judged, knob.field: value, "seconds": time.perf_counter() - tried})
        if not tries[-1]["holds"]:
            break
    held = [t for t in tries if t["holds"]]
    chosen = held[-1] if held else tries[0]
    for t in tries:
        t["chosen"] = t is chosen
    report = {
        "stage": index,
        "field": knob.field,
        "keeps": knob.keeps,
        "grid": grid,
        "max_tries": limit,
        "chosen": chosen[knob.field],
        "met": bool(held),
        "why": _why(knob, tries, held, grid, limit),
        "tries": tries,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if not held:
        safest = f"{grid[0]:g}"
        p.reporter.note(f"optimize[{index}]: no {knob.field} of {grid} holds the budgets; keeping the safest, {safest}")
    held_stages = {t[knob.field]: stages[t[knob.field]] for t in held}
    return Tuned(stages[chosen[knob.field]], report, held_stages, knob)


def picked_by_search(tuned: Tuned, value: float) -> None:
    """`[convert.search]` chose the try of `value` (the search over both): where that is not the grid's own
    pick, the report says so, keeping the grid's reason."""
    field = tuned.knob.field
    if value == tuned.report["chosen"]:
        return
    grid = f"the grid alone would keep {tuned.report['chosen']:g}: {tuned.report['why']}"
    tuned.report.update(chosen=value, why=f"{value:g} chosen by convert.search among the values that held ({grid})")
    for t in tuned.report["tries"]:
        t["chosen"] = t[field] == value


def _fine_tuned(
    p: RunInputs,
    trained: StageOutput[TrainRecord],
    trained_model: Callable[[], Any],
    index: int,
    knob: Knob,
    value: float,
) -> StageOutput[OptimizeRecord]:
    """The `[[optimize]]` list with `value` in place of "auto", as its own stage."""
    from edgepack.pipeline.optimize import optimize_stage

    stages = list(p.recipe.optimize)
    update = {knob.field: value, knob.grid_field: None, "max_tries": None}
    stages[index] = stages[index].model_copy(update=update)
    return optimize_stage(p, trained, trained_model, stages, knob.stage_name(value))


def _judged(p: RunInputs, stage: StageOutput[OptimizeRecord], trained: StageOutput[TrainRecord]) -> dict[str, Any]:
    """A try's fine-tuned model against the recipe's metric budgets (the trained float model as reference)."""
    from edgepack.gate.budgets import candidate_budgets

    tuned = stage.record.stages[-1]["test_metrics"]
    # no fidelity: that is the .tflite's against this model, not made for a try
    holds, budgets = candidate_budgets(p.recipe.budgets, trained.record.test_metrics, tuned, None)
    return {
        "stage_name": stage.name,
        "cached": stage.cached,
        "metrics": dict(tuned),
        "holds": holds,
        "budgets": budgets,
    }


def _why(knob: Knob, tries: list[dict[str, Any]], held: list[dict[str, Any]], grid: Sequence[float], limit: int) -> str:
    """Why the search stopped where it did."""
    last = tries[-1]
    if not last["holds"]:
        broken = ", ".join(b["name"] for b in last["budgets"] if not b["passed"])
        head = f"{last[knob.field]:g} breaks {broken}"
        kept = f"; {held[-1][knob.field]:g} is the {knob.keeps} that holds" if held else "; none holds"
        return head + kept
    if limit < len(grid):
        return f"max_tries = {limit} reached; {last[knob.field]:g} holds"
    return f"every value of the grid holds; {last[knob.field]:g} is its {knob.keeps}"
