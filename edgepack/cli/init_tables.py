"""The tables of `edgepack init`: the normalization candidates measured on the float model, and the first
measurement with the budgets set from it (the records are `edgepack.init`'s; only the CLI shows them)."""

from __future__ import annotations

from typing import Any

from edgepack.table import Column, Piece, Span, Table


def candidates_table(check: Any) -> Table:
    """One row per normalization tried: its mean and std and the float metric under it; the written one marked."""
    columns = ("candidate", "mean", "std", f"float {check.metric}", "")
    caption = f"chance: {check.chance.why}" if check.chance is not None else ""
    table = Table.of(
        f"normalization candidates ({check.why})",
        [Column(c, "right" if c.startswith("float") else "left") for c in columns],
        caption=caption,
    )
    for index, c in enumerate(check.candidates):
        mark: Piece = ""
        if index == check.chosen:
            mark = Span("written, near chance", "fail") if check.at_chance else Span("written", "best")
        table.add_row(c.name, _short(c.mean), _short(c.std), f"{c.value:.4g}", mark)
    return table


def _short(value: float | list[float]) -> str:
    if isinstance(value, list):
        shown = ", ".join(f"{v:.4g}" for v in value[:3])
        return f"[{shown}{', ...' if len(value) > 3 else ''}] ({len(value)})"
    return f"{value:.6g}"


def measured_table(measured: Any, budgets: list[Any]) -> Table:
    """The first measurement's figures and the budgets set from them."""
    table = Table.of(f"first measurement ({measured.on})", ["figure", Column("measured", "right")])
    table.add_row("model size (shipped)", f"{measured.size_bytes:,} B")
    if measured.latency_ms:
        figures = " / ".join(f"{measured.latency_ms[k]:.3f}" for k in ("p50", "p90", "p99") if k in measured.latency_ms)
        table.add_row("latency on host p50 / p90 / p99", f"{figures} ms")
    if measured.float_value is not None:
        table.add_row(f"{measured.metric}, float / int8", f"{measured.float_value:.4g} / {measured.tflite_value:.4g}")
    if measured.worst_sqnr_db is not None:
        table.add_row("worst output SQNR, int8 vs float", f"{measured.worst_sqnr_db:.2f} dB")
    for budget in budgets:
        table.add_row(f"budget {budget.key}", "not set (see the recipe)" if budget.unset else budget.toml)
    return table
