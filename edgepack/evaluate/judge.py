"""Judging a converted model: the task's metrics on the test split, and its fidelity to the float model.

A `Judge` holds what that takes (the test split, the float model's predictions on it, its headline
figure, the Keras input names) and can be saved to an `.npz` for the conversion worker, which
judges every fallback attempt the same way the evaluate stage judges the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.tasks import metrics
from edgepack.tasks.base import Split, as_list, worsening


@dataclass(frozen=True)
class Verdict:
    """A model's figures: the task's metrics, the headline value, how much worse than float, fidelity."""

    metrics: dict[str, float]
    value: float | None  # the headline metric (a fidelity task: the worst output's SQNR; None when identical)
    drop: float | None  # worse than the float model by this much in the headline metric (None: fidelity)
    fidelity: dict[str, Any]

    @property
    def worst_sqnr_db(self) -> float | None:
        """The lowest SQNR over the outputs (None: every output identical to the float model's)."""
        return self.fidelity.get("worst_sqnr_db")


@dataclass(frozen=True)
class Judge:
    """Everything needed to judge a `.tflite` of the recipe's model on its test split."""

    task: str
    split: Split
    reference: list[np.ndarray]  # the float Keras model's outputs on split.x
    reference_value: float | None  # the float model's headline figure (None for a fidelity task)
    input_names: list[str]
    output_names: list[str] | None = None

    def judge(self, model: Path | bytes, reporter: Any = None, label: str = "judge") -> Verdict:
        """Run `model` on the test split in LiteRT and judge its outputs."""
        from edgepack.litert import tflite_predict
        from edgepack.progress import NullReporter

        predictions = tflite_predict(model, self.split.x, reporter or NullReporter(), label, self.input_names)
        return self.verdict(predictions)

    def verdict(self, predictions: list[np.ndarray]) -> Verdict:
        """Judge predictions (one array per output, in the Keras model's order)."""
        from edgepack import tasks

        task = tasks.get(self.task)
        figures = task.metrics(predictions, self.split)
        fid = metrics.fidelity(self.reference, predictions, self.output_names)
        if task.metric in figures:
            value = figures[task.metric]
            drop = worsening(task, self.reference_value, value) if self.reference_value is not None else None
        else:
            value, drop = fid["worst_sqnr_db"], None
        return Verdict(figures, value, drop, fid)

    def save(self, path: Path) -> None:
        """Write the judge to `path` (.npz, no pickles)."""
        arrays = {f"x_{i}": x for i, x in enumerate(self.split.x)}
        arrays.update({f"ref_{i}": r for i, r in enumerate(self.reference)})
        targets = as_list(self.split.y)
        arrays.update({f"y_{i}": y for i, y in enumerate(targets)})
        meta = {
            "task": self.task,
            "reference_value": self.reference_value,
            "input_names": self.input_names,
            "output_names": self.output_names,
            "targets": len(targets),
            "targets_list": isinstance(self.split.y, (list, tuple)),
        }
        arrays = {"meta": np.array(json.dumps(meta)), **arrays}  # meta first, as before
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy stub: **arrays may bind allow_pickle: bool

    @classmethod
    def load(cls, path: Path) -> Judge:
        """Read a judge `save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            xs = [data[f"x_{i}"] for i in range(sum(1 for k in data.files if k.startswith("x_")))]
            refs = [data[f"ref_{i}"] for i in range(sum(1 for k in data.files if k.startswith("ref_")))]
            ys = [data[f"y_{i}"] for i in range(meta["targets"])]
        y: Any = ys if meta["targets_list"] else (ys[0] if ys else None)
        return cls(
            meta["task"], Split(xs, y), refs, meta["reference_value"], list(meta["input_names"]), meta["output_names"]
        )


GOALS = {"size": "smallest file", "latency": "lowest p50 latency", "arena": "smallest arena"}
"""What `[convert.search] minimize` picks, in words (0.3 records say `objective`: smallest, fastest)."""


def search_goal(search: dict[str, Any]) -> str:
    """A search record's objective in words: 'smallest file' (a 0.3 record's 'smallest' / 'fastest' too)."""
    minimize = search.get("minimize") or {"smallest": "size", "fastest": "latency"}[search["objective"]]
    return GOALS[minimize]


def criterion_text(criterion: dict[str, Any], metric: str) -> str:
    """A criterion as a person reads it: 'accuracy drop <= 1.00 points', 'SQNR >= 30 dB'."""
    if criterion.get("min_sqnr_db") is not None:
        return f"worst output SQNR >= {criterion['min_sqnr_db']:g} dB"
    allowed = criterion.get("allowed_drop")
    if allowed is None:  # no float figure resolved it: the criterion as written
        relative = criterion.get("max_relative_drop")
        if relative is not None:
            return f"{metric.upper()} worsening <= {100 * relative:g} % of the float figure"
        allowed = criterion.get("max_drop")
        if allowed is None:
            return "no criterion"
    if metric == "accuracy":
        return f"accuracy drop <= {100 * allowed:.2f} points"
    if metric == "auc":
        return f"AUC drop <= {allowed:.4g}"
    return f"{metric.upper()} rise <= {allowed:.6g}"


def allowed_drop(criterion: Any, reference_value: float | None) -> float | None:
    """The largest worsening a criterion (`convert.fallback` / `convert.search`) allows; None for SQNR criteria."""
    if criterion.min_sqnr_db is not None or reference_value is None:
        return None
    return float(criterion.allowed_drop(reference_value))


def meets(criterion: Any, allowed: float | None, verdict: Verdict) -> bool:
    """Whether a verdict meets the criterion: the drop within `allowed`, or every output's SQNR high enough."""
    if criterion.min_sqnr_db is not None:
        worst = verdict.worst_sqnr_db
        return worst is None or worst >= criterion.min_sqnr_db - 1e-9
    return verdict.drop is not None and allowed is not None and verdict.drop <= allowed + 1e-9
