"""The Dataset record, loading by recipe spec, seeded splits, normalization, fingerprints."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepack.errors import DatasetError
from edgepack.recipe.schema import DigitsDataset, FolderDataset, Normalization, NpzDataset


@dataclass(frozen=True)
class Dataset:
    """Normalized float32 NHWC images and integer labels, split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]
    normalization: Normalization
    raw_test: np.ndarray | None = None  # the test images as loaded, before resize, channels and normalization
    pixel_range: tuple[float, float] | None = None  # raw values of 8-bit black and white, when known

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one image (H, W, C)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """How many classes the labels name."""
        return len(self.labels)


def load_dataset(spec: DigitsDataset | NpzDataset | FolderDataset, seed: int, base_dir: Path) -> Dataset:
    """Load the raw data a spec names, normalize it and split it with `seed`."""
    if isinstance(spec, DigitsDataset):
        from edgepack.datasets.sources import load_digits as loader
    elif isinstance(spec, NpzDataset):
        from edgepack.datasets.sources import load_npz as loader
    else:
        from edgepack.datasets.sources import load_folder as loader
    x, y, labels = loader(spec, base_dir)
    labels = _labels(spec.labels or labels, y, spec)
    if spec.limit is not None and spec.limit < len(x):
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=spec.limit, replace=False))
        x, y = x[keep], y[keep]
    raw = _nhwc(x)
    x = preprocess(raw, spec.resize, spec.channels, spec.normalization)
    train, test = split_indices(len(x), spec.test_fraction, seed)
    pixel_range = spec.pixel_range or ((0.0, 255.0) if raw.dtype == np.uint8 else None)
    return Dataset(x[train], y[train], x[test], y[test], labels, spec.normalization, raw_test=raw[test],
                   pixel_range=pixel_range)


def preprocess(raw: np.ndarray, size: tuple[int, int] | None, channels: int | None, norm: Normalization) -> np.ndarray:
    """Raw NHWC images to model inputs: resize (bilinear), channel conversion, then `(x - mean) / std`."""
    x = resize(raw, size) if size is not None else raw
    x = to_channels(x, channels) if channels is not None else x
    return normalize(x, norm)


def normalize(x: np.ndarray, norm: Normalization) -> np.ndarray:
    """Apply `(x - mean) / std` (per channel when lists are given) and return float32."""
    mean = np.asarray(norm.mean, dtype=np.float32)
    std = np.asarray(norm.std, dtype=np.float32)
    channels = x.shape[-1]
    for name, arr in (("mean", mean), ("std", std)):
        if arr.ndim and arr.shape[0] not in (1, channels):
            raise DatasetError(
                f"dataset.normalization.{name} has {arr.shape[0]} values but the images have "
                f"{channels} channel(s)",
                hint="give one value, or one per channel",
            )
    return ((x.astype(np.float32) - mean) / std).astype(np.float32)


def resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize NHWC images to `size` (height, width) with bilinear interpolation, per channel."""
    from PIL import Image

    height, width = size
    if x.shape[1:3] == (height, width):
        return x
    out = np.empty((len(x), height, width, x.shape[-1]), dtype=np.float32)
    for i, image in enumerate(x.astype(np.float32)):
        for c in range(x.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F")
            out[i, ..., c] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Grey to RGB (the grey plane repeated) or RGB to grey (ITU-R 601 luma)."""
    have = x.shape[-1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if have == 3 and channels == 1:
        return (x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    raise DatasetError(f"cannot turn images with {have} channels into {channels}",
                       context="dataset.channels", hint="give images with 1 or 3 channels")


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation cut into train and test indices (test = ceil(n * fraction))."""
    n_test = math.ceil(n * test_fraction)
    if n_test >= n or n_test < 1:
        raise DatasetError(
            f"dataset has {n} samples: too few for test_fraction = {test_fraction}",
            hint="add samples or change dataset.test_fraction",
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def calibration_indices(total: int, count: int, seed: int) -> np.ndarray:
    """Sorted indices of `count` samples drawn without replacement from `total` with `seed` (all if fewer)."""
    count = min(count, total)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))


def calibration_sample(x: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` samples drawn without replacement from `x` with `seed` (all of x if fewer)."""
    return x[calibration_indices(len(x), count, seed)]


def calibration_quality(x_cal: np.ndarray, y_cal: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                        labels: list[str]) -> dict[str, object]:
    """How well the calibration sample covers the test split: classes, and the input value range
    (test values outside the calibrated range are clipped by an int8 input)."""
    missing = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_cal).tolist()))
    low, high = float(x_cal.min()), float(x_cal.max())
    outside = float(np.mean((x_test < low) | (x_test > high))) if x_test.size else 0.0
    return {"classes": int(len(np.unique(y_cal))), "test_classes": int(len(np.unique(y_test))),
            "missing_classes": [labels[i] if i < len(labels) else str(i) for i in missing],
            "input_range": {"calibration": [low, high], "test": [float(x_test.min()), float(x_test.max())],
                            "test_outside_fraction": round(outside, 6)}}


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 over the shapes, dtypes and bytes of arrays."""
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _nhwc(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[..., None]
    if x.ndim == 4:
        return x
    raise DatasetError(
        f"images must have shape (N, H, W) or (N, H, W, C), got {x.shape}",
        hint="reshape the image array",
    )


def _labels(labels: list[str], y: np.ndarray, spec: object) -> list[str]:
    if y.size and (y.min() < 0 or y.max() >= len(labels)):
        raise DatasetError(
            f"labels run from {int(y.min())} to {int(y.max())} but {len(labels)} label name(s) are given",
            context=f"dataset.kind = {getattr(spec, 'kind', '?')}",
            hint="set dataset.labels to one name per class, in class-index order",
        )
    return list(labels)
