"""The numbers tasks are judged by, in numpy alone (the conversion worker and the gate use them too).

Fidelity compares a converted model's outputs with the float model's on the same inputs:
SQNR (signal-to-quantization-noise ratio, in dB: 10 log10 of the float output's energy over the
energy of the difference), cosine similarity and the largest absolute error, per output tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepack.errors import ModelError, StageError

SQNR_FLOOR_DB = -999.0  # what an output with NaN/inf values, or with no signal, reports


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy: the share of samples whose highest score is their label."""
    scores = np.asarray(scores)
    return float(np.mean(np.argmax(scores.reshape(len(scores), -1), axis=-1) == labels))


def mae(predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> float:
    """Mean absolute error over every value of every output."""
    errors = np.concatenate([_diff(p, t).ravel() for p, t in zip(predictions, targets)])
    return float(np.mean(np.abs(errors)))


def rmse(predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> float:
    """Root mean squared error over every value of every output."""
    errors = np.concatenate([_diff(p, t).ravel() for p, t in zip(predictions, targets)])
    return float(np.sqrt(np.mean(np.square(errors))))


def _diff(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    prediction = np.asarray(prediction, dtype=np.float64)
    return prediction.reshape(np.shape(target)) - np.asarray(target, dtype=np.float64)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve for `labels` (1 anomalous, 0 normal) ranked by `scores` (higher: more
    anomalous): the probability that an anomalous sample scores above a normal one, ties counting half
    (the Mann-Whitney U statistic over average ranks)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if not np.all(np.isfinite(scores)):
        raise StageError(
            f"{int(np.sum(~np.isfinite(scores)))} of {len(scores)} anomaly scores are NaN or "
            "infinite: the model's outputs are not numbers there",
            code="scores-not-finite",
            hint="check the model on those inputs (an overflow in float16, or a broken conversion)",
        )
    positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both normal (0) and anomalous (1) samples")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over runs of equal scores
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    u = float(np.sum(ranks[labels == 1])) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def reconstruction_error(x: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Each sample's mean squared reconstruction error (an autoencoder's anomaly score)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.mean(np.square(np.asarray(reconstructed, dtype=np.float64).reshape(x.shape) - x), axis=1)


def output_fidelity(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """How close `other` is to `reference` (one output tensor over the same samples): SQNR in dB
    (None when identical: no noise at all), cosine similarity, largest absolute error."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    out = np.asarray(other, dtype=np.float64).reshape(np.shape(reference)).ravel()
    broken = int(np.sum(~np.isfinite(out)) + np.sum(~np.isfinite(ref)))
    if broken:  # NaN or inf anywhere: the worst figures (a NaN would hide from min() and from a budget)
        finite = np.isfinite(ref) & np.isfinite(out)
        largest = float(np.max(np.abs(ref[finite] - out[finite]))) if finite.any() else 0.0
        return {
            "sqnr_db": SQNR_FLOOR_DB,
            "identical": False,
            "cosine": 0.0,
            "max_abs_error": largest,
            "non_finite": broken,
        }
    with np.errstate(over="ignore"):
        noise = float(np.sum(np.square(ref - out)))
        signal = float(np.sum(np.square(ref)))
    if noise == 0.0:
        sqnr = None
    elif signal == 0.0 or not math.isfinite(noise):
        sqnr = -math.inf
    elif not math.isfinite(signal):
        sqnr = math.inf
    else:
        sqnr = 10.0 * math.log10(signal / noise)
    with np.errstate(over="ignore", invalid="ignore"):
        norms = float(np.linalg.norm(ref) * np.linalg.norm(out))
        cosine = float(np.dot(ref, out) / norms) if 0 < norms < math.inf else (1.0 if noise == 0.0 else 0.0)
    return {
        "sqnr_db": None if sqnr is None else round(min(max(sqnr, SQNR_FLOOR_DB), -SQNR_FLOOR_DB), 4),
        "identical": noise == 0.0,
        "cosine": round(cosine, 8),
        "max_abs_error": float(np.max(np.abs(ref - out))) if ref.size else 0.0,
    }


def fidelity(
    reference: Sequence[np.ndarray], other: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per output: SQNR, cosine, max abs error; and the worst SQNR (None when every output is identical)."""
    if len(reference) != len(other):
        raise ModelError(
            f"the converted model has {len(other)} output(s), the float model {len(reference)}",
            code="outputs-mismatch",
            hint="give the .tflite converted from this recipe's model",
        )
    outputs = []
    for index, (ref, out) in enumerate(zip(reference, other)):
        outputs.append(
            {"output": index, "name": names[index] if names else f"output_{index}", **output_fidelity(ref, out)}
        )
    finite = [o["sqnr_db"] for o in outputs if o["sqnr_db"] is not None]
    return {
        "outputs": outputs,
        "worst_sqnr_db": min(finite) if finite else None,
        "min_cosine": min(o["cosine"] for o in outputs) if outputs else None,
    }
