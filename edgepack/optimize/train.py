"""The train stage: get the recipe's model from its source and train it from scratch (built models)."""

from __future__ import annotations

from typing import Any

from edgepack.datasets import Dataset
from edgepack.errors import ModelError
from edgepack.models.origins import LoadedModel, ModelSource
from edgepack.optimize.loop import fit
from edgepack.progress import Reporter


def train(
    source: ModelSource, data: Dataset, settings: Any, task: Any, optimizable: bool, reporter: Reporter
) -> tuple[LoadedModel, dict[str, float]]:
    """The float reference model: built and trained, or loaded as saved (not retrained)."""
    loaded = source.load(data, task, optimizable)
    if not source.trains:
        return loaded, {}
    if not task.trainable:
        raise ModelError(
            f"a {task.kind} task has no targets to train a built model on",
            context=f'[task] kind = "{task.kind}"',
            hint='give a trained model (model.kind = "saved")',
        )
    check = getattr(task, "check_trainable", None)
    if check is not None:
        check([tuple(t.shape) for t in loaded.model.inputs], [tuple(t.shape) for t in loaded.model.outputs])
    return loaded, fit(loaded.model, data, settings, reporter, "train")
