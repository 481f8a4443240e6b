"""Fidelity: data without labels; the converted model is judged against the float model alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepack.tasks.base import Chance, RawData, Shape, Split, Targets, common_recipe_problem, no_anomaly_key


class Fidelity:
    """No targets: every output's SQNR (and cosine, max error) against the float model is the measure."""

    kind = "fidelity"
    metric = "sqnr_db"
    higher_is_better = True
    budgets: frozenset[str] = frozenset()
    trainable = False
    class_scores = False
    fraction_metric = False
    several_targets = False
    output_value = "value"
    metadata_kind = "raw"
    y_text: str | None = None
    anomaly_labels = False
    data_hint = "a fidelity task needs only the inputs"
    budget_examples: tuple[str, ...] = ("min_sqnr_db = 30.0",)

    def output_meaning(self, classes: int) -> str:
        return "the model's output"

    def targets(self, raw: RawData, spec: Any, settings: Any) -> Targets:
        return Targets(None, [])

    def output_problem(self, inputs: Sequence[Shape], outputs: Sequence[Shape], data: Any) -> str | None:
        return None if outputs else "the model has no outputs"

    def builder_size(self, data: Any) -> int:
        return 0

    def fit_targets(self, data: Any) -> Any:
        return None

    def loss(self, keras: Any, model: Any) -> Any:
        raise NotImplementedError("a fidelity task has no targets to train on")

    def recipe_problem(self, recipe: Any) -> str | None:
        return common_recipe_problem(self, recipe) or no_anomaly_key(self, recipe)

    def chance(self, y: Any, classes: int | None) -> Chance | None:
        return None

    def fit_metrics(self) -> list[str]:
        return []

    def metrics(self, predictions: Sequence[np.ndarray], split: Split) -> dict[str, float]:
        return {}
