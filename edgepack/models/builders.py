"""A recipe's builder function: imported (beside the recipe first), its `args` held to its signature and
to the bounds it declares, and called with every failure a recipe error (exit 2), never an internal one.

A builder declares its bounds in its annotations, as the shipped ones do (`models/zoo.py`):
`width: Annotated[int, Field(gt=0, le=256)]`, a `Literal` of the values it takes. They are read from the
signature, so `recipes check` (and `run`, before anything loads or trains) refuses `width = -5` naming
the argument without building anything; the shipped builders' module imports no TensorFlow until a
builder is called. A builder that raises while building is reported with its own message, its name and
its arguments; one that runs out of memory says so.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgepack.errors import EdgepackError, ModelError, RecipeError
from edgepack.recipe.model import BuilderModel

CALLED_AS = (
    "a builder is called as f(input_shape, size, **args): size is the class count (classification), "
    "the target size (regression) or the input size (anomaly)"
)


def recipe_builders(recipe: Any) -> list[tuple[str, BuilderModel]]:
    """Every builder a recipe names, with the field that names it: `model`, a distillation's
    `optimize[N].student`."""
    found = [("model", recipe.model)] if isinstance(recipe.model, BuilderModel) else []
    for index, stage in enumerate(recipe.optimize):
        student = getattr(stage, "student", None)
        if isinstance(student, BuilderModel):
            found.append((f"optimize[{index}].student", student))
    return found


def check_recipe_builders(loaded: Any) -> None:
    """Each builder of a loaded recipe imported and its args checked (`recipes check`, the start of
    `run`); the error's context starts with the recipe file."""
    try:
        for field, spec in recipe_builders(loaded.recipe):
            check_builder_args(spec, builder_function(spec, loaded.base_dir, field), field)
    except EdgepackError as exc:
        where = str(loaded.path or loaded.recipe.name)
        exc.context = f"{where}: {exc.context}" if exc.context else where
        raise


def builder_function(spec: BuilderModel, base_dir: Path, field: str = "model") -> Any:
    """The builder's function, its module imported (beside the recipe first)."""
    module_name, func_name = spec.builder.split(":")
    with on_path(base_dir):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(
                f"cannot import builder module '{module_name}': {exc}",
                context=f"{field}.builder = '{spec.builder}'",
                hint=f"put {module_name}.py beside the recipe or install its package",
            ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ModelError(
            f"'{module_name}' has no function '{func_name}'", context=f"{field}.builder = '{spec.builder}'"
        )
    return func


def check_builder_args(spec: BuilderModel, func: Any, field: str = "model") -> None:
    """`args` against the builder's signature: an argument it does not take, or a value its annotation
    refuses (another type, out of its declared bounds, not one of its literals), is a recipe error naming
    the argument, the builder and what it takes (before anything trains, and in `recipes check`)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # no signature to read (a C function): checked when called
        return
    params = list(signature.parameters.values())
    named = [q for q in params[2:] if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)]
    takes = ", ".join(q.name for q in named) or "none"
    context = f"{field}.args = {spec.args}"
    if not any(q.kind == q.VAR_KEYWORD for q in params):
        for name in spec.args:
            if name not in {q.name for q in named}:
                raise RecipeError(
                    f"{field}.args.{name}: builder '{spec.builder}' takes no argument '{name}'",
                    context=context,
                    hint=f"its arguments besides the input shape and size: {takes}",
                    code="builder-args",
                )
    try:
        signature.bind(None, None, **spec.args)
    except TypeError as exc:
        raise RecipeError(
            f"{field}.args: builder '{spec.builder}' cannot be called with them: {exc}",
            context=context,
            hint=f"its arguments: {takes}",
            code="builder-args",
        ) from exc
    try:
        hints = typing.get_type_hints(func, include_extras=True)  # extras: the Annotated bounds
    except Exception:  # annotations that do not resolve (names the module imports lazily): not checked
        hints = {}
    for name, value in spec.args.items():
        problem = _refusal(hints.get(name), value)
        if problem is not None:
            where, why = problem
            raise RecipeError(
                f"{field}.args.{name}{where} = {_shown(value, where)!r}: {why}",
                context=context,
                code="builder-args",
                hint=f"builder '{spec.builder}' takes '{name}': {describe(hints[name])}",
            )


def _refusal(hint: Any, value: Any) -> tuple[str, str] | None:
    """Where in `value` (`""`, `"[1]"`) and why the annotation refuses it, or None when it takes it (or
    cannot be checked: no annotation, `Any`, a type pydantic does not know, such as a Keras class)."""
    from pydantic import TypeAdapter, ValidationError

    if hint is None or hint is Any:
        return None
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(hint)
    except Exception:  # a type pydantic cannot check: the builder decides
        return None
    try:
        adapter.validate_python(value, strict=True)
        return None
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
    if isinstance(value, list) and not error["loc"] and error["type"].endswith("_type"):
        try:  # TOML has arrays only: a tuple is given as one
            adapter.validate_python(tuple(value), strict=True)
            return None
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
    where = "".join(f"[{part}]" for part in error["loc"] if isinstance(part, int))
    return where, _must(error["msg"])


def _shown(value: Any, where: str) -> Any:
    """The value at `where` (`"[1]"`) in the argument's value, as the message quotes it."""
    for index in (int(part) for part in where.strip("[]").split("][") if part):
        value = value[index]
    return value


def _must(message: str) -> str:
    """pydantic's "Input should be greater than 0" as the recipe errors say it: "must be greater than 0"."""
    for start in ("Input should", "List should", "Tuple should", "Value should"):
        if message.startswith(start):
            return "must" + message[len(start) :].replace(" after validation", "")
    return message


def describe(hint: Any) -> str:
    """An annotation as a reader of the recipe wants it: `int, > 0 and <= 256`; `one of 'relu', 'tanh'`;
    `a list of (int, > 0 and <= 4096), at most 16 items, or none`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        bounds = [_bound(item) for meta in args[1:] for item in _metadata(meta)]
        shown = " and ".join(b for b in bounds if b)
        return f"{describe(args[0])}, {shown}" if shown else describe(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, _union_type()):
        kinds = [describe(a) for a in args if a is not type(None)]
        joined = " or ".join(kinds)
        return f"{joined}, or none" if type(None) in args else joined
    if origin in (list, tuple):
        items = [a for a in args if a is not Ellipsis]
        element = " or ".join(f"({describe(a)})" if "," in describe(a) else describe(a) for a in items)
        if origin is tuple and Ellipsis not in args:
            return f"a list of {len(items)}: {element}" if items else "a list"
        return f"a list of {element}" if element else "a list"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _union_type() -> Any:
    import types

    return types.UnionType


def _metadata(meta: Any) -> list[Any]:
    """The constraints of one `Annotated` entry (a pydantic `Field(...)` holds several)."""
    return list(getattr(meta, "metadata", None) or [meta])


def _bound(item: Any) -> str:
    words = {"gt": "> {}", "ge": ">= {}", "lt": "< {}", "le": "<= {}", "max_length": "at most {} items"}
    words["min_length"] = "at least {} items"
    for name, text in words.items():
        value = getattr(item, name, None)
        if value is not None:
            return text.format(value)
    return ""


def build(spec: BuilderModel, input_shape: Any, size: int, base_dir: Path, field: str = "model") -> Any:
    """Call the builder `module:function(input_shape, size, **args)`, its arguments checked first.

    Whatever the builder raises is a bad input naming it and its args, with its own message (an
    out-of-memory says memory); edgepack's own errors pass as they are."""
    func = builder_function(spec, base_dir, field)
    check_builder_args(spec, func, field)
    called = f"builder '{spec.builder}' with {field}.args = {spec.args}"
    try:
        return func(input_shape, size, **spec.args)
    except EdgepackError:
        raise
    except Exception as exc:  # the builder's own failure: the user's input, not edgepack's bug
        if out_of_memory(exc):
            raise ModelError(
                f"{called} ran out of memory building the model: {type(exc).__name__}: {_message(exc)}",
                context=f"{field}.builder = '{spec.builder}'",
                code="builder-out-of-memory",
                hint=f"give smaller {field}.args (widths, units, layers) or a smaller input; the model must fit in memory",
            ) from exc
        data = _data_parameters(exc, func)
        if data:  # the data's shape or size (a multi-input dataset for a one-input builder): no arg to change
            given = {"input_shape": input_shape, "size": size}
            named = ", ".join(f"{name} = {given.get(name, (input_shape, size)[i])}" for i, name in data)
            raise ModelError(
                f"builder '{spec.builder}' cannot take what the data gives, {named}: {_message(exc)}",
                context=f"{field}.builder = '{spec.builder}'; the inputs of dataset.x_key",
                code="builder-failed",
                hint="a shipped builder takes one input, its input_shape one tuple of sizes: give one array in "
                f"dataset.x_key, or a builder of your own that takes a list of shapes ({field}.args cannot change "
                "the data's shape)",
            ) from exc
        if isinstance(exc, TypeError):
            raise ModelError(
                f"builder '{spec.builder}' rejected its arguments: {exc}",
                context=f"{field}.args = {spec.args}",
                hint=CALLED_AS,
                code="builder-failed",
            ) from exc
        raise ModelError(
            f"{called} failed: {type(exc).__name__}: {_message(exc)}",
            context=f"{field}.builder = '{spec.builder}'",
            code="builder-failed",
            hint=f"change {field}.args as the builder's message asks; {CALLED_AS}",
        ) from exc


def _data_parameters(exc: BaseException, func: Any) -> list[tuple[int, str]]:
    """The builder's data parameters (its first two: the input shape and the size, by position and name)
    that a pydantic validation error of its `validate_call` names; none for any other exception."""
    errors = getattr(exc, "errors", None)
    if not callable(errors) or type(exc).__name__ != "ValidationError":
        return []
    try:
        params = list(inspect.signature(func).parameters)[:2]
    except (TypeError, ValueError):
        return []
    found: list[tuple[int, str]] = []
    for error in errors():
        loc = error.get("loc") or ()
        first = loc[0] if loc else None
        index = first if isinstance(first, int) else (params.index(first) if first in params else None)
        if index is not None and index < len(params) and (index, params[index]) not in found:
            found.append((index, params[index]))
    return found


def out_of_memory(exc: BaseException) -> bool:
    """A failed allocation: Python's `MemoryError`, TensorFlow's `ResourceExhaustedError` (OOM) or a
    C++ `std::bad_alloc` surfaced as an exception; known by name, so TensorFlow is never imported here."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"MemoryError", "ResourceExhaustedError", "OutOfMemoryError"}) or "bad_alloc" in str(exc)


def _message(exc: BaseException) -> str:
    """The exception's message (TensorFlow's carry a long traceback of graph nodes after the first lines)."""
    text = str(exc).strip() or "(no message)"
    lines = text.splitlines()
    return "\n".join(lines[:6]) + (" ..." if len(lines) > 6 else "")


@contextmanager
def on_path(folder: Path) -> Iterator[None]:
    """`folder` first on sys.path while importing a recipe's modules."""
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)
