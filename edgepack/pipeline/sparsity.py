"""`final_sparsity = "auto"`: the prune stage's grid tried in ascending order, each value the whole
`[[optimize]]` list fine-tuned again (its own cached stage, `optimize-sparsity-0.7`), judged by the
recipe's budgets on the task's metric; the search stops at the first value that breaks one (or after
`max_tries`) and keeps the largest that held."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.pipeline.cache import StageOutput
    from edgepack.pipeline.records import OptimizeRecord
    from edgepack.pipeline.run import Pipeline
    from edgepack.recipe.schema import Recipe


def auto_index(recipe: Recipe) -> int | None:
    """The `[[optimize]]` stage whose final_sparsity is "auto" (the recipe allows one), or None."""
    return next((i for i, s in enumerate(recipe.optimize) if getattr(s, "final_sparsity", None) == "auto"), None)


def stage_name(sparsity: float) -> str:
    """One try's stage directory: `optimize-sparsity-0.7`."""
    return f"optimize-sparsity-{sparsity:g}"


def sparsity_choice(p: Pipeline) -> tuple[StageOutput[OptimizeRecord], dict[str, Any]]:
    """The kept try's stage (it becomes `optimize`) and the search as plain data: each try's sparsity,
    the task's metrics of its fine-tuned model, the budgets, its seconds; the pick and why."""
    index = auto_index(p.recipe)
    assert index is not None
    auto = p.recipe.optimize[index]
    grid = auto.grid  # type: ignore[union-attr]  # a prune stage: auto_index found its final_sparsity
    limit = min(len(grid), auto.max_tries or len(grid))  # type: ignore[union-attr]
    tries: list[dict[str, Any]] = []
    stages: dict[float, StageOutput[OptimizeRecord]] = {}
    started = time.perf_counter()
    for value in grid[:limit]:
        tried = time.perf_counter()
        stages[value] = _fine_tuned(p, index, value)
        tries.append({**_judged(p, stages[value]), "final_sparsity": value, "seconds": time.perf_counter() - tried})
        if not tries[-1]["holds"]:
            break
    held = [t for t in tries if t["holds"]]
    chosen = held[-1] if held else tries[0]
    for t in tries:
        t["chosen"] = t is chosen
    p.cache.done["optimize"] = stages[chosen["final_sparsity"]]
    report = {
        "stage": index,
        "grid": grid,
        "max_tries": limit,
        "chosen": chosen["final_sparsity"],
        "met": bool(held),
        "why": _why(tries, held, grid, limit),
        "tries": tries,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if not held:
        p.reporter.note(f"optimize[{index}]: no sparsity of {grid} holds the budgets; keeping the lowest, {grid[0]:g}")
    return stages[chosen["final_sparsity"]], report


def _fine_tuned(p: Pipeline, index: int, value: float) -> StageOutput[OptimizeRecord]:
    """The `[[optimize]]` list with `value` in place of "auto", as its own stage."""
    from edgepack.pipeline.optimize import optimize_stage

    stages = list(p.recipe.optimize)
    stages[index] = stages[index].model_copy(update={"final_sparsity": value, "sparsity_grid": None, "max_tries": None})
    return optimize_stage(p, stages, stage_name(value))


def _judged(p: Pipeline, stage: StageOutput[OptimizeRecord]) -> dict[str, Any]:
    """A try's fine-tuned model against the recipe's metric budgets (the trained float model as reference)."""
    from edgepack.gate.budgets import candidate_budgets

    tuned = stage.record.stages[-1]["test_metrics"]
    # no fidelity: that is the .tflite's against this model, not made for a try
    holds, budgets = candidate_budgets(p.recipe.budgets, p.train().record.test_metrics, tuned, None)
    return {
        "stage_name": stage.name,
        "cached": stage.cached,
        "metrics": dict(tuned),
        "holds": holds,
        "budgets": budgets,
    }


def _why(tries: list[dict[str, Any]], held: list[dict[str, Any]], grid: list[float], limit: int) -> str:
    """Why the search stopped where it did."""
    last = tries[-1]
    if not last["holds"]:
        broken = ", ".join(b["name"] for b in last["budgets"] if not b["passed"])
        head = f"{last['final_sparsity']:g} breaks {broken}"
        return head + (f"; {held[-1]['final_sparsity']:g} is the largest that holds" if held else "; none holds")
    if limit < len(grid):
        return f"max_tries = {limit} reached; {last['final_sparsity']:g} holds"
    return f"every value of the grid holds; {last['final_sparsity']:g} is its largest"
