"""What a saved file holds (no TensorFlow, no Keras): which Keras saved a model file, read from the file itself."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack.errors import ModelError

FILE_HINT = (
    "save the model with `model.save('model.keras')` (Keras 3 or tf_keras), as .h5, or as a SavedModel directory"
)


@dataclass(frozen=True)
class SavedFormat:
    """What saved a model file: the Keras major version, the container and the recorded version.

    `keras` is 3 for Keras 3 files, 2 for tf_keras (Keras 2) files and None for a plain TF
    SavedModel directory; `container` is "keras" (the .keras zip), "h5" or "savedmodel".
    """

    keras: int | None
    container: str
    keras_version: str | None


def saved_format(path: Path) -> SavedFormat:
    """Read which Keras saved `path`, from the file itself (zip metadata, HDF5 attributes)."""
    path = Path(path)
    if path.is_dir():
        return _savedmodel_format(path)
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist", hint=FILE_HINT)
    if zipfile.is_zipfile(path):
        return _zip_format(path)
    import h5py

    if h5py.is_hdf5(path):
        return _h5_format(path)
    raise ModelError(
        f"'{path}' is not a Keras model: expected a .keras zip archive, an HDF5 (.h5) file or a SavedModel directory",
        hint=FILE_HINT,
    )


def _major(version: str, path: Path) -> int:
    match = re.match(r"(\d+)\.", version)
    if match is None or match.group(1) not in ("2", "3"):
        raise ModelError(f"'{path}' records keras_version '{version}': expected a 2.x or 3.x version", hint=FILE_HINT)
    return int(match.group(1))


def _zip_format(path: Path) -> SavedFormat:
    try:
        with zipfile.ZipFile(path) as archive:
            if "metadata.json" not in archive.namelist():
                raise ModelError(
                    f"'{path}' is a zip archive without metadata.json: not a .keras model file", hint=FILE_HINT
                )
            metadata = json.loads(archive.read("metadata.json"))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"cannot read '{path}' as a .keras archive: {exc}", hint=FILE_HINT) from exc
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    if not isinstance(version, str):
        raise ModelError(f"'{path}': metadata.json records no keras_version", hint=FILE_HINT)
    return SavedFormat(keras=_major(version, path), container="keras", keras_version=version)


def _h5_format(path: Path) -> SavedFormat:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = {key: _text(f.attrs[key]) for key in ("keras_version", "model_config") if key in f.attrs}
    except OSError as exc:
        raise ModelError(f"cannot read '{path}' as HDF5: {exc}", hint=FILE_HINT) from exc
    if "model_config" not in attrs:
        raise ModelError(
            f"'{path}' holds weights only (no model_config attribute): not a whole model",
            hint="save the whole model (`model.save(...)`), not `save_weights`",
        )
    version = attrs.get("keras_version")
    if version is not None:
        return SavedFormat(keras=_major(version, path), container="h5", keras_version=version)
    keras3 = '"batch_shape"' in attrs["model_config"] or "DTypePolicy" in attrs["model_config"]
    return SavedFormat(keras=3 if keras3 else 2, container="h5", keras_version=None)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _savedmodel_format(path: Path) -> SavedFormat:
    if not (path / "saved_model.pb").is_file():
        raise ModelError(f"'{path}' is a directory without saved_model.pb: not a SavedModel", hint=FILE_HINT)
    metadata = path / "keras_metadata.pb"
    if not metadata.is_file():
        return SavedFormat(keras=None, container="savedmodel", keras_version=None)
    found = re.search(rb'"keras_version": "([^"]+)"', metadata.read_bytes())
    return SavedFormat(keras=2, container="savedmodel", keras_version=found.group(1).decode() if found else None)
