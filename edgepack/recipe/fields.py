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


def walk(loc: tuple[Any, ...], data: Any) -> tuple[str, Any, bool]:
    """Follow a pydantic error location through the raw data, as a path people read.

    Returns the dotted path (`optimize[1].final_sparsity`), the value found there and whether
    it was found. The union tags pydantic inserts (`optimize.1.prune.final_sparsity`) are
    recognised from the schema, not guessed from the data, and dropped.
    """
    parts: list[str] = []
    node, found = data, True
    schema: Any = Recipe  # a type form of the schema: a model, a union, list[...], None once off the schema
    for elem in loc:
        if isinstance(elem, str) and schema is not None and _is_union(schema) and _as_model(schema, elem):
            schema = _as_model(schema, elem)
            continue
        if isinstance(node, list) and isinstance(elem, int) and elem < len(node) and parts:
            parts[-1] += f"[{elem}]"
            node = node[elem]
        elif isinstance(node, dict) and elem in node:
            parts.append(str(elem))
            node = node[elem]
        else:
            parts.append(str(elem))
            found = False
        schema = _step(schema, elem) if schema is not None else None
    return (".".join(parts) or "(top level)"), node, found


def _is_union(tp: Any) -> bool:
    tp = _unwrap(tp)
    return typing.get_origin(tp) in (Union, typing.Union) or type(tp).__name__ == "UnionType"


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
