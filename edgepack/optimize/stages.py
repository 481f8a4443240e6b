"""The optimize stage: run the recipe's `[[optimize]]` list in order on the trained model."""

from __future__ import annotations

from typing import Any

from edgepack.datasets import Dataset
from edgepack.models.source import count_params
from edgepack.optimize.loop import accuracy
from edgepack.optimize.prune import prune
from edgepack.optimize.qat import qat
from edgepack.recipe.schema import PruneStage, QatStage
from edgepack.reporting import Reporter


def optimize(model: Any, stages: list[PruneStage | QatStage], data: Dataset,
             reporter: Reporter) -> tuple[Any, list[dict[str, Any]]]:
    """Apply each stage; returns the final model and one metrics record per stage."""
    records = []
    pruned = False
    for index, stage in enumerate(stages):
        label = f"optimize[{index}] {stage.kind}"
        if isinstance(stage, PruneStage):
            model, metrics = prune(model, stage, data, reporter, label)
            pruned = True
        else:
            model, metrics = qat(model, stage, data, reporter, label, preserve_sparsity=pruned)
        metrics["test_accuracy"] = accuracy(model, data.x_test, data.y_test, reporter, f"{label}: evaluate")
        records.append({"stage": index, "kind": stage.kind, "params": count_params(model), **metrics})
    return model, records
