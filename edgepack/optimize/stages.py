"""The optimize stage: run the recipe's `[[optimize]]` list in order on the trained model.

Each stage starts from a fresh copy of the previous stage's model (so the trained model is never
changed in place), runs under the recipe's `tf.distribute` strategy, and is measured the same
way: the task's test metrics, parameter count, kernel sparsity and the gzip size of the float32 weights.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.datasets import Dataset
from edgepack.errors import BadInputError
from edgepack.models.tf import load, strategy_scope
from edgepack.optimize.loop import evaluate
from edgepack.progress import Reporter
from edgepack.recipe.optimize import ClusterStage, DistillStage, LowRankStage, OptimizeStage, PruneStage, QatStage


def optimize(
    model: Any,
    stages: Sequence[OptimizeStage],
    data: Dataset,
    reporter: Reporter,
    base_dir: Path,
    seed: int,
    strategy: str = "default",
    per_channel: bool = True,
) -> tuple[Any, list[dict[str, Any]]]:
    """Apply each stage; returns the final model and one metrics record per stage.

    `per_channel` is the converter's weight granularity, which QAT trains for.
    """
    records: list[dict[str, Any]] = []
    done: set[str] = set()
    for index, stage in enumerate(stages):
        label = f"optimize[{index}] {stage.kind}"
        params_before = param_count(model)
        run = StageRun(data, reporter, label, frozenset(done), base_dir, seed, per_channel)
        with strategy_scope(strategy):
            model, metrics = technique(stage.kind)(fresh_copy(model), stage, run)
        done.add(stage.kind)
        metrics["test_metrics"] = evaluate(model, data, reporter, f"{label}: evaluate")
        if "accuracy" in metrics["test_metrics"]:
            metrics["test_accuracy"] = metrics["test_metrics"]["accuracy"]
        record = {"stage": index, "kind": stage.kind, **metrics, **measure(model, stage.kind, params_before)}
        record["warnings"] = lost_sparsity(records[-1]["sparsity"] if records else {}, record["sparsity"], stage.kind)
        for warning in record["warnings"]:
            reporter.note(f"{label}: {warning}")
        records.append(record)
    return model, records


def measure(model: Any, kind: str, params_before: int) -> dict[str, Any]:
    """Parameters, per-kernel sparsity, overall kernel zeros and weights size after a stage.

    A QAT model's wrappers hold quantizer state (and, cluster-preserving, the kernel itself), so
    its parameters are those of the model it wraps and its size is measured in the .tflite.
    """
    kernels = layer_kernels(model)
    qat = kind == "qat"
    return {
        "params": params_before if qat else param_count(model),
        "weights_gzip_bytes": None if qat else weights_gzip_size(model),
        "sparsity": {name: round(float(np.mean(k == 0)), 4) for name, k in kernels.items()},
        "kernel_zeros": zero_fraction(kernels.values()),
    }


def lost_sparsity(before: dict[str, float], after: dict[str, float], kind: str) -> list[str]:
    """Layers whose zeros a stage other than prune did not keep (a warning each, with the figures)."""
    if kind == "prune":
        return []
    return [
        f"sparsity of '{name}' fell from {before[name]:.2f} to {value:.2f}"
        for name, value in after.items()
        if name in before and before[name] - value > 0.02
    ]


@dataclass(frozen=True)
class StageRun:
    """What every technique is given beside the model and its own `[[optimize]]` entry."""

    data: Dataset
    reporter: Reporter
    label: str  # `optimize[1] qat`, for progress and errors
    done: frozenset[str]  # the kinds of the stages before it (QAT preserves what prune and cluster made)
    base_dir: Path
    seed: int
    per_channel: bool  # the converter's weight granularity, which QAT trains for


Technique = Callable[[Any, Any, StageRun], tuple[Any, dict[str, Any]]]
"""A technique: (a fresh copy of the model, its recipe entry, the run) -> (the new model, its metrics)."""


def _prune(model: Any, stage: PruneStage, run: StageRun) -> tuple[Any, dict[str, Any]]:
    from edgepack.optimize.prune import prune

    return prune(model, stage, run.data, run.reporter, run.label)


def _cluster(model: Any, stage: ClusterStage, run: StageRun) -> tuple[Any, dict[str, Any]]:
    from edgepack.optimize.cluster import cluster

    return cluster(model, stage, run.data, run.reporter, run.label, pruned="prune" in run.done)


def _distill(model: Any, stage: DistillStage, run: StageRun) -> tuple[Any, dict[str, Any]]:
    from edgepack.optimize.distill import distill

    return distill(model, stage, run.data, run.reporter, run.label, run.base_dir, run.seed)


def _low_rank(model: Any, stage: LowRankStage, run: StageRun) -> tuple[Any, dict[str, Any]]:
    from edgepack.optimize.lowrank import low_rank

    return low_rank(model, stage, run.data, run.reporter, run.label)


def _qat(model: Any, stage: QatStage, run: StageRun) -> tuple[Any, dict[str, Any]]:
    from edgepack.optimize.qat import qat

    pruned, clustered = "prune" in run.done, "cluster" in run.done
    return qat(
        model, stage, run.data, run.reporter, run.label, pruned=pruned, clustered=clustered, per_channel=run.per_channel
    )


TECHNIQUES: dict[str, Technique] = {
    "prune": _prune,
    "cluster": _cluster,
    "distill": _distill,
    "low-rank": _low_rank,
    "qat": _qat,
}


def technique(kind: str) -> Technique:
    """The technique of an `[[optimize]]` kind; a kind without one is a bad input listing those there are."""
    try:
        return TECHNIQUES[kind]
    except KeyError:
        raise BadInputError(
            f"no optimize technique '{kind}'", hint=f"techniques: {', '.join(TECHNIQUES)}", code="recipe-invalid"
        ) from None


def fresh_copy(model: Any) -> Any:
    """A copy of `model` with its own variables (created in the current strategy scope)."""
    copy = load().keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def weights_gzip_size(model: Any) -> int:
    """gzip -9 size of the model's float32 weights: what pruning and clustering save."""
    blob = b"".join(np.asarray(w, dtype=np.float32).tobytes() for w in _weights(model))
    return len(gzip.compress(blob, compresslevel=9, mtime=0))


def param_count(model: Any) -> int:
    """Parameters of the model's own layers; the quantizer state QAT wrappers add is left out."""
    return int(sum(np.size(w) for w in _weights(model)))


def zero_fraction(kernels: Any) -> float:
    """Zeros over all elements of the given kernels."""
    kernels = list(kernels)
    total = sum(np.size(k) for k in kernels)
    return round(sum(int(np.count_nonzero(k == 0)) for k in kernels) / total, 4) if total else 0.0


def layer_kernels(model: Any) -> dict[str, np.ndarray]:
    """Each layer's kernel (through TFMOT wrappers), by layer name."""
    kernels = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        kernel = getattr(inner, "kernel", None)
        kernel = getattr(inner, "depthwise_kernel", None) if kernel is None else kernel
        if kernel is not None:
            kernels[inner.name] = kernel.numpy()
    return kernels


def _weights(model: Any) -> list[Any]:
    """The weights people ship: the layers' own variables, not a QAT wrapper's quantizer state."""
    weights: list[Any] = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        weights.extend(v.numpy() for v in inner.weights)
    return weights
