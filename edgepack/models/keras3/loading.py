"""Keras 3 itself: the module, its models, loading a Keras 3 file."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from edgepack.errors import ModelError
from edgepack.models.keras3.files import saved_format
from edgepack.models.tf import load


def keras3_module() -> ModuleType:
    """Keras 3, imported after TensorFlow was set up for tf_keras."""
    load()
    try:
        import keras
    except ImportError as exc:
        raise ModelError(f"Keras 3 is not installed: {exc}", hint="pip install 'keras>=3'") from exc
    if not str(getattr(keras, "__version__", "")).startswith("3"):
        raise ModelError(
            f"`import keras` gives Keras {getattr(keras, '__version__', '?')}, not Keras 3",
            hint="pip install 'keras>=3' (tf_keras provides Keras 2 separately)",
        )
    return keras


def is_keras3_model(obj: Any) -> bool:
    """Whether `obj` is a Keras 3 `keras.Model` (imports nothing: Keras 3 must already be loaded)."""
    keras = sys.modules.get("keras")
    if keras is None or not str(getattr(keras, "__version__", "")).startswith("3"):
        return False
    return isinstance(obj, keras.Model)


LOAD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OSError, ImportError, NotImplementedError)


def load_keras3(path: Path, where: str, imports: Sequence[str] = (), safe_mode: bool = True) -> Any:
    """Load a Keras 3 `.keras` or `.h5` model (not compiled, `safe_mode` on unless told).

    `imports` are modules imported first: those that register the model's custom layers with
    `@keras.saving.register_keras_serializable` (the caller puts the recipe's folder on sys.path).
    Safe mode stays on for users' files, so a Lambda layer (Python code in the file) is refused;
    edgepack's own stage files (a kept model it saved itself) load with it off.
    """
    path = Path(path)
    fmt = saved_format(path)
    if fmt.keras != 3:
        saved_by = "a plain TF SavedModel" if fmt.keras is None else f"Keras {fmt.keras_version or fmt.keras}"
        raise ModelError(
            f"'{path}' was saved by {saved_by}, not Keras 3",
            context=where,
            code="model-unloadable",
            hint="load Keras 2 files with edgepack.models.source.load_model",
        )
    keras = keras3_module()
    for name in imports:
        _import_module(name, where)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except LOAD_ERRORS as exc:
        raise ModelError(
            f"cannot load '{path}' with Keras {keras.__version__}: {_summary(exc)}",
            context=where,
            code="model-unloadable",
            hint=_load_hint(str(exc)),
        ) from exc
    if not is_keras3_model(model):
        raise ModelError(
            f"'{path}' holds a {type(model).__name__}, not a Keras model", context=where, code="model-unloadable"
        )
    return model


def _import_module(name: str, where: str) -> None:
    try:
        importlib.import_module(name)
    except (ImportError, SyntaxError) as exc:
        raise ModelError(
            f"cannot import '{name}' (listed in model.imports): {exc}",
            context=where,
            code="model-unloadable",
            hint=f"put {name.replace('.', '/')}.py beside the recipe or install its package",
        ) from exc


def _summary(exc: BaseException) -> str:
    text = str(exc)
    located = re.search(r"Could not locate (class|function) '[^']+'", text)
    if located:
        return located.group(0)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _load_hint(text: str) -> str:
    if "Lambda" in text and "safe_mode" in text:
        return (
            "a Lambda layer holds Python code, which edgepack does not run when loading (safe mode) and "
            "cannot rebuild in tf_keras: write it as a layer class registered with "
            "@keras.saving.register_keras_serializable, list its module in model.imports (tf_keras will "
            "still need a built-in equivalent)"
        )
    if "Could not locate" in text or "Unknown layer" in text:
        return "the model uses a class Keras does not know: list the module defining it in model.imports"
    return "check that the file was saved by Keras 3 (`model.save('model.keras')`) and is complete"
