"""The tables of the gate: one row per budget, and two bundles' figures side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgepack.summary.figures import budget_value, change_text, compared_value
from edgepack.table import Column, Piece, Span, Table

if TYPE_CHECKING:
    from edgepack.gate.budgets import BudgetResult


def budget_table(results: list[BudgetResult]) -> Table:
    """One row per budget: limit, measured, margin, pass/fail."""
    columns = [Column("budget"), Column("limit", "right"), Column("measured", "right"), Column("margin", "right")]
    table = Table.of("budgets", [*columns, Column("result")])
    for r in results:
        table.add_row(
            r.label,
            budget_value(r.limit, r.unit),
            budget_value(r.measured, r.unit),
            budget_value(r.margin, r.unit, signed=True),
            Span("pass", "good") if r.passed else Span("FAIL", "fail"),
        )
    if not results:
        table.add_row("(no budgets in the recipe)", "", "", "", "")
    return table


def failures(results: list[BudgetResult]) -> list[str]:
    """One line per exceeded budget."""
    from edgepack.gate.junit import describe

    return [describe(r) for r in results if not r.passed]


def compare_table(comparison: Any, title: str | None = None) -> Table:
    """Old, new and the change of every figure two bundles share (`gate.compare.Comparison`); regressions in red."""
    columns = [Column("figure"), Column("old", "right"), Column("new", "right"), Column("change", "right")]
    table = Table.of(title or f"compare {comparison.old} -> {comparison.new}", [*columns, Column("")])
    for c in comparison.changes:
        if c.old is None and c.new is None:
            continue
        flag: Piece = Span("worse", "fail") if c.regression else ("worse, within noise" if c.worse else "")
        if not flag and c.better and c.change:
            flag = Span("better", "good")
        table.add_row(c.name, compared_value(c.old, c.unit), compared_value(c.new, c.unit), change_text(c), flag)
    return table
