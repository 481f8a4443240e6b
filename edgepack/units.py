"""Byte counts as people read them, shared by the boards' checks and the summary tables (no imports)."""

from __future__ import annotations


def kib(value: int) -> str:
    """Bytes with a KiB figure beside them (boards' datasheets count memory in binary units)."""
    return f"{value:,} B ({value / 1024:g} KiB)" if value % 1024 == 0 else f"{value:,} B ({value / 1024:.1f} KiB)"
