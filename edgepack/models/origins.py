"""Model sources: where the recipe's model comes from, as one explicit object the pipeline is given.

- `BuilderSource`: `module:function(input_shape, size, **args)` returns a tf_keras or Keras 3 model;
- `SavedSource`: a saved file or directory, tf_keras (Keras 2) or Keras 3 (`.keras`, `.h5`), or a
  SavedModel directory;

A Keras 3 model is rebuilt in tf_keras (`models.keras3.bridge`) and the rebuild proven on the test
inputs, so the optimize stages (TFMOT, tf_keras only) work on it. A model the bridge cannot rebuild
(a custom or Keras-3-only layer) is kept as a Keras 3 model when the recipe has no `[[optimize]]`
stages: it is trained (if built), evaluated and converted from Keras 3 directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgepack.errors import ModelError
from edgepack.models.builders import build, on_path
from edgepack.recipe.model import BuilderModel, SavedModel


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for the train stage: the model, its Keras (2: tf_keras, 3: Keras 3) and where it came from."""

    model: Any
    keras: int
    source: dict[str, Any]


class ModelSource(Protocol):
    """Where a recipe's Keras model comes from.

    Its attributes are read-only (the sources are frozen dataclasses, `imports` may be a property)."""

    @property
    def kind(self) -> str: ...

    @property
    def trains(self) -> bool:
        """Built models are trained from scratch; saved ones are taken as they are."""

    @property
    def imports(self) -> tuple[str, ...]:
        """Modules that register the model's custom layers (Keras 3)."""

    def stage_config(self) -> dict[str, Any]:
        """What identifies the model in the train stage's id (settings and file digests)."""

    def load(self, data: Any, task: Any, optimizable: bool) -> LoadedModel:
        """The model, checked against the data; a Keras 3 model bridged to tf_keras (required when
        `optimizable`: the recipe has optimize stages)."""


@dataclass(frozen=True)
class BuilderSource:
    """A `module:function` builder, found beside the recipe or installed."""

    spec: BuilderModel
    base_dir: Path
    kind: str = "builder"
    trains: bool = True
    field: str = "model"  # where the recipe names it, for messages: `model`, `optimize[N].student`

    @property
    def imports(self) -> tuple[str, ...]:
        """The builder's module: it registers any custom layers of a Keras 3 model it builds."""
        return (self.spec.builder.split(":")[0],)

    def stage_config(self) -> dict[str, Any]:
        return {"model": self.spec.model_dump(mode="json"), "modules": module_digests(self.imports, self.base_dir)}

    def load(self, data: Any, task: Any, optimizable: bool) -> LoadedModel:
        where = f"{self.field}.builder = '{self.spec.builder}'"
        model = build(self.spec, data.input_shape, task.builder_size(data), self.base_dir, self.field)
        loaded = adopt(model, data, optimizable, where, {"kind": "builder", "builder": self.spec.builder})
        check_fits(loaded.model, data, task, where)
        return loaded


@dataclass(frozen=True)
class SavedSource:
    """A saved model file or SavedModel directory (relative paths: to the recipe's folder)."""

    spec: SavedModel
    base_dir: Path
    kind: str = "saved"
    trains: bool = False
    field: str = "model.path"  # where the recipe names it, for messages

    @property
    def imports(self) -> tuple[str, ...]:
        return tuple(self.spec.imports)

    @property
    def path(self) -> Path:
        """The file as the recipe names it, resolved."""
        return Path(self.spec.path) if Path(self.spec.path).is_absolute() else self.base_dir / self.spec.path

    def stage_config(self) -> dict[str, Any]:
        from edgepack.fsutil import path_digest

        return {
            "model": self.spec.model_dump(mode="json"),
            "saved": path_digest(self.path),
            "modules": module_digests(self.imports, self.base_dir),
        }

    def load(self, data: Any, task: Any, optimizable: bool) -> LoadedModel:
        from edgepack.models.keras3 import load_keras3, saved_format
        from edgepack.models.source import load_model

        where = f"{self.field} = '{self.spec.path}'"
        if not self.path.exists():
            raise ModelError(
                f"model file '{self.path}' does not exist",
                context=where,
                hint="paths in a recipe are relative to the recipe file",
            )
        fmt = saved_format(self.path)
        origin = {"kind": "saved", "file": self.path.name, "format": fmt.container, "keras_version": fmt.keras_version}
        if fmt.keras == 3:
            with on_path(self.base_dir):
                model = load_keras3(self.path, where, self.imports)
            loaded = adopt(model, data, optimizable, where, origin)
        else:
            loaded = LoadedModel(load_model(self.path, where=where), 2, {**origin, "saved_by": "tf_keras"})
        check_fits(loaded.model, data, task, where)
        return loaded


def recipe_source(spec: BuilderModel | SavedModel, base_dir: Path, field: str = "model") -> ModelSource:
    """The source a recipe's `[model]` (or the model at `field`) names."""
    if isinstance(spec, BuilderModel):
        return BuilderSource(spec, base_dir, field=field)
    return SavedSource(spec, base_dir, field=f"{field}.path")


def adopt(model: Any, data: Any, optimizable: bool, where: str, origin: dict[str, Any]) -> LoadedModel:
    """A tf_keras model as it is; a Keras 3 model rebuilt in tf_keras and proven on the test inputs, or
    (when the bridge cannot rebuild it and no optimize stage needs tf_keras) kept in Keras 3."""
    from edgepack.models.keras3 import bridge, is_keras3_model, prove_bridge

    if not is_keras3_model(model):
        from edgepack.models.tf import load

        if not isinstance(model, load().keras.Model):
            raise ModelError(
                f"got {type(model).__name__}, not a Keras model",
                context=where,
                hint="return (or save) a tf_keras or Keras 3 Model",
            )
        return LoadedModel(model, 2, {**origin, "saved_by": origin.get("saved_by", "tf_keras")})
    import keras

    origin = {**origin, "saved_by": "keras3", "keras_version": origin.get("keras_version") or keras.__version__}
    try:
        bridged = bridge(model)
    except ModelError as exc:  # a layer it cannot rebuild (UnbridgeableLayer), or weights that do not fit
        if optimizable:
            raise ModelError(
                exc.message,
                context=f"{where}: {exc.context}" if exc.context else where,
                code=exc.code,
                hint="the [[optimize]] stages (TFMOT) need a tf_keras model: replace the layer, or "
                "remove the [[optimize]] stages to convert the Keras 3 model directly",
            ) from exc
        return LoadedModel(model, 3, {**origin, "bridge": {"bridged": False, "why": exc.message}})
    try:
        proof = prove_bridge(model, bridged, data.x_test)
    except ModelError as exc:  # the rebuild computes something else: never optimized or converted
        if optimizable:
            raise ModelError(
                exc.message,
                context=f"{where}: {exc.context}" if exc.context else where,
                code=exc.code,
                hint=f"{exc.hint}; or remove the [[optimize]] stages: the Keras 3 model then converts directly",
            ) from exc
        return LoadedModel(model, 3, {**origin, "bridge": {"bridged": False, "why": exc.message}})
    return LoadedModel(bridged, 2, {**origin, "bridge": {"bridged": True, **proof.to_dict()}})


def check_fits(model: Any, data: Any, task: Any, where: str) -> None:
    """Refuse a model whose inputs do not take the data's samples or whose outputs the task cannot judge."""
    inputs = [tuple(t.shape) for t in model.inputs]
    outputs = [tuple(t.shape) for t in model.outputs]
    shapes = [tuple(int(d) for d in x.shape[1:]) for x in data.train_inputs]
    if len(inputs) != len(shapes):
        keys = getattr(data, "input_keys", None)
        named = f"dataset.x_key = {json.dumps(keys)}" if keys else "dataset.x_key"
        raise ModelError(
            f"the model has {len(inputs)} input(s), the data {len(shapes)} ({named} in {data.where})",
            context=where,
            hint="give one npz array per model input, in the model's input order",
        )
    for index, (got, want) in enumerate(zip(inputs, shapes)):
        got_in = tuple(got[1:])
        if len(got_in) != len(want) or any(m is not None and m != d for m, d in zip(got_in, want)):
            which = f"input {index}" if len(inputs) > 1 else "inputs"
            raise ModelError(
                f"the model takes {which} of shape {got_in}, the data has {want}",
                context=where,
                hint="match the model's Input shape to the dataset (dataset.x_key order, resize, channels)",
            )
    problem = task.output_problem(inputs, outputs, data)
    if problem:
        raise ModelError(
            f"the model does not fit the {task.kind} task: {problem}",
            context=where,
            hint="check [task] kind and the model's last layer",
        )


def module_digests(names: tuple[str, ...], base_dir: Path) -> dict[str, str]:
    """sha256 of each module's file (a builder, a custom layer's module): editing one changes the train
    stage's id, so a stale model is never reused. Found the way the import will find them."""
    import hashlib
    import importlib.util

    digests = {}
    with on_path(base_dir):
        for name in names:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            origin = getattr(spec, "origin", None)
            path = Path(origin) if origin and origin not in ("built-in", "frozen") else None
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else "not found"
    return digests
