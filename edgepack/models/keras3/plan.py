"""Plans: the Keras 3 graph read from its config, every layer already made in tf_keras."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgepack.errors import ModelError
from edgepack.models.keras3.rules import MODEL_CLASSES, UnbridgeableLayer, _dtype, _input_config, _make_layer, _refuse


@dataclass(frozen=True)
class _Ref:
    """A Keras 3 tensor: output `tensor` of the `node`-th call of layer `layer` in this model."""

    layer: str
    node: int
    tensor: int


@dataclass
class _Node:
    args: list[Any]
    kwargs: dict[str, Any]
    mask_dropped: bool = False  # the Embedding mask Keras 3 passed explicitly is left to tf_keras


@dataclass
class _LayerPlan:
    name: str
    keras3_class: str
    layer: Any  # a tf_keras layer, a `_ModelPlan` (nested model) or the `tf_keras.Input` arguments
    nodes: list[_Node] = field(default_factory=list)


@dataclass
class _ModelPlan:
    name: str
    sequential: bool
    trainable: bool
    layers: list[_LayerPlan]
    inputs: Any = None  # structure of `_Ref` (functional)
    outputs: Any = None


def _plan_model(
    class_name: str, config: Mapping[str, Any], where: str, problems: list[UnbridgeableLayer]
) -> _ModelPlan:
    if class_name == "Sequential":
        return _plan_sequential(config, where, problems)
    return _plan_functional(config, where, problems)


def _plan_entry(entry: Mapping[str, Any], where: str, problems: list[UnbridgeableLayer]) -> Any:
    """The tf_keras side of one layer entry; refusals are collected in `problems`."""
    try:
        if entry.get("class_name") == "InputLayer" and entry.get("module") in ("keras.layers", None):
            return _input_config(entry, where)
        if entry.get("class_name") in MODEL_CLASSES and str(entry.get("module", "keras")).startswith("keras"):
            config = entry.get("config") or {}
            if "dtype" in config:
                _dtype(config["dtype"], entry, where)
            return _plan_model(str(entry["class_name"]), config, f"{where} > '{config.get('name')}'", problems)
        return _make_layer(entry, where)
    except UnbridgeableLayer as exc:
        problems.append(exc)
        return None


def _plan_sequential(config: Mapping[str, Any], where: str, problems: list[UnbridgeableLayer]) -> _ModelPlan:
    entries = list(config.get("layers") or [])
    if not entries or entries[0].get("class_name") != "InputLayer":
        shape = config.get("build_input_shape")
        if shape is None:
            raise ModelError(
                f"{where}: the Sequential model '{config.get('name')}' is not built (no input shape)",
                hint="give the Keras 3 Sequential model a keras.Input first, or build it",
            )
        entries.insert(
            0,
            {
                "class_name": "InputLayer",
                "module": "keras.layers",
                "config": {"batch_shape": shape, "name": f"{config.get('name')}_input"},
            },
        )
    layers = [
        _LayerPlan(str(e["config"].get("name")), str(e["class_name"]), _plan_entry(e, where, problems)) for e in entries
    ]
    return _ModelPlan(str(config.get("name")), True, bool(config.get("trainable", True)), layers)


def _plan_functional(config: Mapping[str, Any], where: str, problems: list[UnbridgeableLayer]) -> _ModelPlan:
    entries = list(config.get("layers") or [])
    mask_ops = _implicit_masks(entries, config)
    layers = []
    for entry in entries:
        if entry["name"] in mask_ops:
            continue
        known = len(problems)
        made = _plan_entry(entry, where, problems)
        checked = problems if len(problems) == known else []  # one refusal per layer is enough
        nodes = [_node(raw, mask_ops, entry, where, checked) for raw in entry.get("inbound_nodes") or []]
        layers.append(_LayerPlan(str(entry["name"]), str(entry["class_name"]), made, nodes))
    return _ModelPlan(
        str(config.get("name")),
        False,
        bool(config.get("trainable", True)),
        layers,
        _refs(config.get("input_layers")),
        _refs(config.get("output_layers")),
    )


def _refs(struct: Any) -> Any:
    """Keras 3 `[layer, node, tensor]` triples (in lists, dicts or `__keras_tensor__`s) as `_Ref`s."""
    if isinstance(struct, Mapping):
        if struct.get("class_name") == "__keras_tensor__":
            return _Ref(*struct["config"]["keras_history"])
        return {key: _refs(value) for key, value in struct.items()}
    if isinstance(struct, (list, tuple)):
        if len(struct) == 3 and isinstance(struct[0], str) and all(isinstance(i, int) for i in struct[1:]):
            return _Ref(struct[0], struct[1], struct[2])
        return [_refs(item) for item in struct]
    return struct


def _implicit_masks(entries: list[Mapping[str, Any]], config: Mapping[str, Any]) -> set[str]:
    """The `not_equal(tokens, 0)` ops Keras 3 records for an `Embedding(mask_zero=True)` mask.

    tf_keras propagates that mask implicitly, so such an op is left out when it only feeds `mask`
    arguments; its consumers are checked to receive a mask once the tf_keras graph is built.
    """
    embedded = {
        _first_ref_layer(node)
        for e in entries
        if e["class_name"] == "Embedding" and (e.get("config") or {}).get("mask_zero")
        for node in e.get("inbound_nodes") or []
    }
    candidates = set()
    for e in entries:
        nodes = e.get("inbound_nodes") or []
        if e["class_name"] == "NotEqual" and str(e.get("module", "")).startswith("keras.src.ops") and len(nodes) == 1:
            args = nodes[0].get("args") or []
            if len(args) == 2 and args[1] == 0 and _first_ref_layer(nodes[0]) in embedded:
                candidates.add(str(e["name"]))
    data_uses = set()
    for e in entries:
        for node in e.get("inbound_nodes") or []:
            kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if k != "mask"}
            data_uses |= _layers_in(_refs([node.get("args"), kwargs]))
    data_uses |= _layers_in(_refs(config.get("output_layers")))
    return candidates - data_uses


def _first_ref_layer(node: Mapping[str, Any]) -> str | None:
    refs = [r for r in _flatten(_refs(node.get("args"))) if isinstance(r, _Ref)]
    return refs[0].layer if refs else None


def _layers_in(struct: Any) -> set[str]:
    return {r.layer for r in _flatten(struct) if isinstance(r, _Ref)}


def _flatten(struct: Any) -> list[Any]:
    if isinstance(struct, Mapping):
        return [leaf for value in struct.values() for leaf in _flatten(value)]
    if isinstance(struct, (list, tuple)):
        return [leaf for item in struct for leaf in _flatten(item)]
    return [struct]


def _node(
    raw: Mapping[str, Any], mask_ops: set[str], entry: Mapping[str, Any], where: str, problems: list[UnbridgeableLayer]
) -> _Node:
    args = list(_refs(list(raw.get("args") or [])))
    if len(args) != 1:
        problems.append(
            _refuse(
                entry,
                f"it is called with {len(args)} positional arguments; edgepack bridges "
                "layers called on one input (or one list of inputs)",
                where,
            )
        )
    kwargs, mask_dropped = {}, False
    for key, value in (raw.get("kwargs") or {}).items():
        value = _refs(value)
        # `training` is dropped: Keras 3 lets the outer call's `training` override it, tf_keras would not.
        if value is None or key == "training":
            continue
        if key == "mask" and _layers_in(value) and _layers_in(value) <= mask_ops:
            mask_dropped = True
            continue
        kwargs[key] = value
    return _Node(args, kwargs, mask_dropped)
