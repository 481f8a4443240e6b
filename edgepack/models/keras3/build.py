"""Building the tf_keras model from a plan, copying the weights: `bridge`."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.models.keras3.loading import is_keras3_model
from edgepack.models.keras3.plan import _flatten, _LayerPlan, _ModelPlan, _Node, _plan_model, _Ref
from edgepack.models.keras3.rules import MODEL_CLASSES, UnbridgeableLayer, _line
from edgepack.models.tf import load


def _build(plan: _ModelPlan) -> Any:
    return _build_sequential(plan) if plan.sequential else _build_functional(plan)


def _build_sequential(plan: _ModelPlan) -> Any:
    tk = load().keras
    first, rest = plan.layers[0].layer, plan.layers[1:]
    input_layer = tk.layers.InputLayer(batch_input_shape=first["batch_shape"], dtype=first["dtype"], name=first["name"])
    layers = [input_layer, *(_build(p.layer) if isinstance(p.layer, _ModelPlan) else p.layer for p in rest)]
    model = tk.Sequential(layers, name=plan.name)
    if not plan.trainable:  # setting it freezes every layer, as in Keras 3; True would unfreeze them
        model.trainable = False
    return model


def _build_functional(plan: _ModelPlan) -> Any:
    tk = load().keras
    produced: dict[tuple[str, int], list[Any]] = {}
    for p in plan.layers:
        if isinstance(p.layer, dict):
            produced[(p.name, 0)] = [tk.Input(**p.layer)]
    callables = {p.name: _build(p.layer) if isinstance(p.layer, _ModelPlan) else p.layer for p in plan.layers}
    pending = [(p, i) for p in plan.layers for i in range(len(p.nodes))]
    while pending:
        ready = [(p, i) for p, i in pending if _ready(p, i, produced)]
        if not ready:
            missing = sorted(
                {
                    r.layer
                    for p, i in pending
                    for r in _flatten([p.nodes[i].args, p.nodes[i].kwargs])
                    if isinstance(r, _Ref) and (r.layer, r.node) not in produced
                }
            )
            raise ModelError(
                f"model '{plan.name}': the Keras 3 graph refers to outputs never computed "
                f"({', '.join(missing) or 'a cycle'})",
                hint="re-save the model with Keras 3",
            )
        for p, i in ready:
            produced[(p.name, i)] = _call(callables[p.name], p, p.nodes[i], produced, plan.name)
            pending.remove((p, i))
    inputs = _unwrap(_resolve(plan.inputs, produced))
    outputs = _unwrap(_resolve(plan.outputs, produced))
    model = tk.Model(inputs=inputs, outputs=outputs, name=plan.name)
    if not plan.trainable:
        model.trainable = False
    return model


def _ready(plan: _LayerPlan, index: int, produced: dict[tuple[str, int], list[Any]]) -> bool:
    if index > 0 and (plan.name, index - 1) not in produced:
        return False  # keep each layer's calls in the Keras 3 order, so node indices agree
    node = plan.nodes[index]
    return all((r.layer, r.node) in produced for r in _flatten([node.args, node.kwargs]) if isinstance(r, _Ref))


def _call(
    layer: Any, plan: _LayerPlan, node: _Node, produced: dict[tuple[str, int], list[Any]], model: str
) -> list[Any]:
    tf = load().tf
    args = _resolve(node.args, produced)
    kwargs = _resolve(node.kwargs, produced)
    try:
        outputs = layer(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UnbridgeableLayer(
            plan.name,
            plan.keras3_class,
            f"tf_keras cannot call it on its inputs ({_line(exc)})",
            context=f"model '{model}'",
        ) from exc
    if node.mask_dropped:
        _check_mask(args, plan, model)
    return tf.nest.flatten(outputs)


def _check_mask(args: list[Any], plan: _LayerPlan, model: str) -> None:
    """A layer whose Keras 3 mask was left implicit must receive a mask in tf_keras too."""
    tensors = load().tf.nest.flatten(args)
    if not tensors or getattr(tensors[0], "_keras_mask", None) is None:
        raise UnbridgeableLayer(
            plan.name,
            plan.keras3_class,
            "Keras 3 passes it the Embedding's padding mask, which tf_keras does not propagate to it",
            context=f"model '{model}'",
        )


def _resolve(struct: Any, produced: dict[tuple[str, int], list[Any]]) -> Any:
    if isinstance(struct, _Ref):
        return produced[(struct.layer, struct.node)][struct.tensor]
    if isinstance(struct, dict):
        return {key: _resolve(value, produced) for key, value in struct.items()}
    if isinstance(struct, list):
        return [_resolve(item, produced) for item in struct]
    return struct


def _unwrap(struct: Any) -> Any:
    return struct[0] if isinstance(struct, list) and len(struct) == 1 else struct


def _copy_weights(source: Any, target: Any, where: str) -> None:
    """Copy every weight of the Keras 3 `source` into its tf_keras twin, layer by layer, by name."""
    for layer in source.layers:
        twin = target.get_layer(layer.name)
        if hasattr(layer, "layers") and hasattr(twin, "layers"):
            _copy_weights(layer, twin, f"{where} > '{layer.name}'")
        else:
            twin.set_weights(_ordered_values(layer, twin, where))
    if len(source.weights) != len(target.weights):
        raise ModelError(
            f"{where}: Keras 3 has {len(source.weights)} weights, the tf_keras rebuild {len(target.weights)}",
            code="keras3-bridge-mismatch",
        )


def _short_name(name: str) -> str:
    return name.split("/")[-1].split(":")[0]


def _ordered_values(layer: Any, twin: Any, where: str) -> list[np.ndarray]:
    """The Keras 3 layer's weight values in the tf_keras layer's order (by name, else by position)."""
    source, target = list(layer.weights), list(twin.weights)
    if len(source) != len(target):
        raise ModelError(
            f"{where}: layer '{layer.name}' has {len(source)} weights in Keras 3 and {len(target)} in tf_keras",
            code="keras3-bridge-mismatch",
        )
    by_name = {_short_name(v.name): v for v in source}
    target_names = [_short_name(w.name) for w in target]
    if len(by_name) == len(source) and sorted(by_name) == sorted(target_names):
        source = [by_name[name] for name in target_names]
    values = []
    for v, w in zip(source, target):
        value = _value(layer, v)
        if tuple(value.shape) != tuple(w.shape) or value.dtype != np.dtype(w.dtype.as_numpy_dtype):
            raise ModelError(
                f"{where}: weight '{_short_name(v.name)}' of layer '{layer.name}' is "
                f"{value.dtype}{tuple(value.shape)} in Keras 3 but {w.dtype.name}{tuple(w.shape)} "
                "in tf_keras",
                code="keras3-bridge-mismatch",
            )
        values.append(value)
    return values


def _value(layer: Any, variable: Any) -> np.ndarray:
    """A Keras 3 weight's value; for an adapted Normalization, the statistics its `call` actually uses.

    Keras 3's Normalization computes with `mean`/`variance` tensors snapshotted from its variables
    by `finalize_state()`; after a plain `set_weights` the two disagree, and the model computes with
    the snapshot.
    """
    value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
    name = _short_name(variable.name)
    adapted = type(layer).__name__ == "Normalization" and getattr(layer, "input_mean", 0) is None
    if adapted and name in ("mean", "variance"):
        used = getattr(layer, name, None)
        if used is not None:
            return np.asarray(used, dtype=value.dtype).reshape(value.shape)
    return value


def _check_weight_dtypes(model: Any, where: str, problems: list[UnbridgeableLayer]) -> None:
    """Refuse layers holding floating weights other than float32 (half precision, float64)."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            _check_weight_dtypes(layer, f"{where} > '{layer.name}'", problems)
            continue
        for v in layer.weights:
            dtype = np.dtype(str(v.dtype))
            if dtype != np.float32 and (dtype.kind == "f" or v.trainable):
                reason = f"weight '{v.name}' is {dtype}: edgepack bridges float32 models only"
                problems.append(UnbridgeableLayer(layer.name, type(layer).__name__, reason, context=where))
                break


def bridge(model: Any) -> Any:
    """A tf_keras model computing what the Keras 3 `model` computes, with its weights.

    Sequential models become tf_keras Sequential models and Functional ones functional tf_keras
    models; layer, input and output names are kept. Refuses (UnbridgeableLayer) any layer outside
    the registry, any Keras-3-only argument away from its default and any non-float32 dtype,
    before building anything. Prove the result with `prove_bridge`.
    """
    if not is_keras3_model(model):
        raise ModelError(
            f"bridge() takes a Keras 3 model, got {type(model).__module__}.{type(model).__name__}",
            hint="tf_keras models need no bridge",
        )
    kind = type(model).__name__
    where = f"model '{model.name}'"
    if kind not in MODEL_CLASSES or not type(model).__module__.startswith("keras."):
        raise UnbridgeableLayer(
            model.name,
            kind,
            "a subclassed model has no config to rebuild it from",
            context=where,
            hint="build the model with the Sequential or functional API",
        )
    problems: list[UnbridgeableLayer] = []
    plan = _plan_model(kind, model.get_config(), where, problems)
    _check_weight_dtypes(model, where, problems)
    if problems:
        unique: dict[str, UnbridgeableLayer] = {}
        for problem in problems:
            unique.setdefault(problem.layer, problem)  # one refusal per layer
        raise _first_of(list(unique.values()))
    tf_model = _build(plan)
    _copy_weights(model, tf_model, where)
    return tf_model


def _first_of(problems: list[UnbridgeableLayer]) -> UnbridgeableLayer:
    first = problems[0]
    if len(problems) == 1:
        return first
    others = ", ".join(f"'{p.layer}' ({p.layer_class}: {p.reason})" for p in problems[1:6])
    more = f" and {len(problems) - 6} more" if len(problems) > 6 else ""
    return UnbridgeableLayer(
        first.layer,
        first.layer_class,
        first.reason,
        hint=first.hint,
        context=f"{first.context}; also unbridgeable: {others}{more}",
    )
