"""What a task is to the pipeline: its targets, its loss, its metrics, its criterion, its budgets.

A task is one small object per kind (`classification`, `regression`, `anomaly`, `fidelity`)
behind the `Task` protocol; nothing else in the pipeline branches on the kind. Metrics are
computed from predictions (one array per model output, over the test split), so the same
function judges a Keras model, a `.tflite` in this process and one in the conversion worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class RawData:
    """What a dataset source read, before the task picks its targets: the inputs as stored (one
    array per model input), the class of each sample and the class names when the source has
    classes (digits, folders, an npz `y_key` of integers), and the npz's named arrays."""

    inputs: list[np.ndarray]
    where: str  # the file (or "the shipped digits") for messages
    classes: np.ndarray | None = None
    class_names: list[str] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # every array the file holds, for messages


@dataclass(frozen=True)
class Targets:
    """The task's view of the samples: what a model is trained and judged against.

    `y` is per sample: class indices (classification), float targets (regression: one array per
    output), 0/1 anomaly labels (anomaly), or None (fidelity). `normal` marks the samples training
    and calibration may use (anomaly: the normal ones; else all)."""

    y: Any
    labels: list[str]
    normal: np.ndarray | None = None
    keys: list[str] = field(default_factory=list)  # the npz keys the targets came from, for messages


@dataclass(frozen=True)
class Split:
    """The test split as metrics need it: one array per model input, and the targets."""

    x: list[np.ndarray]
    y: Any


@dataclass(frozen=True)
class Chance:
    """What a model that learned nothing scores, and the figure at (or beyond) which a model is near it."""

    level: float
    limit: float
    why: str


class Task(Protocol):
    """One kind of task."""

    kind: str
    metric: str  # the headline metric: what search and fallback criteria compare
    higher_is_better: bool
    budgets: frozenset[str]  # the [budgets] keys that apply to this task
    trainable: bool
    class_scores: bool  # its output is one score per class: labels, class coverage, the label file
    fraction_metric: bool  # the headline metric is a fraction (accuracy, AUC): a drop above 1 is a mistake
    several_targets: bool  # `dataset.y_key` may name several arrays
    output_value: str  # what one output element is called in a dequantization formula ("score", "value")
    metadata_kind: str  # how the shipped metadata describes the outputs: class_scores, targets, anomaly, raw
    y_text: str | None  # what `dataset.y_key` holds for this task, for a starter recipe (None: it reads no y_key)
    anomaly_labels: bool  # its labels are 0/1 anomaly labels (`dataset.anomaly_key`)
    data_hint: str  # how data for this task is stored, for a refusal's hint
    budget_examples: tuple[str, ...]  # [budgets] lines a starter recipe suggests

    def output_meaning(self, classes: int) -> str:
        """What an output of the model means, for a usage note (`classes`: the labels' count)."""

    def targets(self, raw: RawData, spec: Any, settings: Any) -> Targets:
        """Pick and check the targets in `raw` (a `DatasetError` naming the file and key when they do not fit)."""

    def output_problem(self, inputs: Sequence[Shape], outputs: Sequence[Shape], data: Any) -> str | None:
        """Why a model with these input and output shapes cannot be judged on `data` (None: it can)."""

    def builder_size(self, data: Any) -> int:
        """The second argument a `module:function` builder gets (classes, target size, features)."""

    def fit_targets(self, data: Any) -> Any:
        """What `model.fit` is given as y on the train split."""

    def loss(self, keras: Any, model: Any) -> Any:
        """The training loss for `model`, built with `keras` (tf_keras or Keras 3)."""

    def fit_metrics(self) -> list[str]:
        """Keras metric names reported while training."""

    def metrics(self, predictions: Sequence[np.ndarray], split: Split) -> dict[str, float]:
        """The task's metrics of predictions (one array per output) on `split`."""

    def recipe_problem(self, recipe: Any) -> str | None:
        """What this task refuses in a recipe beyond its budgets (None: nothing)."""

    def chance(self, y: Any, classes: int | None) -> Chance | None:
        """What a model that learned nothing scores on targets `y` (None: the task has no such level)."""


def common_recipe_problem(task: Task, recipe: Any) -> str | None:
    """The rules every task states through its attributes: training needs targets, distillation class
    scores, a fraction metric's drop is a fraction, a task judged by SQNR alone takes an SQNR criterion."""
    kind = task.kind
    if not task.class_scores and any(stage.kind == "distill" for stage in recipe.optimize):
        return f"optimize: 'distill' teaches class scores; task.kind = '{kind}' has none: remove the stage"
    if not task.trainable and recipe.model.kind == "builder":
        return (
            f"task.kind = '{kind}' has no targets to train a built model on: give a trained model "
            "(model.kind = 'saved') or another task"
        )
    if not task.trainable and recipe.optimize:
        return f"task.kind = '{kind}' has no targets to fine-tune on: remove the [[optimize]] stages"
    if not task.several_targets and isinstance(recipe.dataset.__dict__.get("y_key"), list):
        return f"dataset.y_key is a list: several target arrays are for regression, not '{kind}'"
    for name in ("fallback", "search"):
        criterion = getattr(recipe.convert, name)
        if criterion is None:
            continue
        if task.metric == "sqnr_db" and criterion.min_sqnr_db is None:
            return (
                f"convert.{name}: a {kind} task is judged by SQNR alone; give min_sqnr_db "
                "instead of max_drop / max_relative_drop"
            )
        if task.fraction_metric and (criterion.max_drop or 0) > 1:
            return (
                f"convert.{name}.max_drop = {criterion.max_drop}: an accuracy or AUC drop is a "
                "fraction (0.01 = 1 point)"
            )
    return None


def no_anomaly_key(task: Task, recipe: Any) -> str | None:
    """A task that does not take anomaly labels refuses `dataset.anomaly_key`."""
    if getattr(recipe.dataset, "anomaly_key", None) is not None:
        return f"dataset.anomaly_key is set but task.kind = '{task.kind}': set [task] kind = 'anomaly' or remove it"
    return None


def require_array(raw: RawData, key: str, context: str) -> np.ndarray:
    """The array `key` of the source, or a `DatasetError` naming the file, the key and what it holds."""
    from edgepack.errors import DatasetError

    if key not in raw.arrays:
        raise DatasetError(
            f"{raw.where}: no array named '{key}'",
            context=context,
            hint=f"the file holds: {', '.join(raw.names) or '(nothing)'}",
        )
    return raw.arrays[key]


def shape_text(shape: Sequence[int | None]) -> str:
    """A shape as people write it: 8x8x1, ?x10."""
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def worsening(task: Task, reference: float, value: float) -> float:
    """How much worse `value` is than `reference` in the task's headline metric (negative: better)."""
    return round(reference - value if task.higher_is_better else value - reference, 6)


def as_list(value: Any) -> list[Any]:
    """One model input or output as a list of one; several as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def take(value: Any, index: np.ndarray) -> Any:
    """The samples `index` of an array, of each array of a list, or None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [v[index] for v in value]
    return value[index]
