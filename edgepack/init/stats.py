"""Statistics of the data shared by the normalization guess and the measured candidates: per-feature mean
and std, and figures rounded to significant digits (what a recipe writes)."""

from __future__ import annotations

import numpy as np

STATS_ROWS = 2048  # samples the range and statistics are computed on: a float64 copy of these, never of all


def sample_rows(arrays: list[np.ndarray], seed: int, rows: int = STATS_ROWS) -> tuple[list[np.ndarray], str]:
    """At most `rows` samples of `arrays` (the same ones of each, seeded, in order), and where they are from."""
    total = len(arrays[0]) if arrays else 0
    if total <= rows:
        return arrays, f"all {total:,} samples"
    keep = np.sort(np.random.default_rng(seed).choice(total, size=rows, replace=False))
    return [a[keep] for a in arrays], f"{rows:,} of {total:,} samples (seeded)"


def feature_stats(arrays: list[np.ndarray]) -> tuple[float | list[float], float | list[float]]:
    """Per-feature mean and std over the last axis (one value when the inputs differ in it, or it is 1)."""
    lasts = {a.shape[-1] for a in arrays}
    if len(lasts) == 1 and next(iter(lasts)) > 1:
        flat = np.concatenate([a.reshape(-1, a.shape[-1]).astype(np.float64) for a in arrays])
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        return [sig(v) for v in mean], [sig(v) if v > 0 else 1.0 for v in std]
    values = np.concatenate([a.reshape(-1).astype(np.float64) for a in arrays])
    std = float(values.std())
    return sig(float(values.mean())), sig(std) if std > 0 else 1.0


def sig(value: float, digits: int = 6) -> float:
    """`value` rounded to `digits` significant digits."""
    return float(f"{value:.{digits}g}")
