"""`dense_granularity = "auto"`: the model converted with Dense layers per channel and per tensor
(each its own cached stage), both judged on the test split against the recipe's metric and fidelity
budgets; per-tensor ships only where it is smaller and every one of those budgets holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.evaluate.judge import Judge
    from edgepack.pipeline.cache import StageOutput
    from edgepack.pipeline.inputs import RunInputs
    from edgepack.records import ConvertRecord, OptimizeRecord, TrainRecord

CHOICES = ("per-channel", "per-tensor")


def stage_name(granularity: str) -> str:
    """The stage directory of one candidate: `convert-dense-per-channel`, `convert-dense-per-tensor`."""
    return f"convert-dense-{granularity}"


def dense_choice(
    p: RunInputs, optimized: StageOutput[OptimizeRecord], trained: StageOutput[TrainRecord]
) -> tuple[StageOutput[ConvertRecord], dict[str, Any]]:
    """The chosen candidate's stage (the runner makes it the run's `convert`) and the choice as plain data:
    each candidate's size and figures, the budgets it was held to, which was kept and why."""
    from edgepack.pipeline.convert import convert_stage
    from edgepack.pipeline.evaluate import judge

    settings = p.recipe.convert
    stages = {
        g: convert_stage(p, settings.model_copy(update={"dense_granularity": g}), optimized, trained, stage_name(g))
        for g in CHOICES
    }
    with p.clock.timed("granularity"):
        referee = judge(p, optimized, trained)
        candidates = {g: _judged(p, referee, g, stage, trained) for g, stage in stages.items()}
    chosen, why = _pick(candidates["per-channel"], candidates["per-tensor"])
    for granularity, candidate in candidates.items():
        candidate["chosen"] = granularity == chosen
    report = {
        "setting": "auto",
        "chosen": chosen,
        "why": why,
        "metric": p.task.metric,
        "candidates": list(candidates.values()),
    }
    return stages[chosen], report


def _judged(
    p: RunInputs,
    referee: Judge,
    granularity: str,
    stage: StageOutput[ConvertRecord],
    trained: StageOutput[TrainRecord],
) -> dict[str, Any]:
    """One candidate: its size, the task's metrics and fidelity on the test split, the quality budgets."""
    from edgepack.gate.budgets import candidate_budgets

    path = stage.dir / stage.record.model_file
    verdict = referee.judge(path, p.reporter, f"dense {granularity}")
    metrics = trained.record.test_metrics
    holds, budgets = candidate_budgets(p.recipe.budgets, metrics, verdict.metrics, verdict.fidelity)
    return {
        "dense_granularity": granularity,
        "stage": stage.name,
        "size_bytes": stage.record.size_bytes,
        "value": verdict.value,
        "drop": verdict.drop,
        "worst_sqnr_db": verdict.worst_sqnr_db,
        "holds": holds,
        "budgets": budgets,
    }


def _pick(per_channel: dict[str, Any], per_tensor: dict[str, Any]) -> tuple[str, str]:
    """Per tensor where it is smaller and holds every budget; else per channel, and why."""
    saved = per_channel["size_bytes"] - per_tensor["size_bytes"]
    if saved <= 0:
        return "per-channel", f"per-tensor Dense layers are not smaller ({per_tensor['size_bytes']:,} B)"
    failed = [b["name"] for b in per_tensor["budgets"] if not b["passed"]]
    if failed:
        return "per-channel", f"per-tensor Dense layers ({saved:,} B smaller) break {', '.join(failed)}"
    held = ", ".join(b["name"] for b in per_tensor["budgets"]) or "no budget"
    return "per-tensor", f"{saved:,} B ({saved / per_channel['size_bytes']:.1%}) smaller, within {held}"
