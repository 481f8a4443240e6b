"""Regression: float targets shaped like the model's outputs; MAE and RMSE."""

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
    as_list,
    common_recipe_problem,
    no_anomaly_key,
    require_array,
    shape_text,
)


class Regression:
    """Float targets, one array per model output; judged by RMSE (and MAE)."""

    kind = "regression"
    metric = "rmse"
    higher_is_better = False
    budgets = frozenset({"max_rmse", "max_rmse_increase"})
    trainable = True
    class_scores = False
    fraction_metric = False
    several_targets = True
    output_value = "value"
    metadata_kind = "targets"
    y_text: str | None = "float targets, one array per output"
    anomaly_labels = False
    data_hint = (
        "store float targets shaped (samples, *output shape), one array per model output (e.g. y.astype('float32'))"
    )
    budget_examples: tuple[str, ...] = ("max_rmse_increase = 0.05",)

    def output_meaning(self, classes: int) -> str:
        return "the predicted targets"

    def targets(self, raw: RawData, spec: Any, settings: Any) -> Targets:
        keys = as_list(getattr(spec, "y_key", None))
        if not keys:
            raise DatasetError(
                f"{raw.where}: regression needs float targets",
                context="dataset.y_key",
                hint="store the targets in the .npz and name them with y_key (a list: one per output)",
            )
        n = len(raw.inputs[0])
        targets = []
        for key in keys:
            y = require_array(raw, key, f"dataset.y_key = '{key}'")
            if len(y) != n or not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
                raise DatasetError(
                    f"{raw.where}: targets '{key}' are {y.dtype} {y.shape}; regression needs numbers, "
                    f"one row per sample ({n} samples)",
                    context=f"dataset.y_key = '{key}'",
                    hint="store float targets shaped (samples, *output shape)",
                )
            y = np.asarray(y, dtype=np.float32)
            targets.append(y[:, None] if y.ndim == 1 else y)  # one value per sample: a (N, 1) output
        return Targets(targets[0] if len(targets) == 1 else targets, [], keys=keys)

    def output_problem(self, inputs: Sequence[Shape], outputs: Sequence[Shape], data: Any) -> str | None:
        targets = as_list(data.y_test)
        if len(outputs) != len(targets):
            return (
                f"the model has {len(outputs)} output(s), the data {len(targets)} target array(s) "
                f"({data.where}: y_key = {data.target_keys})"
            )
        for index, (shape, y) in enumerate(zip(outputs, targets)):
            want = tuple(y.shape[1:])
            if len(shape) - 1 != len(want) or any(d is not None and d != w for d, w in zip(shape[1:], want)):
                key = data.target_keys[index] if index < len(data.target_keys) else f"#{index}"
                return (
                    f"float targets '{key}' in {data.where} are {shape_text(want)} per sample, the model's "
                    f"output {index} is {shape_text(shape[1:])}"
                )
        return None

    def builder_size(self, data: Any) -> int:
        return int(np.prod(as_list(data.y_train)[0].shape[1:]))

    def fit_targets(self, data: Any) -> Any:
        return data.y_train

    def loss(self, keras: Any, model: Any) -> Any:
        return keras.losses.MeanSquaredError()

    def recipe_problem(self, recipe: Any) -> str | None:
        return common_recipe_problem(self, recipe) or no_anomaly_key(self, recipe)

    def chance(self, y: Any, classes: int | None) -> Chance | None:
        targets = y if isinstance(y, list) else [y]
        flat = np.concatenate([np.asarray(t, dtype=np.float64).reshape(len(t), -1) for t in targets], axis=1)
        level = float(np.sqrt(np.mean(np.square(flat - flat.mean(axis=0)))))
        return Chance(level, level, f"predicting the targets' mean gives RMSE {level:.4g}")

    def fit_metrics(self) -> list[str]:
        return ["mae"]

    def metrics(self, predictions: Sequence[np.ndarray], split: Split) -> dict[str, float]:
        targets = as_list(split.y)
        result = {"mae": metrics.mae(predictions, targets), "rmse": metrics.rmse(predictions, targets)}
        if len(targets) > 1:
            for index, (p, t) in enumerate(zip(predictions, targets)):
                result[f"rmse_{index}"] = metrics.rmse([p], [t])
        return result
