"""One array of an `.npz` as `edgepack init` sees it: the record the data reading and the task guess share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Array:
    """One array of an `.npz`: its shape, dtype and value range."""

    key: str
    shape: tuple[int, ...]
    dtype: str
    low: float | None  # None: not numbers
    high: float | None
    integer: bool
    binary: bool  # one value per sample, every value 0 or 1

    @property
    def text(self) -> str:
        """`'images' uint8 (200, 8, 8)`."""
        return f"'{self.key}' {self.dtype} {self.shape}"
