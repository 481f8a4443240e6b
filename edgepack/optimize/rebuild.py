"""Model surgery from the config: layers dropped or inserted, the model rebuilt, weights copied by name.

BatchNorm folding (`fold.py`) drops layers and low-rank factorization (`lowrank.py`) inserts them;
both edit the model's config (Sequential or functional) with `edit_layers`, rebuild it with
`rebuild`, and give every layer its weights with `copy_weights`: the new weights where a stage made
them, else the source layer's of the same name, each shape checked against the rebuilt layer.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from edgepack.errors import ModelError


def is_sequential(model: Any) -> bool:
    """True for a Sequential model (its config lists layers without inbound nodes)."""
    return type(model).__name__ == "Sequential"


def model_config(model: Any, label: str, why: str) -> dict[str, Any]:
    """A deep copy of the model's config; a model without one (subclassed) is refused, naming `why`."""
    try:
        return copy.deepcopy(model.get_config())
    except NotImplementedError as exc:
        raise ModelError(
            f"{label}: {type(model).__name__} has no layer config to rebuild from ({why})",
            hint="build the model as a Sequential or functional tf_keras model",
        ) from exc


def uses(config: dict[str, Any]) -> dict[str, int]:
    """How many inputs of other layers (and model outputs) each layer of a functional config feeds."""
    counts: dict[str, int] = {}
    for entry in config["layers"]:
        for node in entry["inbound_nodes"]:
            for name in _names(node):
                counts[name] = counts.get(name, 0) + 1
    for output in config["output_layers"]:
        counts[output[0]] = counts.get(output[0], 0) + 1
    return counts


def _is_ref(value: Any) -> bool:
    """A tensor reference of a config: [layer name, node index, tensor index(, kwargs)]."""
    return (
        isinstance(value, list)
        and len(value) >= 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    )


def _refs(node: Any) -> list[Any]:
    """The references of one inbound node: a list of them, or (a TF op layer, `x * 2.0`) one flat reference
    whose kwargs may hold more (`y`: another tensor)."""
    found: list[Any] = []
    for ref in [node] if _is_ref(node) else list(node):
        found.append(ref)
        if len(ref) > 3:
            found.extend(_nested_refs(ref[3]))
    return found


def _nested_refs(value: Any) -> list[Any]:
    if _is_ref(value):
        return [value, *(_nested_refs(value[3]) if len(value) > 3 else [])]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _nested_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _nested_refs(v)]
    return []


def _names(node: Any) -> list[str]:
    """The layers an inbound node reads."""
    return [ref[0] for ref in _refs(node)]


def _renamed(value: Any, drop: Mapping[str, str]) -> Any:
    """An inbound node (or any part of it) with each reference to a dropped layer pointing at its stand-in."""
    if _is_ref(value):
        return [drop.get(value[0], value[0]), *(_renamed(v, drop) for v in value[1:])]
    if isinstance(value, dict):
        return {k: _renamed(v, drop) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, drop) for v in value]
    return value


def edit_layers(
    config: dict[str, Any],
    sequential: bool,
    drop: Mapping[str, str] | None = None,
    insert: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The config with each layer of `drop` removed (what read it reads the layer `drop[name]` instead)
    and each layer spec of `insert[name]` placed before layer `name`, taking its inputs (`name` then
    reads the new layer's one output). Inserting is for layers called once (one inbound node)."""
    drop, insert = drop or {}, insert or {}
    kept = []
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if name in drop:
            continue
        if not sequential:
            entry["inbound_nodes"] = [_renamed(node, drop) for node in entry["inbound_nodes"]]
        if name in insert:
            kept.append(_placed(insert[name], entry, sequential))
        kept.append(entry)
    config["layers"] = kept
    if not sequential:
        config["output_layers"] = [[drop.get(out[0], out[0]), *out[1:]] for out in config["output_layers"]]
    return config


def _placed(spec: dict[str, Any], before: dict[str, Any], sequential: bool) -> dict[str, Any]:
    """`spec` wired in front of the layer entry `before` (functional: its inbound nodes moved over)."""
    new = copy.deepcopy(spec)
    if sequential:
        return new
    name = new["config"]["name"]
    new["name"], new["inbound_nodes"] = name, before["inbound_nodes"]
    before["inbound_nodes"] = [[[name, 0, 0, {}]]]
    return new


def rebuild(model: Any, config: dict[str, Any], label: str, what: str, hint: str) -> Any:
    """A new model of the same class from the edited config; a failure names `what` was being done."""
    try:
        return type(model).from_config(config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{label}: cannot rebuild the model {what} ({type(exc).__name__}: {exc})", hint=hint) from exc


def copy_weights(
    source: Any,
    rebuilt: Any,
    given: Mapping[str, list[np.ndarray]],
    label: str,
    dropped: Collection[str] = (),
) -> None:
    """Every layer of `rebuilt` gets `given[name]`, else the weights of `source`'s layer of that name;
    each shape is checked first, and a layer of `source` with weights that went nowhere (other than
    the `dropped` ones) is an error."""
    placed: set[str] = set()
    for layer in rebuilt.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        weights = given[layer.name] if layer.name in given else source.get_layer(layer.name).get_weights()
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(np.shape(w)) for w in weights] != expected:
            raise ModelError(
                f"{label}: weights of layer '{layer.name}' do not fit the rebuilt layer "
                f"({[tuple(np.shape(w)) for w in weights]} against {expected})",
                hint="this is a bug in edgepack's model rebuild: please report it with the model",
            )
        layer.set_weights(weights)
        placed.add(layer.name)
    lost = [layer.name for layer in source.layers if layer.weights and layer.name not in {*placed, *dropped}]
    if lost:
        raise ModelError(
            f"{label}: the rebuilt model lost the weights of {', '.join(lost)}",
            hint="this is a bug in edgepack's model rebuild: please report it with the model",
        )
