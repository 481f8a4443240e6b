"""What every recipe section shares: the strict base model, the optimizer names, sizes as written."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2}


class Strict(BaseModel):
    """Base of every recipe section: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


Optimizer = Literal["adam", "sgd", "rmsprop"]


def parse_size(value: int | str) -> int:
    """Parse `12345`, `"80 KB"` (1000 B) or `"64 KiB"` (1024 B) into bytes."""
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a size must be > 0 bytes")
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a size; use bytes (an integer) or e.g. '80 KB', '64 KiB', '2 MB'")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError("a size must be > 0 bytes")
    return size


def _checked_size(value: int | str) -> int | str:
    parse_size(value)
    return value


Size = Annotated[int | str, AfterValidator(_checked_size)]
"""A size as written in a file: bytes, or "80 KB" / "64 KiB"; read it with `parse_size`."""
