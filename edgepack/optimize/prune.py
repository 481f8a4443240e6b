"""Magnitude pruning with a schedule derived from the data size, never from raw steps.

TFMOT's schedules count optimizer steps and update sparsity every `frequency` steps (100 by
default), so a short fine-tune can end at 0 % sparsity. Here begin, end and frequency come from
the stage's epochs (or fractions of the stage) and the steps per epoch; the last update falls on
a step that training reaches, so the target sparsity is always reached.

Structures: unstructured, 2:4 (two non-zeros in every 4 consecutive input-channel weights, the
TFLite kernel's last axis; TFMOT sets that mask once, at the first step, then fine-tunes around
it) and blocks (Dense kernels only: TFMOT pools 2-D weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgepack.datasets import Dataset
from edgepack.models.tf import load
from edgepack.optimize.loop import fit, steps_per_epoch
from edgepack.optimize.select import has_kernel, select_layers
from edgepack.progress import Reporter
from edgepack.recipe.optimize import PruneStage

UPDATES_PER_RAMP = 10


@dataclass(frozen=True)
class PruneSteps:
    """The step plan of one pruning stage.

    TFMOT's wrapper counts a step before it updates the mask, so training sees steps 1..total.
    """

    total: int
    begin: int
    end: int
    frequency: int


def plan_steps(stage: PruneStage, n_train: int) -> PruneSteps:
    """Derive begin, end and update frequency from epochs, batch size and the train split size."""
    total = stage.epochs * steps_per_epoch(n_train, stage.batch_size)
    begin = min(max(1, round(total * stage.begin)), total)
    end = min(max(begin, round(total * stage.end)), total)
    frequency = max(1, (end - begin) // UPDATES_PER_RAMP)
    end = begin + frequency * ((end - begin) // frequency)
    return PruneSteps(total=total, begin=begin, end=end, frequency=frequency)


def prunable(stage: PruneStage) -> Any:
    """The `applies(layer)` rule of a prune stage: None when the layer can be pruned, else why not."""
    load()
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry as registry

    def applies(layer: Any) -> str | None:
        if not has_kernel(layer):
            return "no weights"
        if not (registry.supports(layer) or hasattr(layer, "get_prunable_weights")):
            return "TFMOT cannot prune this layer type"
        if registry.supports(layer) and not registry._weight_names(layer):  # DepthwiseConv2D: wrapped, never masked
            return f"TFMOT prunes no weights of {type(layer).__name__}"
        kernel = getattr(layer, "kernel", None)
        if stage.structure == "block" and (kernel is None or len(kernel.shape) != 2):
            return "block sparsity applies to 2-D (Dense) kernels only"
        if stage.structure == "2:4":
            return _two_four_reason(layer, kernel)
        return None

    return applies


def _two_four_reason(layer: Any, kernel: Any) -> str | None:
    if type(layer).__name__ not in ("Conv2D", "Dense") or kernel is None:
        return "2:4 sparsity applies to Conv2D and Dense kernels"
    fan_in = kernel.shape[-2] if len(kernel.shape) == 4 else kernel.shape[0]
    if fan_in % 4:
        return f"2:4 needs a multiple of 4 input channels (this kernel has {fan_in})"
    return None


def prune(model: Any, stage: PruneStage, data: Dataset, reporter: Reporter, label: str) -> tuple[Any, dict[str, Any]]:
    """Prune and fine-tune the selected layers; returns the stripped model and what it achieved."""
    sparsity = load().tfmot.sparsity.keras
    selection = select_layers(model, stage.layers, stage.skip, label, prunable(stage), "pruning")
    steps = plan_steps(stage, len(data.x_train))
    params: dict[str, Any] = {"pruning_schedule": _schedule(stage, steps)}
    if stage.structure == "2:4":
        params["sparsity_m_by_n"] = (2, 4)
    if stage.structure == "block":
        params["block_size"] = tuple(stage.block_size)

    def wrap(layer: Any) -> Any:
        return sparsity.prune_low_magnitude(layer, **params) if layer.name in selection else layer

    wrapped = load().keras.models.clone_model(model, clone_function=wrap)
    metrics = fit(wrapped, data, stage, reporter, label, callbacks=[sparsity.UpdatePruningStep()])
    stripped = sparsity.strip_pruning(wrapped)
    return stripped, {
        **metrics,
        "structure": stage.structure,
        "schedule": {"kind": stage.schedule, **asdict(steps)},
        "pruned_layers": list(selection.chosen),
        "left_out": selection.left_out,
    }


def _schedule(stage: PruneStage, steps: PruneSteps) -> Any:
    sparsity = load().tfmot.sparsity.keras
    # A one-step stage (begin == end) cannot ramp: the constant schedule reaches the target at once.
    if stage.schedule == "polynomial" and stage.structure != "2:4" and steps.end > steps.begin:
        return sparsity.PolynomialDecay(
            stage.initial_sparsity,
            stage.final_sparsity,
            begin_step=steps.begin,
            end_step=steps.end,
            frequency=steps.frequency,
        )
    return sparsity.ConstantSparsity(
        stage.final_sparsity, begin_step=steps.begin, end_step=steps.end, frequency=steps.frequency
    )
