"""The stage records: typed, frozen, and stored as JSON in each stage's `stage.json`.

Each stage's figures travel between stages, into the summary, the manifest and `--json` as one
of these records instead of a dict whose keys are spelled in many files. `to_dict` is the JSON
form (nested figures stay plain data); `from_dict` reads it back and ignores keys it does not
know, so a record written by a newer field set reads as a cache miss, never as a wrong record.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """JSON in and out for the dataclass records below."""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The record from its JSON form (a `TypeError` when a field is missing)."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class TrainRecord(Record):
    """The float reference model: where it came from, its size and its test metrics."""

    model_file: str
    keras: int  # 2: a tf_keras model (what the optimize stages work on); 3: a Keras 3 model kept as it is
    params: int
    test_metrics: dict[str, float]
    source: dict[str, Any]  # kind, format, keras_version; a Keras 3 model's bridge proof
    fit: dict[str, float] = field(default_factory=dict)  # the last epoch's loss and metrics (built models)

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy of a classifier (None for other tasks)."""
        return self.test_metrics.get("accuracy")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if "accuracy" in self.test_metrics:
            data["test_accuracy"] = self.test_metrics["accuracy"]  # the field readers of 0.2 bundles know
        return data


@dataclass(frozen=True)
class OptimizeRecord(Record):
    """What the `[[optimize]]` stages did (one dict per stage) and the exported SavedModel."""

    saved_model: str
    layers: list[str]
    stages: list[dict[str, Any]]
    inputs: list[str] = field(default_factory=list)  # the model's input names, in its input order


@dataclass(frozen=True)
class ConvertRecord(Record):
    """The `.tflite`: mode, hashes and sizes, what reached its kernels, calibration, error report, fallback."""

    model_file: str
    mode: str
    io: str
    sha256: str
    size_bytes: int
    gzip_bytes: int
    weights: dict[str, dict[str, Any]]
    calibration: dict[str, Any] | None
    quant_error: dict[str, Any]
    fallback: dict[str, Any] | None
    given: str | None = None  # a model given with --model: its path, not converted here


@dataclass(frozen=True)
class EvaluateRecord(Record):
    """The task's metrics of the float, optimized and `.tflite` models on the test split, and the
    `.tflite`'s fidelity to the Keras model it was converted from.

    `float`, `optimized` and `tflite` are the headline metric (accuracy, RMSE, AUC; None for a
    fidelity task); `drop` is how much worse the `.tflite` is than the float model in it."""

    task: str
    metric: str
    float: builtins.float | None  # the field `float` shadows the builtin inside the class body
    optimized: builtins.float | None
    tflite: builtins.float | None
    drop: builtins.float | None
    metrics: dict[str, dict[str, builtins.float]]
    fidelity: dict[str, Any]
    test_samples: int
