"""Layer selection shared by prune, QAT and cluster: name or class patterns, minus a skip list.

A pattern (`fnmatch` syntax) matches a layer when it matches the layer's name (`conv1`, `conv*`)
or its class name (`Dense`, `Conv2D`). A pattern that matches no layer at all is an error, so a
typo never silently selects nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from edgepack.errors import ModelError


@dataclass(frozen=True)
class Selection:
    """The layers a stage will touch, and why the others are left alone."""

    chosen: tuple[str, ...]
    left_out: dict[str, str]

    def __contains__(self, name: str) -> bool:
        return name in self.chosen


def matches(layer: Any, pattern: str) -> bool:
    """True when `pattern` matches the layer's name or its class name."""
    return fnmatchcase(layer.name, pattern) or fnmatchcase(type(layer).__name__, pattern)


def select_layers(
    model: Any,
    layers: Sequence[str] | None,
    skip: Sequence[str],
    label: str,
    applies: Callable[[Any], str | None],
    technique: str,
) -> Selection:
    """Choose the layers of `model` that a stage works on.

    `applies(layer)` returns None when the technique can work on the layer, else the reason it
    cannot. Layers picked by the default selection (every layer) are left out quietly with their
    reason; a layer named explicitly in `layers` that the technique cannot handle is an error.
    """
    candidates = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    _check_patterns(candidates, [*(layers or []), *skip], label)
    chosen: list[str] = []
    left_out: dict[str, str] = {}
    for layer in candidates:
        picked = layers is None or any(matches(layer, p) for p in layers)
        if not picked:
            continue
        if any(matches(layer, p) for p in skip):
            left_out[layer.name] = "skipped by the recipe"
            continue
        reason = applies(layer)
        if reason is None:
            chosen.append(layer.name)
        elif layers is not None and any(layer.name == p for p in layers):
            raise ModelError(
                f"{technique} cannot be applied to layer '{layer.name}' ({type(layer).__name__}): {reason}",
                context=label,
                hint=f"remove '{layer.name}' from `layers`, or add it to `skip`",
                code="layer-unsupported",
            )
        else:
            left_out[layer.name] = reason
    if not chosen:
        raise ModelError(
            f"no layer of the model is selected for {technique}",
            context=label,
            hint="check `layers` and `skip`; layers: " + ", ".join(layer.name for layer in candidates),
        )
    return Selection(tuple(chosen), left_out)


def _check_patterns(candidates: list[Any], patterns: list[str], label: str) -> None:
    for pattern in patterns:
        if not any(matches(layer, pattern) for layer in candidates):
            names = ", ".join(f"{c.name} ({type(c).__name__})" for c in candidates)
            raise ModelError(
                f"layer pattern '{pattern}' matches no layer of the model",
                context=label,
                hint=f"patterns match a layer name or class; the layers are: {names}",
                code="layer-pattern-unmatched",
            )


def has_kernel(layer: Any) -> bool:
    """True when the layer has trainable weights (something to prune or cluster)."""
    return bool(layer.trainable_weights)
