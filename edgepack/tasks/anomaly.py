"""Anomaly detection: trained on normal samples only, judged by ROC AUC on normal and anomalous ones.

The model is an autoencoder (its output shaped like its input: a sample's score is its mean
squared reconstruction error) or gives one score per sample (higher: more anomalous).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepack.errors import DatasetError, ModelError
from edgepack.tasks import metrics
from edgepack.tasks.base import Chance, RawData, Shape, Split, Targets, common_recipe_problem, require_array, shape_text

LABELS = ["normal", "anomalous"]


AUC_CHANCE = 0.55  # an AUC up to this is near chance (0.5)


class Anomaly:
    """0 normal / 1 anomalous test labels; ROC AUC of the anomaly score."""

    kind = "anomaly"
    metric = "auc"
    higher_is_better = True
    budgets = frozenset({"min_auc", "max_auc_drop"})
    trainable = True
    class_scores = False
    fraction_metric = True
    several_targets = False
    output_value = "value"
    metadata_kind = "anomaly"
    y_text: str | None = None
    anomaly_labels = True
    data_hint = (
        "store one 0 (normal) / 1 (anomalous) label per sample, for a model whose output is shaped like "
        "its input (an autoencoder) or is one score"
    )
    budget_examples: tuple[str, ...] = ("max_auc_drop = 0.01",)

    def output_meaning(self, classes: int) -> str:
        return "the reconstruction or anomaly score (the metadata says which)"

    def targets(self, raw: RawData, spec: Any, settings: Any) -> Targets:
        key = getattr(spec, "anomaly_key", None)
        normal_classes = getattr(settings, "normal_classes", None)
        if key is not None:
            y = require_array(raw, key, f"dataset.anomaly_key = '{key}'")
            where = f"dataset.anomaly_key = '{key}'"
            if y.ndim != 1 or len(y) != len(raw.inputs[0]):
                raise DatasetError(
                    f"{raw.where}: anomaly labels '{key}' are {y.shape}, not one per sample ({len(raw.inputs[0])})",
                    context=where,
                    hint="store one 0/1 label per sample",
                )
            values = sorted(set(np.unique(y).tolist()))
            if not set(values) <= {0, 1}:
                raise DatasetError(
                    f"{raw.where}: anomaly labels '{key}' hold {values[:6]}; they must be 0 (normal) or 1 (anomalous)",
                    context=where,
                    hint="store 0 for normal and 1 for anomalous samples",
                )
            y = np.asarray(y, dtype=np.int64)
        elif normal_classes:
            if raw.classes is None:
                raise DatasetError(
                    f"{raw.where}: task.normal_classes needs class labels",
                    context="task.normal_classes",
                    hint="use a digits or folder dataset, or give dataset.anomaly_key (npz)",
                )
            names = list(spec.labels or raw.class_names or [])
            unknown = sorted(set(normal_classes) - set(names))
            if unknown:
                raise DatasetError(
                    f"task.normal_classes names {unknown}, which the data does not have",
                    context=f"classes: {', '.join(names)}",
                    hint="name classes the dataset has",
                )
            normal_ids = [names.index(c) for c in normal_classes]
            y = np.where(np.isin(raw.classes, normal_ids), 0, 1).astype(np.int64)
            where = "task.normal_classes"
        else:
            raise DatasetError(
                "an anomaly task needs its labels: dataset.anomaly_key (npz: 0 normal, 1 anomalous) "
                "or task.normal_classes (classes that are normal)",
                context='[task] kind = "anomaly"',
            )
        if len(np.unique(y)) < 2:
            only = LABELS[int(y[0])] if y.size else "no"
            raise DatasetError(
                f"{raw.where}: every sample is {only}: ROC AUC needs normal and anomalous samples",
                context=where,
                hint="include anomalous (1) and normal (0) samples",
            )
        return Targets(y, list(LABELS), normal=y == 0, keys=[key] if key else [])

    def output_problem(self, inputs: Sequence[Shape], outputs: Sequence[Shape], data: Any) -> str | None:
        if len(inputs) != 1 or len(outputs) != 1:
            return (
                f"an anomaly model has one input and one output (an autoencoder, or one score); this one has "
                f"{len(inputs)} and {len(outputs)}"
            )
        if _is_autoencoder(inputs[0], outputs[0]) or _is_score(outputs[0]):
            return None
        return (
            f"its output is {shape_text(outputs[0][1:])} per sample: neither the input's shape "
            f"({shape_text(inputs[0][1:])}, an autoencoder) nor one score"
        )

    def builder_size(self, data: Any) -> int:
        return int(np.prod(data.x_train.shape[1:]))

    def fit_targets(self, data: Any) -> Any:
        return data.x_train  # an autoencoder learns to reconstruct the normal samples

    def check_trainable(self, inputs: Sequence[Shape], outputs: Sequence[Shape]) -> None:
        """Only an autoencoder can be trained here: a score model has no targets to learn."""
        if not _is_autoencoder(inputs[0], outputs[0]):
            raise ModelError(
                "an anomaly model with one score output cannot be trained by edgepack (it has no targets to learn)",
                context='[task] kind = "anomaly"',
                hint='give the trained model as kind = "saved", or build an autoencoder',
            )

    def loss(self, keras: Any, model: Any) -> Any:
        return keras.losses.MeanSquaredError()

    def recipe_problem(self, recipe: Any) -> str | None:
        if (getattr(recipe.dataset, "anomaly_key", None) is None) == (recipe.task.normal_classes is None):
            return (
                "task.kind = 'anomaly' takes its labels from dataset.anomaly_key (npz: 0 normal, "
                "1 anomalous) or task.normal_classes (classes that are normal): give exactly one"
            )
        return common_recipe_problem(self, recipe)

    def chance(self, y: Any, classes: int | None) -> Chance | None:
        return Chance(0.5, AUC_CHANCE, f"chance AUC is 0.5; near it up to {AUC_CHANCE}")

    def fit_metrics(self) -> list[str]:
        return []

    def metrics(self, predictions: Sequence[np.ndarray], split: Split) -> dict[str, float]:
        return {"auc": round(metrics.roc_auc(scores(predictions[0], split.x[0]), split.y), 6)}


def scores(prediction: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The anomaly score per sample: reconstruction MSE for an autoencoder, else the model's one score
    (one value per sample is a score, even when the input has one feature too)."""
    prediction = np.asarray(prediction, dtype=np.float64)
    if np.shape(prediction)[1:] == np.shape(x)[1:] and prediction[0].size > 1:
        return metrics.reconstruction_error(x, prediction)
    return prediction.reshape(len(prediction))


def _is_autoencoder(inp: Shape, out: Shape) -> bool:
    same = len(inp) == len(out) and all(a is None or b is None or a == b for a, b in zip(inp[1:], out[1:]))
    return same and not _is_score(out)


def _is_score(out: Shape) -> bool:
    return all(d == 1 for d in out[1:])
