"""Loading and saving stage models (tf_keras `.h5`, a kept Keras 3 model's `.keras`), the converter's
SavedModel export, parameter counts. Where a recipe's model comes from is `models.origins`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgepack.errors import ModelError
from edgepack.models.tf import load


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
        raise ModelError(
            f"cannot load '{path}' as a Keras 2 model: {exc}",
            context=where,
            hint="save it with tf_keras (Keras 2) as .keras, .h5 or a SavedModel directory",
        ) from exc


def stage_model_file(keras: int) -> str:
    """The file a stage saves its model in: HDF5 for tf_keras (it round-trips QAT models), `.keras` for Keras 3."""
    return "model.keras" if keras == 3 else "model.h5"


def load_stage_model(path: Path, keras: int, imports: Sequence[str] = (), base_dir: Path | None = None) -> Any:
    """A model a stage saved (`keras` 3: a Keras 3 model kept as it is, its custom layers' modules imported)."""
    if keras != 3:
        return load_model(path)
    from edgepack.models.builders import on_path
    from edgepack.models.keras3 import load_keras3

    with on_path(base_dir or Path.cwd()):  # the file is edgepack's own: safe mode has checked it already
        return load_keras3(path, "the train stage's model", imports, safe_mode=False)


def save_model(model: Any, path: Path) -> None:
    """Save a stage's model: HDF5 for tf_keras (the format that round-trips QAT models), `.keras` for Keras 3."""
    import warnings

    from edgepack.models.keras3 import is_keras3_model

    if is_keras3_model(model):
        model.save(path)
        return

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

    from edgepack.models.keras3 import is_keras3_model

    with redirect_stdout(io.StringIO()):  # `export` prints its endpoints
        if is_keras3_model(model):  # a Keras 3 model kept as it is: its own TF SavedModel export
            model.export(str(path), format="tf_saved_model", verbose=False)
        else:
            model.export(str(path))


def input_names(model: Any) -> list[str]:
    """The model's input names, in its input order (the converter's signature names them so)."""
    return [getattr(t, "name", f"input_{i}").split(":")[0] for i, t in enumerate(model.inputs)]


def input_dtypes(model: Any) -> list[str]:
    """The model's input dtypes, in its input order (int32 token ids stay integers through conversion)."""
    return [
        str(getattr(getattr(t, "dtype", None), "name", None) or getattr(t, "dtype", "float32")) for t in model.inputs
    ]


def count_params(model: Any) -> int:
    """The model's parameter count (trainable and not)."""
    return int(model.count_params())
