"""Which keys a recipe section allows, found by walking the schema along an error location."""

from __future__ import annotations

import typing
from typing import Any, Union

from pydantic import BaseModel

from edgepack.recipe.schema import Recipe


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the section at `loc` (a pydantic error location) accepts; [] when unknown."""
    node: Any = Recipe
    for elem in loc:
        node = _step(node, elem)
        if node is None:
            return []
    model = _as_model(node, None)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _step(node: Any, elem: Any) -> Any:
    node = _unwrap(node)
    if isinstance(elem, int):
        origin = typing.get_origin(node)
        return _unwrap(typing.get_args(node)[0]) if origin is list else None
    model = _as_model(node, elem)
    if model is not None and model is not node and not _is_model(node):
        return model  # elem was the union tag
    if model is None:
        return None
    for name, field in model.model_fields.items():
        if elem in (name, field.alias):
            return _unwrap(field.annotation)
    return None


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _as_model(tp: Any, tag: Any) -> type[BaseModel] | None:
    tp = _unwrap(tp)
    if _is_model(tp):
        return tp
    if typing.get_origin(tp) in (Union, typing.Union) or type(tp).__name__ == "UnionType":
        for arg in typing.get_args(tp):
            arg = _unwrap(arg)
            if _is_model(arg) and "kind" in arg.model_fields:
                if tag in typing.get_args(arg.model_fields["kind"].annotation):
                    return arg
    return None
