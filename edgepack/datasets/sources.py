"""Raw data sources: the shipped digits, a `.npz` of arrays, a folder of class sub-folders.

Each returns a `tasks.RawData`: the inputs as stored, the classes where the source has them and,
for an npz, the arrays the task may take its targets from; the task picks and checks them.
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from edgepack.errors import DatasetError
from edgepack.recipe.schema import DigitsDataset, FolderDataset, NpzDataset
from edgepack.resources import shipped_dir
from edgepack.tasks.base import RawData, as_list

DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def digits_path() -> Path:
    """The shipped `datasets/digits/digits.csv.gz`."""
    return shipped_dir("datasets") / "digits" / "digits.csv.gz"


def load_digits(spec: DigitsDataset, base_dir: Path) -> RawData:
    """The 1,797 8x8 digits as uint8 images (values 0..16) and labels 0..9."""
    path = digits_path()
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"the shipped digits file is missing: {exc}", context=str(path), hint="reinstall edgepack"
        ) from exc
    if hashlib.sha256(blob).hexdigest() != DIGITS_SHA256:
        raise DatasetError(
            "the shipped digits file is corrupt (sha256 mismatch)",
            context=str(path),
            hint="restore datasets/digits/digits.csv.gz from the repository",
        )
    table = np.loadtxt(gzip.decompress(blob).decode().splitlines(), delimiter=",", dtype=np.uint8)
    x = table[:, :64].reshape(-1, 8, 8)
    y = table[:, 64].astype(np.int64)
    return RawData([x], "the shipped digits", classes=y, class_names=[str(i) for i in range(10)])


def load_npz(spec: NpzDataset, base_dir: Path) -> RawData:
    """The inputs (`x_key`, or one array per model input) and the arrays the task may read
    (`y_key`, `anomaly_key`) of a `.npz`; arrays the file lacks are named by the task that needs them."""
    path = _resolve(spec.path, base_dir)
    wanted = [*as_list(spec.y_key), *as_list(spec.anomaly_key)]
    try:
        # the file opened here: numpy's np.load(path) leaves its handle open when the zip is damaged
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
            names = list(data.files)
            missing = [k for k in as_list(spec.x_key) if k not in names]
            if missing:
                raise DatasetError(
                    f"{path}: no array named {', '.join(map(repr, missing))}",
                    context="dataset.x_key",
                    hint=f"the file holds: {', '.join(names) or '(nothing)'}",
                )
            inputs = [data[k] for k in as_list(spec.x_key)]
            arrays = {k: data[k] for k in wanted if k in names}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # a damaged or foreign file
        raise DatasetError(
            f"{path}: cannot read as .npz: {exc}",
            context="dataset.path",
            hint="write it with numpy.savez (pickled object arrays are refused)",
        ) from exc
    lengths = {k: len(x) for k, x in zip(as_list(spec.x_key), inputs)}
    if len(set(lengths.values())) > 1:
        raise DatasetError(
            f"{path}: the input arrays hold different numbers of samples: {lengths}",
            context="dataset.x_key",
            hint="give every input one row per sample",
        )
    return RawData(inputs, str(path), arrays=arrays, names=names)


def load_folder(spec: FolderDataset, base_dir: Path) -> RawData:
    """Images from `path/<class>/*.png|jpg|...`, resized to `image_size`; classes sorted by name."""
    from PIL import Image, UnidentifiedImageError

    root = _resolve(spec.path, base_dir)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(
            f"{root}: no class sub-folders",
            context="dataset.path",
            hint="put the images of each class in a sub-folder named after it",
        )
    mode = "L" if spec.color_mode == "grayscale" else "RGB"
    height, width = spec.image_size
    images, labels = [], []
    for index, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    images.append(np.asarray(img.convert(mode).resize((width, height))))
            except (OSError, UnidentifiedImageError) as exc:
                raise DatasetError(f"{file}: not a readable image: {exc}", context="dataset.path") from exc
            labels.append(index)
    if not images:
        raise DatasetError(
            f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders", context="dataset.path"
        )
    return RawData([np.stack(images)], str(root), classes=np.asarray(labels, dtype=np.int64), class_names=classes)


def _resolve(path: str, base_dir: Path) -> Path:
    resolved = Path(path) if Path(path).is_absolute() else base_dir / path
    if not resolved.exists():
        raise DatasetError(
            f"dataset path '{path}' does not exist",
            context=f"resolved to {resolved}",
            hint="paths in a recipe are relative to the recipe file",
        )
    return resolved
