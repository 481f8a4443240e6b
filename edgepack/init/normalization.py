"""The `[dataset] normalization` of a starter recipe: a guess from the data's values, said to be one,
unless the model's first layer normalizes the raw input itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgepack.init.data import SEED, DataPlan
from edgepack.init.model import ModelInfo
from edgepack.init.stats import feature_stats, sample_rows

if TYPE_CHECKING:  # the check's record only: candidates does not import this module, nor this one it
    from edgepack.init.candidates import NormCheck


@dataclass(frozen=True)
class NormGuess:
    """The `[dataset] normalization` written, its pixel range (images), and why."""

    mean: float | list[float]
    std: float | list[float]
    pixel_range: tuple[float, float] | None
    why: str
    guess: bool = True


def guess_normalization(plan: DataPlan, model: ModelInfo) -> NormGuess:
    """mean/std from the data's values, unless the model's first layer normalizes itself."""
    if model.normalizer is not None:
        pixel = (0.0, 255.0) if plan.kind == "folder" else _pixels_as_stored(plan)
        return NormGuess(
            0.0,
            1.0,
            pixel,
            f"its first layer, {model.normalizer}, normalizes, so the data is fed raw (mean 0, std 1)",
            guess=False,
        )
    if plan.kind == "folder":
        return NormGuess(0.0, 255.0, (0.0, 255.0), "8-bit images 0..255 -> 0..1: mean 0, std 255")
    if plan.kind == "none":
        return NormGuess(0.0, 1.0, None, "no data to look at, so mean 0, std 1 (the values as stored)")
    arrays = [plan.inputs[k] for k in plan.x_keys]
    if plan.integers == "ids" and all(np.issubdtype(a.dtype, np.integer) for a in arrays):
        return NormGuess(0.0, 1.0, None, "the inputs are token ids the model takes as integers: mean 0, std 1")
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    # as the dataset reads them: with layout "auto", (N, H, W[, C]) arrays are images, and (N, H, W) ones get a
    # channel axis; with "tensors" every array is read as stored (a sequence is no image)
    images = plan.layout == "auto"
    # 8-bit pixels: uint8, or images / integers within 0..255 (float feature vectors there get their own stats)
    pixel_like = all((images and a.ndim in (3, 4)) or np.issubdtype(a.dtype, np.integer) for a in arrays)
    if all(a.dtype == np.uint8 for a in arrays) or (pixel_like and low >= 0 and 1 < high <= 255):
        return NormGuess(
            0.0,
            255.0,
            (0.0, 255.0) if plan.images else None,
            f"values {low:g}..{high:g} look like 8-bit pixels (0..255 -> 0..1): mean 0, std 255",
        )
    if low >= -1 and high <= 1:
        span = (0.0, 1.0) if low >= 0 else (-1.0, 1.0)
        return NormGuess(
            0.0,
            1.0,
            span if plan.images else None,
            f"values {low:g}..{high:g} are already within [{span[0]:g}, {span[1]:g}]: mean 0, std 1",
        )
    # one value per channel of an image (one, for (N, H, W)), per feature of a vector or sequence
    sample, rows = sample_rows([a[..., None] if images and a.ndim == 3 else a for a in arrays], SEED)
    mean, std = feature_stats(sample)
    per = "per feature (the last axis)" if isinstance(mean, list) else "over all values"
    return NormGuess(mean, std, None, f"values {low:g}..{high:g}: the data's own mean and std {per}, of {rows}")


def _pixels_as_stored(plan: DataPlan) -> tuple[float, float] | None:
    if plan.kind != "npz" or not plan.images:
        return None
    first = plan.inputs[plan.x_keys[0]]
    return (0.0, 255.0) if first.dtype == np.uint8 or (first.min() >= 0 and 1 < first.max() <= 255) else None


def pixel_range_of(plan: DataPlan) -> tuple[float, float] | None:
    """The raw values of black and white, for image data only: 0..255 for 8-bit pixels, 0..1 for unit floats."""
    if plan.kind == "folder":
        return (0.0, 255.0)
    if plan.kind != "npz" or not plan.images:
        return None
    first = plan.inputs[plan.x_keys[0]]
    low, high = float(first.min()), float(first.max())
    if first.dtype == np.uint8 or (low >= 0 and 1 < high <= 255):
        return (0.0, 255.0)
    return (0.0, 1.0) if low >= 0 and high <= 1 else None


def measured_normalization(check: NormCheck, plan: DataPlan) -> NormGuess:
    """The normalization the check chose (it must have chosen one), said to be measured."""
    best = check.best
    assert best is not None  # the caller checks
    stats = f"; {check.stats}" if check.stats else ""
    why = f"{best.name} gives the best {check.why}: {best.value:.4g} (of {len(check.candidates)} candidates{stats})"
    return NormGuess(best.mean, best.std, pixel_range_of(plan), why, guess=False)
