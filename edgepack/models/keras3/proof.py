"""The proof: both models, same inputs, every output compared; on a mismatch, the first differing layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.errors import ModelError
from edgepack.models.keras3.loading import keras3_module
from edgepack.models.keras3.rules import _line
from edgepack.models.tf import load


@dataclass(frozen=True)
class BridgeProof:
    """How closely the tf_keras rebuild matches the Keras 3 model on the given samples."""

    max_abs_diff: float
    tolerance: float
    samples: int
    outputs: list[float]

    def to_dict(self) -> dict[str, Any]:
        """The proof as plain data, for the stage record and `--json` output."""
        return {
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "samples": self.samples,
            "outputs": list(self.outputs),
        }


def prove_bridge(
    keras3_model: Any,
    tf_keras_model: Any,
    x: np.ndarray | list[np.ndarray],
    tolerance: float = 1e-5,
    batch_size: int = 256,
) -> BridgeProof:
    """Run both models (inference mode) on `x` and check every output agrees within `tolerance`.

    `x` is one array, or one array per input in input order. On a mismatch, raises ModelError
    (`keras3-bridge-mismatch`) naming the first layer, in topological order, whose outputs differ.
    """
    inputs = _inputs(keras3_model, x)
    expected = _run(keras3_model, inputs, batch_size)
    got = _run(tf_keras_model, inputs, batch_size)
    if len(expected) != len(got):
        raise ModelError(
            f"the Keras 3 model has {len(expected)} outputs, the tf_keras rebuild {len(got)}",
            code="keras3-bridge-mismatch",
        )
    diffs = [_max_diff(a, b) for a, b in zip(expected, got)]
    worst = max(diffs)
    if not worst <= tolerance:
        raise _mismatch(keras3_model, tf_keras_model, inputs, expected, got, diffs, tolerance, batch_size)
    return BridgeProof(max_abs_diff=worst, tolerance=tolerance, samples=len(inputs[0]), outputs=diffs)


def _inputs(model: Any, x: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    specs = list(model.inputs)
    if len(arrays) != len(specs):
        raise ModelError(
            f"the model takes {len(specs)} inputs, {len(arrays)} arrays were given",
            hint="pass one array per model input, in input order",
        )
    sizes = {len(a) for a in arrays}
    if len(sizes) != 1 or 0 in sizes:
        raise ModelError(f"the input arrays hold {sorted(sizes)} samples: give each input the same, non-zero count")
    return [np.asarray(a).astype(np.dtype(str(spec.dtype)), copy=False) for a, spec in zip(arrays, specs)]


def _run(model: Any, inputs: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """Every output of `model` (flattened in its output order) over all samples, as float64."""
    tf = load().tf
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(inputs[0]), batch_size):
        batch = [a[start : start + batch_size] for a in inputs]
        out = model(_structure(model, batch), training=False)
        chunks.append([np.asarray(t, dtype=np.float64) for t in tf.nest.flatten(out)])
    return [np.concatenate(parts, axis=0) for parts in zip(*chunks)]


def _structure(model: Any, batch: list[np.ndarray]) -> Any:
    """The batch in the structure the model was built with (one array, a list, or a dict by input name)."""
    struct = getattr(model, "_inputs_struct", None)  # Keras 3 keeps the structure of `inputs` here
    if isinstance(struct, dict):
        order = [id(t) for t in model.inputs]
        return {key: batch[order.index(id(tensor))] for key, tensor in struct.items()}
    if isinstance(struct, list) or len(batch) > 1:
        return batch
    return batch[0]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    return float(np.nan_to_num(diff, nan=math.inf).max()) if diff.size else 0.0


def _failing(expected: list[np.ndarray], got: list[np.ndarray], tolerance: float, limit: int) -> np.ndarray:
    """Indices of (at most `limit`) samples on which some output differs beyond `tolerance`."""
    bad = np.zeros(len(expected[0]), dtype=bool)
    for a, b in zip(expected, got):
        if a.shape != b.shape:
            return np.arange(min(limit, len(bad)))
        per_sample = np.nan_to_num(np.abs(a - b).reshape(len(a), -1), nan=math.inf)
        if per_sample.size:
            bad |= (per_sample > tolerance).any(axis=1)
    return np.flatnonzero(bad)[:limit]


def _mismatch(
    k3: Any,
    tk_model: Any,
    inputs: list[np.ndarray],
    expected: list[np.ndarray],
    got: list[np.ndarray],
    diffs: list[float],
    tolerance: float,
    batch_size: int,
) -> ModelError:
    rows = _failing(expected, got, tolerance, batch_size)
    subset = [a[rows] for a in inputs]
    try:
        layer, diff = _first_divergence(k3, tk_model, subset, tolerance)
        where = (
            f"first differing layer: '{layer}' (max abs diff {diff:.3g})"
            if layer
            else "no single layer output differs beyond the tolerance: the difference accumulates"
        )
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:  # private graph APIs moved
        where = f"the differing layer could not be located ({_line(exc)})"
    per_output = ", ".join(f"{d:.3g}" for d in diffs)
    return ModelError(
        f"the tf_keras rebuild differs from the Keras 3 model by {max(diffs):.3g} "
        f"(tolerance {tolerance:g}; per output {per_output}); {where}",
        context=f"model '{k3.name}', {len(inputs[0])} samples",
        code="keras3-bridge-mismatch",
        hint="report the layer and the Keras 3 model to edgepack; build the model in tf_keras meanwhile",
    )


def _first_divergence(
    k3: Any, tk_model: Any, inputs: list[np.ndarray], tolerance: float, prefix: str = ""
) -> tuple[str | None, float]:
    """The first layer (topological order) whose outputs differ beyond `tolerance`, descending into sub-models."""
    keras = keras3_module()
    tk = load().keras
    pairs = _node_pairs(k3, tk_model)
    if not pairs:
        return None, 0.0
    k3_probe = keras.Model(k3.inputs, [t for _, k3_nodes, _ in pairs for node in k3_nodes for t in node])
    tk_probe = tk.Model(tk_model.inputs, [t for _, _, tk_nodes in pairs for node in tk_nodes for t in node])
    expected = _run(k3_probe, inputs, len(inputs[0]))
    got = _run(tk_probe, inputs, len(inputs[0]))
    position = 0
    for layer, k3_nodes, _ in pairs:
        count = sum(len(node) for node in k3_nodes)
        span = slice(position, position + count)
        diff = max(_max_diff(a, b) for a, b in zip(expected[span], got[span]))
        position += count
        if diff > tolerance or math.isnan(diff):
            return _descend(layer, k3, tk_model, inputs, tolerance, prefix, diff)
    return None, 0.0


def _descend(
    layer: Any, k3: Any, tk_model: Any, inputs: list[np.ndarray], tolerance: float, prefix: str, diff: float
) -> tuple[str, float]:
    """Name `layer`, or the first differing layer inside it when it is a single-call sub-model."""
    name = f"{prefix}{layer.name}"
    nodes = _model_nodes(layer, k3)
    if not hasattr(layer, "layers") or len(nodes) != 1:
        return name, diff
    keras = keras3_module()
    feed = keras.Model(k3.inputs, list(nodes[0].arguments.keras_tensors))
    inner_inputs = _run(feed, inputs, len(inputs[0]))
    inner_inputs = [a.astype(np.dtype(str(spec.dtype))) for a, spec in zip(inner_inputs, layer.inputs)]
    inner, inner_diff = _first_divergence(layer, tk_model.get_layer(layer.name), inner_inputs, tolerance, f"{name}/")
    return (inner, inner_diff) if inner else (name, diff)


def _model_nodes(layer: Any, model: Any) -> list[Any]:
    """The Keras 3 nodes (calls) of `layer` that belong to `model`'s graph."""
    owner = getattr(model, "_functional", None) or model
    keys = getattr(owner, "_nodes", None)  # Keras 3 keys a node as f"{id(operation)}_ib-{index}"
    return [n for i, n in enumerate(layer._inbound_nodes) if keys is None or f"{id(layer)}_ib-{i}" in keys]


def _tk_nodes(layer: Any, model: Any) -> list[Any]:
    keys = getattr(model, "_network_nodes", None)
    return [n for i, n in enumerate(layer._inbound_nodes) if keys is None or f"{layer.name}_ib-{i}" in keys]


def _node_pairs(k3: Any, tk_model: Any) -> list[tuple[Any, list[list[Any]], list[list[Any]]]]:
    """(Keras 3 layer, its output tensors per call, the tf_keras twin's) for every comparable layer, in order."""
    tf = load().tf
    pairs = []
    twins = {layer.name: layer for layer in tk_model.layers}
    for layer in k3.layers:
        twin = twins.get(layer.name)
        if twin is None or type(layer).__name__ == "InputLayer":
            continue
        k3_nodes = [list(n.outputs) for n in _model_nodes(layer, k3)]
        tk_nodes = [tf.nest.flatten(n.outputs) for n in _tk_nodes(twin, tk_model)]
        if len(k3_nodes) == len(tk_nodes) and all(len(a) == len(b) for a, b in zip(k3_nodes, tk_nodes)):
            pairs.append((layer, k3_nodes, tk_nodes))
    return pairs
