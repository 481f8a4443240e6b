"""Fold each BatchNormalization into the convolution (or Dense) layer that feeds it.

Why: TFMOT's QAT keeps BatchNormalization as a separate layer and fake-quantizes the *unfolded*
kernel; the converter folds BN afterwards. With per-channel weights that is exact (BN's factor
scales each channel's scale), but with per-tensor weights the folded kernel is quantized again
with one scale, and the int8 model no longer matches what QAT trained (MobileNetV2 0.35 on
digits: 98 % in Keras, 79 % in LiteRT). Folding first makes QAT see the kernel that ships.

A BN is folded when it directly follows a Conv2D, DepthwiseConv2D or Dense layer that has no
activation, is not shared, and feeds nothing else; BN's axis must be the last one. The model is
rebuilt from its config (functional or Sequential, `rebuild.py`) without the folded BN layers; every
other layer keeps its weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.optimize.rebuild import copy_weights, edit_layers, is_sequential, model_config, rebuild, uses

FOLDABLE = ("Conv2D", "DepthwiseConv2D", "Dense")


@dataclass(frozen=True)
class Fold:
    """One BatchNormalization (`bn`) folded into the layer before it (`into`)."""

    into: str
    bn: str


def fold_batchnorm(model: Any, label: str) -> tuple[Any, list[Fold]]:
    """The model with every foldable BatchNormalization folded; the folds made, in layer order."""
    sequential = is_sequential(model)
    config = model_config(model, label, "to fold its BatchNormalization layers")
    folds = _sequential_folds(model) if sequential else _functional_folds(model, config)
    if not folds:
        return model, []
    for entry in config["layers"]:
        if entry["config"]["name"] in {fold.into for fold in folds}:
            entry["config"]["use_bias"] = True
    folded_config = edit_layers(config, sequential, drop={fold.bn: fold.into for fold in folds})
    rebuilt = rebuild(
        model,
        folded_config,
        label,
        "without its BatchNormalization layers to fold them",
        hint="per-tensor QAT needs the BN layers folded; keep convert.per_channel = true for this model",
    )
    given = {fold.into: _folded_weights(model.get_layer(fold.into), model.get_layer(fold.bn)) for fold in folds}
    copy_weights(model, rebuilt, given, label, dropped={fold.bn for fold in folds})
    return rebuilt, folds


def _foldable(layer: Any, bn: Any) -> bool:
    """`bn` normalizes the channel axis of a foldable `layer` without an activation."""
    if type(layer).__name__ not in FOLDABLE or type(bn).__name__ != "BatchNormalization":
        return False
    if getattr(getattr(layer, "activation", None), "__name__", "linear") != "linear":
        return False
    axis = list(bn.axis) if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    return len(axis) == 1 and axis[0] in (-1, len(bn.input_shape) - 1)


def _sequential_folds(model: Any) -> list[Fold]:
    layers = model.layers
    return [Fold(layer.name, bn.name) for layer, bn in zip(layers, layers[1:]) if _foldable(layer, bn)]


def _functional_folds(model: Any, config: dict[str, Any]) -> list[Fold]:
    """BN layers whose one input is a foldable layer used by nothing else (and not an output)."""
    entries = {entry["name"]: entry for entry in config["layers"]}
    counts = uses(config)
    folds: list[Fold] = []
    for entry in config["layers"]:
        nodes = entry["inbound_nodes"]
        if entry["class_name"] != "BatchNormalization" or len(nodes) != 1 or len(nodes[0]) != 1:
            continue
        source = entries[nodes[0][0][0]]
        if (
            len(source["inbound_nodes"]) == 1
            and counts.get(source["name"]) == 1
            and _foldable(model.get_layer(source["name"]), model.get_layer(entry["name"]))
        ):
            folds.append(Fold(source["name"], entry["name"]))
    return folds


def _folded_weights(layer: Any, bn: Any) -> list[np.ndarray]:
    """Kernel and bias of `layer` with `bn` (inference statistics) folded in."""
    kernel = layer.get_weights()[0]
    mean, variance = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    bias = layer.get_weights()[1] if layer.use_bias else np.zeros_like(mean)
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    factor = gamma / np.sqrt(variance + bn.epsilon)
    if type(layer).__name__ == "DepthwiseConv2D":  # (kh, kw, in, multiplier); output = in * multiplier
        kernel = kernel * factor.reshape(kernel.shape[2], kernel.shape[3])
    else:  # (..., out)
        kernel = kernel * factor
    return [kernel.astype(np.float32), ((bias - mean) * factor + beta).astype(np.float32)]
