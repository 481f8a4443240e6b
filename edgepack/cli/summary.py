"""Tables people read at the end of a command: results per stage and the budget report."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from edgepack.gate.budgets import BudgetResult
from edgepack.gate.junit import describe


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals."""
    return "-" if value is None else f"{100 * value:.2f} %"


def size(value: int) -> str:
    """Bytes with a KB figure beside them."""
    return f"{value:,} B ({value / 1000:.1f} KB)"


def results_table(evaluate: dict[str, Any], convert: dict[str, Any], optimize: dict[str, Any],
                  validation: dict[str, dict[str, Any]]) -> Table:
    """Accuracy float vs optimized vs .tflite, size, latency per device."""
    table = Table(title="edgepack results", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    mode = convert["mode"]
    table.add_row("accuracy, float (Keras)", pct(evaluate["float"]))
    for stage in optimize.get("stages", []):
        table.add_row(f"accuracy after {stage['kind']} (Keras)", pct(stage["test_accuracy"]))
    table.add_row(f"accuracy, {mode} .tflite (LiteRT)", pct(evaluate["tflite"]))
    table.add_row(f"accuracy drop, float -> {mode}", f"{100 * evaluate['drop']:+.2f} points")
    for stage in optimize.get("stages", []):
        if "sparsity" in stage:
            values = stage["sparsity"].values()
            table.add_row("kernel sparsity after prune", f"{min(values):.2f} - {max(values):.2f}")
    table.add_row(f"model size ({mode}, {convert['io']} I/O)", size(convert["size_bytes"]))
    for name, rec in validation.items():
        lat = rec["latency_ms"]
        table.add_row(f"latency on {name} p50 / p90 / p99",
                      f"{lat['p50']:.3f} / {lat['p90']:.3f} / {lat['p99']:.3f} ms")
        table.add_row(f"peak RSS on {name}", f"{rec['peak_rss_kb'] / 1024:.1f} MiB")
    return table


def budget_table(results: list[BudgetResult]) -> Table:
    """One row per budget: limit, measured, margin, pass/fail."""
    table = Table(title="budgets", title_justify="left")
    for column, justify in (("budget", "left"), ("limit", "right"), ("measured", "right"),
                            ("margin", "right"), ("result", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(r.name, _value(r.limit, r.unit), _value(r.measured, r.unit),
                      _value(r.margin, r.unit, signed=True),
                      "[green]pass[/]" if r.passed else "[bold red]FAIL[/]")
    if not results:
        table.add_row("(no budgets in the recipe)", "", "", "", "")
    return table


def failures(results: list[BudgetResult]) -> list[str]:
    """One line per exceeded budget."""
    return [describe(r) for r in results if not r.passed]


def _value(value: float | None, unit: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{100 * value:+.2f} pts" if signed else f"{100 * value:.2f} %"
    if unit == "bytes":
        return f"{value:+,.0f} B" if signed else f"{value:,.0f} B"
    return f"{value:+.3f} {unit}" if signed else f"{value:.3f} {unit}"
