"""Magnitude pruning with a schedule derived from the data size, never from raw steps.

TFMOT's schedules count optimizer steps and update sparsity every `frequency` steps (100 by
default), so a short fine-tune can end at 0 % sparsity. Here begin, end and frequency come from
the stage's epochs and the steps per epoch, and `end_step` is a multiple of `frequency` so the
target sparsity is reached exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.datasets import Dataset
from edgepack.models.tf import load
from edgepack.optimize.loop import fit, steps_per_epoch
from edgepack.recipe.schema import PruneStage
from edgepack.reporting import Reporter

UPDATES_PER_RAMP = 10


@dataclass(frozen=True)
class PruneSteps:
    """The step plan of one pruning stage."""

    total: int
    end: int
    frequency: int


def plan_steps(stage: PruneStage, n_train: int) -> PruneSteps:
    """Derive end step and update frequency from epochs, batch size and the train split size."""
    total = stage.epochs * steps_per_epoch(n_train, stage.batch_size)
    end = max(1, round(total * stage.end_fraction))
    frequency = max(1, end // UPDATES_PER_RAMP)
    return PruneSteps(total=total, end=max(frequency, frequency * (end // frequency)), frequency=frequency)


def prune(model: Any, stage: PruneStage, data: Dataset, reporter: Reporter, label: str) -> tuple[Any, dict[str, Any]]:
    """Prune and fine-tune `model`; returns the stripped model and its measured kernel sparsity."""
    sparsity = load().tfmot.sparsity.keras
    steps = plan_steps(stage, len(data.x_train))
    if stage.schedule == "polynomial":
        schedule = sparsity.PolynomialDecay(stage.initial_sparsity, stage.final_sparsity,
                                            begin_step=0, end_step=steps.end, frequency=steps.frequency)
    else:
        schedule = sparsity.ConstantSparsity(stage.final_sparsity, begin_step=0, frequency=steps.frequency)
    wrapped = sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
    metrics = fit(wrapped, data, stage, reporter, label, callbacks=[sparsity.UpdatePruningStep()])
    stripped = sparsity.strip_pruning(wrapped)
    return stripped, {**metrics, "sparsity": kernel_sparsity(stripped)}


def kernel_sparsity(model: Any) -> dict[str, float]:
    """Fraction of zeros in each layer's kernel (layers without a kernel are left out)."""
    result = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        kernel = getattr(inner, "kernel", None)
        if kernel is not None:
            result[inner.name] = round(float(np.mean(kernel.numpy() == 0)), 4)
    return result
