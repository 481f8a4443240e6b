"""Getting a Keras 2 model: from a saved file or a `module:function` builder; saving stage models."""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from edgepack.errors import ModelError
from edgepack.models.tf import load
from edgepack.recipe.schema import BuilderModel, SavedModel


def get_model(spec: BuilderModel | SavedModel, input_shape: tuple[int, ...], num_classes: int,
              base_dir: Path) -> Any:
    """Build or load the recipe's model and check that it fits the data."""
    if isinstance(spec, BuilderModel):
        model = _build(spec, input_shape, num_classes, base_dir)
        where = f"model.builder = '{spec.builder}'"
    else:
        path = Path(spec.path) if Path(spec.path).is_absolute() else base_dir / spec.path
        model = load_model(path, where="model.path")
        where = f"model.path = '{spec.path}'"
    check_fits(model, input_shape, num_classes, where)
    return model


def _build(spec: BuilderModel, input_shape: tuple[int, ...], num_classes: int, base_dir: Path) -> Any:
    module_name, func_name = spec.builder.split(":")
    with _on_path(base_dir):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(f"cannot import builder module '{module_name}': {exc}",
                             context=f"model.builder = '{spec.builder}'",
                             hint=f"put {module_name}.py beside the recipe or install its package") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ModelError(f"'{module_name}' has no function '{func_name}'",
                         context=f"model.builder = '{spec.builder}'")
    try:
        model = func(input_shape, num_classes, **spec.args)
    except TypeError as exc:
        raise ModelError(f"builder '{spec.builder}' rejected its arguments: {exc}",
                         context=f"model.args = {spec.args}",
                         hint="a builder is called as f(input_shape, num_classes, **model.args)") from exc
    if not isinstance(model, load().keras.Model):
        raise ModelError(f"builder '{spec.builder}' returned {type(model).__name__}, not a tf_keras Model",
                         hint="build the model with `tf_keras` (Keras 2), not Keras 3")
    return model


@contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def check_fits(model: Any, input_shape: tuple[int, ...], num_classes: int, where: str) -> None:
    """Refuse a model whose input or output shape does not match the data."""
    got_in = tuple(model.input_shape[1:])
    if any(m is not None and m != d for m, d in zip(got_in, input_shape)) or len(got_in) != len(input_shape):
        raise ModelError(f"the model takes inputs of shape {got_in}, the data has {input_shape}",
                         context=where, hint="match the model's Input shape to the dataset")
    if model.output_shape[-1] != num_classes:
        raise ModelError(f"the model has {model.output_shape[-1]} outputs, the data has {num_classes} classes",
                         context=where, hint="make the last layer output one value per class")


@contextmanager
def custom_scope() -> Iterator[None]:
    """The scope in which saved QAT and pruned models deserialize."""
    tfmot = load().tfmot
    with tfmot.quantization.keras.quantize_scope(), tfmot.sparsity.keras.prune_scope():
        yield


def load_model(path: Path, where: str = "model") -> Any:
    """Load a saved Keras 2 model (`.keras`, `.h5` or SavedModel directory), QAT layers included."""
    if not path.exists():
        raise ModelError(f"model file '{path}' does not exist", context=where)
    try:
        with custom_scope():
            return load().keras.models.load_model(path, compile=False)
    except (ValueError, OSError, TypeError, ImportError) as exc:
        raise ModelError(f"cannot load '{path}' as a Keras 2 model: {exc}", context=where,
                         hint="save it with tf_keras (Keras 2) as .keras, .h5 or a SavedModel directory") from exc


def save_model(model: Any, path: Path) -> None:
    """Save a stage's model as HDF5 (the format that round-trips QAT models in tf_keras)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path, include_optimizer=False, save_format="h5")


def export_saved_model(model: Any, path: Path) -> None:
    """Export the model's inference graph as a SavedModel, the converter's input.

    Unlike `.h5`, this never needs the Keras objects again: cluster-preserving QAT models, whose
    quantizers create weights lazily, cannot be reloaded from `.h5` but export fine.
    """
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):  # `export` prints its endpoints
        model.export(str(path))


def count_params(model: Any) -> int:
    """The model's parameter count (trainable and not)."""
    return int(model.count_params())
