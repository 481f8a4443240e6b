"""The model as `edgepack init` reads it: its inputs and outputs (shapes, dtypes), its size, who saved
it (Keras 3 or tf_keras), whether a Keras 3 model can be rebuilt in tf_keras for [[optimize]] stages,
and whether its first layer normalizes the raw input itself.

TensorFlow and Keras are imported inside the functions that load the model, never at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.tasks.base import shape_text

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Tensor:
    """One model input or output: its name, its per-sample shape (no batch axis) and dtype."""

    name: str
    shape: Shape
    dtype: str

    @property
    def text(self) -> str:
        """`'name' 8x8x1`."""
        return f"'{self.name}' {shape_text(self.shape)}"


@dataclass(frozen=True)
class ModelInfo:
    """What `edgepack init` needs to know about a saved model."""

    path: Path
    container: str  # keras | h5 | savedmodel
    keras: int  # 2: tf_keras (Keras 2); 3: Keras 3
    keras_version: str | None
    inputs: list[Tensor]
    outputs: list[Tensor]
    params: int
    bridge_problem: str | None  # Keras 3: why the tf_keras rebuild is refused (None: it works, or tf_keras)
    normalizer: str | None  # the first layer, when it normalizes the raw input itself
    imports: tuple[str, ...] = ()  # modules registering its custom Keras 3 layers (`--import`)
    loaded: Any = field(default=None, repr=False, compare=False)  # the Keras model itself, to judge it on the data

    @property
    def saved_by(self) -> str:
        """`Keras 3.15.1` / `tf_keras (Keras 2)`."""
        if self.keras == 3:
            return f"Keras {self.keras_version or 3}"
        return "tf_keras (Keras 2" + (f", {self.keras_version})" if self.keras_version else ")")

    def summary(self) -> str:
        """One line: inputs -> outputs, parameters, who saved it."""
        ins = ", ".join(t.text for t in self.inputs)
        outs = ", ".join(t.text for t in self.outputs)
        return f"{ins} -> {outs}; {self.params:,} parameters; saved by {self.saved_by} ({self.container})"


def read_model(path: Path, imports: tuple[str, ...] = ()) -> ModelInfo:
    """Load the saved model the way the pipeline does and read its tensors, size and first layer
    (`imports`: modules registering a Keras 3 model's custom layers, found beside the model or installed)."""
    from edgepack.models.keras3 import saved_format

    where = f"MODEL '{path}'"
    if not path.exists():
        raise ModelError(
            f"model file '{path}' does not exist",
            context=where,
            hint="give a .keras or .h5 file, or a SavedModel directory",
        )
    try:
        fmt = saved_format(path)
    except ModelError as exc:  # it says what is wrong with the file; say which file it was
        exc.context = exc.context or where
        raise
    problem = None
    if fmt.keras == 3:
        from edgepack.models.builders import on_path
        from edgepack.models.keras3 import load_keras3

        with on_path(path.parent):
            model = load_keras3(path, where, imports)
        problem = _bridge_problem(model)
    else:
        from edgepack.models.source import load_model

        model = load_model(path, where=where)
    if not hasattr(model, "inputs") or not getattr(model, "outputs", None):
        raise ModelError(
            f"'{path}' loads as {type(model).__name__}, not a Keras model with inputs and outputs",
            context=where,
            code="model-unloadable",
            hint="save the model with `model.save('model.keras')` (Keras 3 or tf_keras)",
        )
    return ModelInfo(
        path=path,
        container=fmt.container,
        keras=3 if fmt.keras == 3 else 2,
        keras_version=fmt.keras_version,
        inputs=_tensors(model.inputs, _input_names(model)),
        outputs=_tensors(model.outputs, _output_names(model)),
        params=int(model.count_params()),
        bridge_problem=problem,
        normalizer=first_normalizer(model),
        imports=tuple(imports),
        loaded=model,
    )


def _bridge_problem(model: Any) -> str | None:
    """Why `bridge` cannot rebuild this Keras 3 model in tf_keras (None: it can)."""
    from edgepack.models.keras3 import bridge

    try:
        bridge(model)
    except ModelError as exc:  # UnbridgeableLayer, or a weight that does not copy
        return exc.message
    return None


def _input_names(model: Any) -> list[str]:
    from edgepack.models.source import input_names

    return input_names(model)


def _output_names(model: Any) -> list[str]:
    """The layers that make the outputs (Keras 3 output tensors are named keras_tensor_N)."""
    names = []
    for index, tensor in enumerate(model.outputs):
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "operation", None) or getattr(history, "layer", None)
        names.append(str(getattr(layer, "name", "") or f"output_{index}"))
    return names


def _tensors(tensors: Sequence[Any], names: list[str]) -> list[Tensor]:
    result = []
    for index, tensor in enumerate(tensors):
        name = names[index] if index < len(names) else str(getattr(tensor, "name", f"tensor_{index}"))
        shape = tuple(None if d is None else int(d) for d in tuple(tensor.shape)[1:])
        result.append(Tensor(name.split(":")[0], shape, str(getattr(tensor.dtype, "name", tensor.dtype))))
    return result


SHAPE_ONLY = ("InputLayer", "Reshape", "Resizing", "Permute")


def first_normalizer(model: Any) -> str | None:
    """The model's first computing layer when it is a Rescaling or Normalization (then the data is fed raw)."""
    for layer in getattr(model, "layers", []):
        kind = type(layer).__name__
        if kind in SHAPE_ONLY:
            continue
        if kind == "Rescaling":
            return f"Rescaling '{layer.name}' (x * {_number(layer.scale)} + {_number(layer.offset)})"
        if kind == "Normalization":
            return f"Normalization '{layer.name}'"
        if hasattr(layer, "layers"):  # a nested model: its own first layer
            return first_normalizer(layer)
        return None
    return None


def _number(value: Any) -> str:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    return f"{float(array[0]):.6g}" if array.size == 1 else "[" + ", ".join(f"{v:.6g}" for v in array) + "]"


def same_shape(got: Sequence[int | None], want: Sequence[int | None]) -> bool:
    return len(got) == len(want) and all(g is None or w is None or g == w for g, w in zip(got, want))


def autoencoder(model: ModelInfo) -> bool:
    ins, outs = model.inputs, model.outputs
    return len(outs) == 1 and len(ins) == 1 and same_shape(outs[0].shape, ins[0].shape)


def one_score(model: ModelInfo) -> bool:
    return len(model.outputs) == 1 and all(d == 1 for d in model.outputs[0].shape)
