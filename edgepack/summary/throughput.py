"""The throughput grid's tables: per device, every threads x batch cell (an invoke, per inference, inferences
per second), the best named; the devices that time no grid, with why."""

from __future__ import annotations

from edgepack.records import DeviceRun, Throughput
from edgepack.table import Column, Span, Table

COLUMNS = [
    Column("threads", "right"),
    Column("batch", "right"),
    Column("invoke (mean)", "right"),
    Column("per inference", "right"),
    Column("inferences/s", "right"),
    Column("note"),
]


def throughput_tables(validation: dict[str, DeviceRun]) -> list[Table]:
    """A table per device that timed the grid; one more listing the devices that did not, with why."""
    tables = []
    untimed = Table.of("throughput grid not timed", ["device", "why"])
    for name, rec in validation.items():
        grid = rec.throughput
        if grid is None:
            continue
        if grid.why is not None or not grid.cells:
            untimed.add_row(name, grid.why or "a grid was asked for and its runner gave none (an older runner?)")
            continue
        tables.append(grid_table(name, grid, rec.emulated))
    if untimed.rows:
        tables.append(untimed)
    return tables


def grid_table(device: str, grid: Throughput, emulated: bool) -> Table:
    """One device's grid, the best cell marked (its title names it)."""
    best = grid.best
    title = f"throughput on {device}" + (" (emulated: the emulator's figures)" if emulated else "")
    if best is not None:
        title += f": best {best.threads} thread(s), batch {best.batch}, {best.ips:,.0f} inferences/s"
    else:
        title += ": no cell ran"
    table = Table.of(title, COLUMNS)
    for cell in grid.cells:
        if cell.latency_ms is None or cell.ips is None or cell.per_inference_ms is None:
            table.add_row(str(cell.threads), str(cell.batch), "-", "-", "-", Span(cell.error or "not timed", "warn"))
            continue
        is_best = cell is best
        table.add_row(
            str(cell.threads),
            str(cell.batch),
            f"{mean:.3f} ms" if isinstance(mean := cell.latency_ms.get("mean"), int | float) else "-",
            f"{cell.per_inference_ms:.4f} ms",
            Span(f"{cell.ips:,.0f}", "best") if is_best else f"{cell.ips:,.0f}",
            Span("best", "best") if is_best else "",
        )
    return table
