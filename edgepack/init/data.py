"""The data `edgepack init` reads: an `.npz` of arrays (which array feeds each model input, with
which layout) or a folder of class sub-folders of images; without data, the keys a `data.npz`
should hold. The task the arrays serve is `edgepack.init.task`'s.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepack.errors import DatasetError, ModelError
from edgepack.init.arrays import Array
from edgepack.init.model import ModelInfo, Shape, Tensor, same_shape
from edgepack.init.task import Fit, check_task, fit_arrays, fit_folder, fit_placeholder
from edgepack.tasks.base import shape_text

TEST_FRACTION = 0.25
SEED = 0


@dataclass(frozen=True)
class DataPlan:
    """The `[dataset]` of the starter: its kind, path, keys, samples, and the task it serves."""

    kind: str  # npz | folder | none
    path: Path | None
    samples: int
    fit: Fit
    arrays: list[Array] = field(default_factory=list)
    x_keys: list[str] = field(default_factory=list)
    x_notes: list[str] = field(default_factory=list)  # ambiguities: other arrays that fit an input
    layout: str = "auto"
    layout_why: str = ""  # why the arrays are read as images, feature vectors or tensors
    integers: str = "auto"  # integer arrays that are no images: ids (fed as int32) | readings (normalized)
    integers_why: str = ""
    inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # the chosen input arrays
    class_names: list[str] = field(default_factory=list)  # a folder's classes
    class_counts: list[int] = field(default_factory=list)  # a folder's images per class, in that order
    image_size: tuple[int, int] | None = None
    color_mode: str | None = None

    @property
    def images(self) -> bool:
        """The first input is an image (NHWC) as the dataset reads it."""
        if self.kind == "folder":
            return True
        if self.kind == "none" or not self.x_keys or self.layout == "tensors":
            return False
        return len(self.inputs[self.x_keys[0]].shape) in (3, 4)

    @property
    def train_samples(self) -> int:
        """Samples the train split will hold (an anomaly task: its normal ones)."""
        from edgepack.datasets.core import split_indices

        if self.samples < 2:
            return self.samples
        train, _ = split_indices(self.samples, TEST_FRACTION, SEED)
        key = self.fit.anomaly_key
        if key is not None and self.path is not None:
            with np.load(self.path, allow_pickle=False) as data:
                train = train[np.asarray(data[key])[train] == 0]
        elif self.fit.normal_classes and self.class_counts:  # a folder: its samples class by class, in order
            classes = np.repeat(np.arange(len(self.class_counts)), self.class_counts)
            normal = [self.class_names.index(c) for c in self.fit.normal_classes if c in self.class_names]
            train = train[np.isin(classes[train], normal)]
        return int(len(train))


def plan_data(data: Path | None, model: ModelInfo, task: str | None) -> DataPlan:
    """The dataset and task for `data` (an .npz or an image folder; None: a placeholder `data.npz`)."""
    check_task(task)
    if data is None:
        return _placeholder(model, task)
    if not data.exists():
        raise DatasetError(
            f"data '{data}' does not exist",
            context="--data",
            hint="give an .npz of arrays or a folder with one sub-folder of images per class",
        )
    if data.is_dir():
        return _plan_folder(data, model, task)
    if not zipfile.is_zipfile(data):
        raise DatasetError(
            f"'{data}' is not an .npz (the zip of arrays numpy.savez writes) or an image folder",
            context="--data",
            hint="save the arrays with numpy.savez('data.npz', x=..., y=...)",
        )
    return _plan_npz(data, model, task)


def _placeholder(model: ModelInfo, task: str | None) -> DataPlan:
    """No data to look at: the keys a `data.npz` should hold for the task (--task, else what the outputs suggest)."""
    fit = fit_placeholder(model, task)
    x_keys = ["x"] if len(model.inputs) == 1 else [t.name for t in model.inputs]
    return DataPlan("none", None, 0, fit, x_keys=x_keys)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the `.npz` (pickled object arrays are refused)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path}: cannot read as .npz: {exc}",
            context="--data",
            hint="write it with numpy.savez (pickled object arrays are refused)",
        ) from exc


def describe_array(key: str, value: np.ndarray) -> Array:
    """An array's shape, dtype and value range."""
    numeric = value.dtype.kind in "biuf" and value.size > 0
    low = float(np.min(value)) if numeric else None
    high = float(np.max(value)) if numeric else None
    binary = bool(numeric and value.ndim == 1 and set(np.unique(value).tolist()) <= {0, 1})
    return Array(
        key,
        tuple(int(d) for d in value.shape),
        str(value.dtype),
        low,
        high,
        bool(np.issubdtype(value.dtype, np.integer)),
        binary,
    )


def _plan_npz(path: Path, model: ModelInfo, task: str | None) -> DataPlan:
    from edgepack.datasets.core import check_finite

    values = read_npz(path)
    arrays = [describe_array(key, value) for key, value in values.items()]
    if not arrays:
        raise DatasetError(
            f"{path}: the file holds no arrays",
            context="--data",
            hint="save the arrays with numpy.savez('data.npz', x=..., y=...)",
        )
    x_keys, notes, layout, layout_why = _pick_inputs(path, arrays, model)
    by_key = arrays_by_key(arrays)
    integers, integers_why = integers_of([(by_key[k], t) for k, t in zip(x_keys, model.inputs)], layout)
    for key in x_keys:
        check_finite(values[key], str(path), key)  # NaN would poison the normalization guess and the run
    samples = arrays_by_key(arrays)[x_keys[0]].shape[0]
    rest = [a for a in arrays if a.key not in x_keys and a.shape and a.shape[0] == samples]
    fit = fit_arrays(task, path, arrays, rest, model)
    return DataPlan(
        "npz",
        path,
        samples,
        fit,
        arrays=arrays,
        x_keys=x_keys,
        x_notes=notes,
        layout=layout,
        layout_why=layout_why,
        integers=integers,
        integers_why=integers_why,
        inputs={k: values[k] for k in x_keys},
    )


def arrays_by_key(arrays: list[Array]) -> dict[str, Array]:
    """The arrays by key."""
    return {a.key: a for a in arrays}


def input_layout(array: Array, want: Shape) -> str | None:
    """How the dataset must read `array` to feed an input of per-sample shape `want` (None: it cannot).

    "auto" reads (N, H, W) as images with a channel added and (N, F) as features; an (N, T, F)
    array for a (T, F) input (a sequence) must be read as stored ("tensors")."""
    if array.low is None or len(array.shape) < 2 or array.dtype == "bool":
        return None
    per_sample = array.shape[1:]
    if same_shape(per_sample, want):
        return "tensors" if len(array.shape) == 3 and len(want) == 2 else "auto"
    if len(array.shape) == 3 and same_shape((*per_sample, 1), want):
        return "auto"
    return None


def _pick_inputs(path: Path, arrays: list[Array], model: ModelInfo) -> tuple[list[str], list[str], str, str]:
    """One array per model input, in the model's input order (the others that fit are named), and the layout
    that reads them, with its reason (`edgepack.init.layout`)."""
    from edgepack.init.layout import choose_layout

    chosen: list[str] = []
    notes: list[str] = []
    choices = []
    samples = None
    for tensor in model.inputs:
        candidates = [(a, input_layout(a, tensor.shape)) for a in arrays if a.key not in chosen]
        fits = [(a, lay) for a, lay in candidates if lay is not None and (samples is None or a.shape[0] == samples)]
        if not fits:
            listing = ", ".join(a.text for a in arrays)
            raise DatasetError(
                f"{path}: no array fits the model's input '{tensor.name}' ({shape_text(tensor.shape)} per sample)",
                context=f"arrays: {listing}",
                hint="store one array per model input, shaped (samples, *input shape)",
            )
        array, others = fits[0][0], [a.key for a, _ in fits[1:]]
        if others:
            notes.append(
                f"'{array.key}' chosen for input '{tensor.name}'; also fit: " + ", ".join(f"'{k}'" for k in others)
            )
        chosen.append(array.key)
        choices.append(choose_layout(array.shape, array.low or 0.0, array.high or 0.0, tensor.shape))
        samples = array.shape[0]
    layout = "tensors" if any(c.layout == "tensors" for c in choices) else "auto"
    why = "; ".join(f"'{k}': {c.why}" if len(choices) > 1 else c.why for k, c in zip(chosen, choices))
    return chosen, notes, layout, why


def integers_of(feeds: list[tuple[Array, Tensor]], layout: str) -> tuple[str, str]:
    """How the integer arrays that are no images are read, and why: token ids ("ids", fed as int32) only for a
    model input that takes integers; for a float input they are readings ("readings": normalized)."""
    ints = [(a, t) for a, t in feeds if a.integer and (layout == "tensors" or len(a.shape) not in (3, 4))]
    if not ints:
        return "auto", ""
    readings = [(a, t) for a, t in ints if not t.dtype.startswith(("int", "uint"))]
    if readings:
        which = ", ".join(f"'{a.key}' ({a.dtype}) feeds {t.text} {t.dtype}" for a, t in readings)
        return "readings", f"{which}: integer readings, normalized like any value"
    which = ", ".join(f"'{a.key}' ({a.dtype}) feeds {t.text} {t.dtype}" for a, t in ints)
    return "ids", f"{which}: token ids or codes, fed as they are (never normalized)"


def _plan_folder(root: Path, model: ModelInfo, task: str | None) -> DataPlan:
    from edgepack.datasets.sources import IMAGE_SUFFIXES

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    counts = [sum(1 for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes]
    if not classes or not sum(counts):
        raise DatasetError(
            f"{root}: no class sub-folders with images ({', '.join(sorted(IMAGE_SUFFIXES))})",
            context="--data",
            hint="put the images of each class in a sub-folder named after it",
        )
    shape = model.inputs[0].shape
    if len(model.inputs) != 1 or len(shape) != 3 or shape[2] not in (1, 3) or None in shape[:2]:
        raise ModelError(
            "an image folder feeds one image input (height x width x 1 or 3); the model takes "
            + ", ".join(t.text for t in model.inputs),
            context=f"MODEL {model.path}; --data {root}",
            hint="give the data as an .npz whose arrays match the model's inputs",
        )
    fit = fit_folder(root, classes, model, task)
    return DataPlan(
        "folder",
        root,
        sum(counts),
        fit,
        class_names=classes,
        class_counts=counts,
        image_size=(int(shape[0]), int(shape[1])),  # type: ignore[arg-type]
        color_mode="grayscale" if shape[2] == 1 else "rgb",
    )
