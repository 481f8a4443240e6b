"""Classification: integer class labels, softmax (or logit) scores, top-1 accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepack.errors import DatasetError
from edgepack.tasks import metrics
from edgepack.tasks.base import (
    Chance,
    RawData,
    Shape,
    Split,
    Targets,
    common_recipe_problem,
    no_anomaly_key,
    require_array,
    shape_text,
)


class Classification:
    """One output of per-class scores; judged by top-1 accuracy."""

    kind = "classification"
    metric = "accuracy"
    higher_is_better = True
    budgets = frozenset({"max_accuracy_drop", "min_accuracy"})
    trainable = True
    class_scores = True
    fraction_metric = True
    several_targets = True
    output_value = "score"
    metadata_kind = "class_scores"
    y_text: str | None = "class indices"
    anomaly_labels = False
    data_hint = "store integer class indices 0..K-1, one per sample (K: the model's output size)"
    budget_examples: tuple[str, ...] = ("max_accuracy_drop = 0.01", "min_accuracy = 0.9")

    def output_meaning(self, classes: int) -> str:
        return f"one score per line of `labels.txt` ({classes} classes)"

    def targets(self, raw: RawData, spec: Any, settings: Any) -> Targets:
        if raw.classes is not None:
            y, names, key = raw.classes, raw.class_names or [], None
        else:
            key = spec.y_key if isinstance(spec.y_key, str) else None
            if key is None:
                raise DatasetError(
                    f"{raw.where}: a classifier takes one label array; y_key = {spec.y_key}",
                    context="dataset.y_key",
                    hint="give y_key one array of class indices",
                )
            y = require_array(raw, key, f"dataset.y_key = '{key}'")
            if y.ndim != 1 or len(y) != len(raw.inputs[0]) or not np.issubdtype(y.dtype, np.integer):
                raise DatasetError(
                    f"{raw.where}: labels must be integers of shape ({len(raw.inputs[0])},), got {y.dtype} {y.shape}",
                    context=f"dataset.y_key = '{key}'",
                    hint='store class indices 0..K-1, one per sample (or set [task] kind = "regression" for '
                    "float targets)",
                )
            names = [str(i) for i in range(int(y.max()) + 1)] if y.size else []
        labels = list(spec.labels or names)
        if y.size and (y.min() < 0 or y.max() >= len(labels)):
            raise DatasetError(
                f"labels run from {int(y.min())} to {int(y.max())} but {len(labels)} label name(s) are given",
                context=f"dataset.kind = {spec.kind}" + (f", y_key '{key}'" if key else ""),
                hint="set dataset.labels to one name per class, in class-index order",
            )
        return Targets(np.asarray(y, dtype=np.int64), labels)

    def output_problem(self, inputs: Sequence[Shape], outputs: Sequence[Shape], data: Any) -> str | None:
        if len(outputs) != 1:
            return (
                f"a classifier has one output of class scores; this model has {len(outputs)} "
                '(set [task] kind = "fidelity" to judge every output against the float model)'
            )
        if not outputs[0] or outputs[0][-1] != len(data.labels):
            return f"its output is {shape_text(outputs[0])}; the data has {len(data.labels)} classes"
        return None

    def builder_size(self, data: Any) -> int:
        return len(data.labels)

    def fit_targets(self, data: Any) -> Any:
        return data.y_train

    def loss(self, keras: Any, model: Any) -> Any:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model))

    def recipe_problem(self, recipe: Any) -> str | None:
        return common_recipe_problem(self, recipe) or no_anomaly_key(self, recipe)

    def chance(self, y: Any, classes: int | None) -> Chance | None:
        k = max(2, int(classes or (int(np.max(y)) + 1)))
        majority = float(np.max(np.bincount(np.asarray(y).astype(np.int64), minlength=k)) / max(1, len(y)))
        level = max(1.0 / k, majority)
        limit = min(2 * level, (1 + level) / 2)
        return Chance(level, limit, f"{k} classes, chance {level:.3g}: near it up to {limit:.3g}")

    def fit_metrics(self) -> list[str]:
        return ["accuracy"]

    def metrics(self, predictions: Sequence[np.ndarray], split: Split) -> dict[str, float]:
        return {"accuracy": metrics.accuracy(predictions[0], split.y)}


def outputs_probabilities(model: Any) -> bool:
    """True when the model ends in a softmax (layer or activation), so it outputs probabilities.

    Looks through TFMOT's wrappers: QAT wraps the layer and its activation, pruning the layer.
    """
    last = model.layers[-1]
    inner = getattr(last, "layer", last)
    names = {type(last).__name__, type(inner).__name__, last.name, inner.name}
    for activation in (getattr(last, "activation", None), getattr(inner, "activation", None)):
        wrapped = getattr(activation, "activation", activation)
        names.add(getattr(wrapped, "__name__", ""))
    return any("softmax" in name.lower() for name in names)
