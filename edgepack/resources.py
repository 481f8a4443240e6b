"""Where the shipped data lives: `recipes/`, `devices/`, `datasets/` in a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The shipped folder `name` (`recipes`, `devices`, `datasets`).

    A checkout (or an editable install) has it beside the package; a wheel carries it inside
    the package as `_data/NAME`.
    """
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_data" / name):
        if candidate.is_dir():
            return candidate
    return _PACKAGE.parent / name
