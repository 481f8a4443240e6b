"""The Dataset record, loading by recipe spec and task, seeded splits, normalization, fingerprints."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from edgepack.errors import DatasetError
from edgepack.recipe.schema import ClassificationTask, DigitsDataset, FolderDataset, Normalization, NpzDataset
from edgepack.tasks.base import RawData, Split, as_list, take


@dataclass(frozen=True)
class Dataset:
    """The recipe's samples for its task, split into train and test.

    Inputs are normalized float32 arrays, one per model input (images NHWC, feature vectors, or
    tensors as stored); `x_train` / `x_test` give the one array of a single-input model, else the
    list. Targets are the task's (`tasks.Targets.y`): class indices, float targets, 0/1 anomaly
    labels (train: normal samples only, no labels), or None."""

    train_inputs: tuple[np.ndarray, ...]
    y_train: Any
    test_inputs: tuple[np.ndarray, ...]
    y_test: Any
    labels: list[str]
    normalization: Normalization
    raw_tests: tuple[np.ndarray, ...] = ()  # the test inputs as loaded (images NHWC), before resize and normalization
    pixel_range: tuple[float, float] | None = None  # raw values of 8-bit black and white, when known
    task: str = "classification"
    images: tuple[bool, ...] = (True,)  # per input: an NHWC image (else feature values or a tensor)
    target_keys: list[str] = field(default_factory=list)
    input_keys: list[str] = field(default_factory=list)  # the npz arrays that feed the inputs, in order
    left_out: int = 0  # train-split samples the task does not train on (anomalous ones)
    where: str = ""

    @property
    def raw_test(self) -> np.ndarray | None:
        """The first input's raw test images (NHWC), when it is an image input."""
        return self.raw_tests[0] if self.raw_tests and self.images[0] else None

    @property
    def image(self) -> bool:
        """The first input is an NHWC image."""
        return bool(self.images and self.images[0])

    @property
    def x_train(self) -> Any:
        """The train inputs: one array, or a list of one per model input."""
        return self.train_inputs[0] if len(self.train_inputs) == 1 else list(self.train_inputs)

    @property
    def x_test(self) -> Any:
        """The test inputs: one array, or a list of one per model input."""
        return self.test_inputs[0] if len(self.test_inputs) == 1 else list(self.test_inputs)

    @property
    def input_shape(self) -> Any:
        """The shape of one sample (H, W, C for an image); a list of them for several inputs."""
        shapes = [tuple(int(d) for d in x.shape[1:]) for x in self.train_inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def num_classes(self) -> int:
        """How many classes the labels name."""
        return len(self.labels)

    @property
    def train_samples(self) -> int:
        """Samples in the train split."""
        return int(len(self.train_inputs[0]))

    @property
    def test_samples(self) -> int:
        """Samples in the test split."""
        return int(len(self.test_inputs[0]))

    def test_split(self) -> Split:
        """The test split as task metrics take it."""
        return Split(list(self.test_inputs), self.y_test)


SOURCES = {"digits": "load_digits", "npz": "load_npz", "folder": "load_folder"}
"""Dataset kind -> its reader in `datasets/sources.py` (imported when used: Pillow is for folders only)."""


def source(kind: str) -> Callable[[Any, Path], RawData]:
    """The raw-data reader of a `[dataset]` kind; a kind without one is a bad input listing those there are."""
    from edgepack.datasets import sources

    try:
        return cast("Callable[[Any, Path], RawData]", getattr(sources, SOURCES[kind]))
    except KeyError:
        raise DatasetError(f"no dataset source '{kind}'", hint=f"sources: {', '.join(SOURCES)}") from None


def load_dataset(
    spec: DigitsDataset | NpzDataset | FolderDataset, seed: int, base_dir: Path, task: Any = None
) -> Dataset:
    """Load the raw data a spec names, take the task's targets, preprocess the inputs and split with `seed`.

    `task` is the recipe's `[task]` (default: classification). An anomaly task trains on the train
    split's normal samples only; its test split keeps both kinds."""
    from edgepack import tasks

    settings = task if task is not None else ClassificationTask(kind="classification")
    impl = tasks.get(settings.kind)
    raw: RawData
    raw = source(spec.kind)(spec, base_dir)
    keys = as_list(getattr(spec, "x_key", None)) or ["images"]
    for key, x in zip(keys, raw.inputs):
        check_finite(x, raw.where, key)
    targets = impl.targets(raw, spec, settings)
    for key, y in zip(targets.keys or ["targets"], as_list(targets.y)):
        if np.issubdtype(np.asarray(y).dtype, np.floating):
            check_finite(y, raw.where, key)
    inputs, y, normal = list(raw.inputs), targets.y, targets.normal
    if spec.limit is not None and spec.limit < len(inputs[0]):
        keep = np.sort(np.random.default_rng(seed).choice(len(inputs[0]), size=spec.limit, replace=False))
        inputs, y = [x[keep] for x in inputs], take(y, keep)
        normal = None if normal is None else normal[keep]
    images = [spec.layout == "auto" and x.ndim in (3, 4) for x in inputs]
    if not images[0] and (spec.resize is not None or spec.channels is not None):
        raise DatasetError(
            f"{raw.where}: dataset.resize / channels apply to images; the inputs are {inputs[0].shape[1:]} per sample",
            context="dataset.resize / dataset.channels",
            hint="remove them, or give images (N, H, W[, C])",
        )
    raws = [_nhwc(x) if is_image else _features(x, raw.where, key) for key, x, is_image in zip(keys, inputs, images)]
    ids = integers_are_ids(spec)
    prepared = [
        preprocess(r, spec.resize, spec.channels, spec.normalization)
        if is_image
        else r.astype(np.int32)
        if ids and np.issubdtype(r.dtype, np.integer)  # token ids, codes: as they are
        else normalize(r, spec.normalization)
        for r, is_image in zip(raws, images)
    ]
    train, test = split_indices(len(prepared[0]), spec.test_fraction, seed)
    left_out = 0
    if normal is not None:
        left_out = int(np.sum(~normal[train]))
        train = train[normal[train]]
        if len(train) < 2:
            raise DatasetError(
                f"{raw.where}: the train split holds {len(train)} normal sample(s); an anomaly model "
                "trains and calibrates on normal samples only",
                context="dataset.test_fraction",
                hint="add normal samples or lower dataset.test_fraction",
            )
    if impl.anomaly_labels:  # judged on normal and anomalous test samples alike
        check_both_kinds(take(y, test), raw.where)
    image = images[0]
    pixel_range = spec.pixel_range or ((0.0, 255.0) if raws[0].dtype == np.uint8 else None)
    return Dataset(
        tuple(x[train] for x in prepared),
        None if impl.anomaly_labels else take(y, train),  # an anomaly model trains on normal samples alone
        tuple(x[test] for x in prepared),
        take(y, test),
        targets.labels,
        spec.normalization,
        raw_tests=tuple(r[test] for r in raws),
        pixel_range=pixel_range if image else None,
        task=settings.kind,
        images=tuple(images),
        target_keys=list(targets.keys),
        left_out=left_out,
        where=raw.where,
        input_keys=list(keys) if getattr(spec, "x_key", None) else [],
    )


def integers_are_ids(spec: DigitsDataset | NpzDataset | FolderDataset) -> bool:
    """Integer arrays that are no images are token ids (int32, as stored) rather than readings to normalize:
    `dataset.integers`, or with "auto", when the normalization is the identity (none was given to apply)."""
    if spec.integers != "auto":
        return spec.integers == "ids"
    return is_identity(spec.normalization)


def is_identity(norm: Normalization) -> bool:
    """`(x - mean) / std` leaves every value as it is: mean 0 and std 1 (for each channel, when lists)."""
    means = norm.mean if isinstance(norm.mean, list) else [norm.mean]
    stds = norm.std if isinstance(norm.std, list) else [norm.std]
    return all(m == 0 for m in means) and all(s == 1 for s in stds)


def check_finite(x: np.ndarray, where: str, key: str) -> None:
    """Refuse NaN or infinite values (they train and convert to a wrong model without a word)."""
    if not np.issubdtype(x.dtype, np.floating):
        return
    bad = ~np.isfinite(x)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = x[index]
        raise DatasetError(
            f"{where}: array '{key}' holds {'NaN' if np.isnan(value) else value} at index "
            f"{list(index)} ({int(bad.sum())} non-finite value(s) in all)",
            context=f"sample {index[0]}",
            hint="remove or repair those samples",
        )


def check_both_kinds(y: np.ndarray, where: str) -> None:
    """An anomaly test split needs normal and anomalous samples."""
    kinds = set(np.unique(y).tolist())
    if kinds != {0, 1}:
        raise DatasetError(
            f"{where}: the test split holds only {'normal' if 0 in kinds else 'anomalous'} samples; ROC AUC needs both",
            context="dataset.test_fraction",
            hint="raise dataset.test_fraction or add samples of the missing kind",
        )


def _features(x: np.ndarray, where: str, key: str) -> np.ndarray:
    if x.ndim < 2:
        raise DatasetError(
            f"{where}: inputs '{key}' have shape {x.shape}: one value per sample",
            context="dataset.x_key",
            hint="store inputs as (samples, features...)",
        )
    return x


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
                f"dataset.normalization.{name} has {arr.shape[0]} values but the images have {channels} channel(s)",
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
    raise DatasetError(
        f"cannot turn images with {have} channels into {channels}",
        context="dataset.channels",
        hint="give images with 1 or 3 channels",
    )


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


def calibration_quality(
    x_cal: Any, y_cal: Any, x_test: Any, y_test: Any, labels: list[str], classes: bool = True
) -> dict[str, Any]:
    """How well the calibration sample covers the test split: the test split's classes it holds (a
    classifier's; classes only the calibration sample has are not counted, so "31/29" cannot happen), and the
    input value range (test values outside the calibrated range are clipped by an int8 input; with
    several inputs, the input with the most values outside)."""
    record: dict[str, Any] = {}
    if classes:  # coverage of the test split's classes: a calibrated class the test split lacks counts for nothing
        tested, calibrated = set(np.unique(y_test).tolist()), set(np.unique(y_cal).tolist())
        missing = sorted(tested - calibrated)
        record.update(
            {
                "classes": len(tested & calibrated),
                "test_classes": len(tested),
                "missing_classes": [labels[i] if i < len(labels) else str(i) for i in missing],
            }
        )
    ranges: list[dict[str, Any]] = []
    for index, (cal, test) in enumerate(zip(as_list(x_cal), as_list(x_test))):
        low, high = float(cal.min()), float(cal.max())
        outside = float(np.mean((test < low) | (test > high))) if test.size else 0.0
        ranges.append(
            {
                "calibration": [low, high],
                "test": [float(test.min()), float(test.max())],
                "test_outside_fraction": round(outside, 6),
                "input": index,
            }
        )
    worst = max(ranges, key=lambda r: r["test_outside_fraction"])
    record["input_range"] = {k: v for k, v in worst.items() if k != "input" or len(ranges) > 1}
    return record


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
