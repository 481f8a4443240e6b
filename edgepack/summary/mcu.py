"""The microcontroller tables: where activation memory peaks, the TFLM arena, how each board holds the
model (flash and RAM with their headroom), and Vela's estimate per Ethos-U device."""

from __future__ import annotations

from typing import Any

from edgepack.records import DeviceRun, Fit
from edgepack.summary.figures import arena_text
from edgepack.table import Column, Piece, Span, Table
from edgepack.units import kib

__all__ = ["arena_text", "ethos_u_table", "fit_table", "kib", "memory_table"]

MEMORY_COLUMNS = [Column("what"), Column("bytes", "right"), Column("detail")]


def ethos_u_table(validation: dict[str, DeviceRun]) -> Table | None:
    """Vela's estimate per Ethos-U device (a column each): inference time at the clock, operators on the NPU
    and the CPU (those named), SRAM, flash, MACs."""
    estimates = {name: rec.estimate for name, rec in validation.items() if rec.estimate}
    if not estimates:
        return None
    table = Table.of(
        "Ethos-U estimates (Vela; nothing was run)", ["estimate", *(Column(name, "right") for name in estimates)]
    )
    rows: dict[str, list[str]] = {}
    for est in estimates.values():
        memory, ips = est["memory_bytes"], est.get("inferences_per_second")
        for label, text in (
            ("configuration", f"{est['accelerator']}, {est['system_config']}, {est['memory_mode']}"),
            ("clock, Vela", f"{est['clock_mhz']:g} MHz, Vela {est['vela_version']}"),
            ("inference (estimated)", f"{est['inference_ms']:.4f} ms" + (f" ({ips:,.0f}/s)" if ips else "")),
            ("operators NPU / CPU", f"{est['npu_ops']} / {est['cpu_ops']}"),
            ("CPU fallback", ", ".join(op["op"] for op in est["cpu_fallback"]) or "none"),
            ("SRAM used", f"{memory['sram']:,} B"),
            ("flash used off-chip / on-chip", f"{memory['off_chip_flash']:,} B / {memory['on_chip_flash']:,} B"),
            ("DRAM used", f"{memory['dram']:,} B"),
            ("MACs, cycles", f"{est['macs']:,}, {est['cycles']['total']:,}"),
        ):
            rows.setdefault(label, []).append(text)
    for label, texts in rows.items():
        table.add_row(label, *texts)
    return table


def memory_table(memory: dict[str, Any], fits: dict[str, Fit]) -> Table:
    """Where activation memory peaks (the op, its layer, the largest tensors live there), the arena TFLM
    measured, and each board of `budgets.fits` with the headroom of its flash and RAM."""
    table = Table.of("memory", MEMORY_COLUMNS)
    where = f"at op {memory['peak_op_index']} {memory['peak_op']}" if memory.get("peak_op") else "before any op"
    table.add_row(
        "activation peak",
        f"{memory['activation_peak_bytes']:,}",
        f"{where}"
        + (f", layer {memory['peak_layer']}" if memory.get("peak_layer") else "")
        + f"; {memory['live_tensors']} tensor(s) live",
    )
    for tensor in memory["largest_tensors"]:
        made = (
            f"written by op {tensor['producer']} {tensor['producer_op']}"
            if tensor.get("producer") is not None
            else "a model input"
        )
        table.add_row(
            f"  {tensor.get('layer') or tensor['name']}",
            f"{tensor['bytes']:,}",
            f"{tensor['dtype']} {tensor['shape']}, {made}",
        )
    arena = memory.get("arena")
    if arena and arena["how"] == "measured":
        split = (
            f"{arena['non_persistent']:,} planned + {arena['persistent']:,} persistent, "
            if arena.get("non_persistent") is not None and arena.get("persistent") is not None
            else ""
        )
        table.add_row("TFLM arena (measured)", f"{arena['need']:,}", f"{split}{arena['runtime']}")
    elif arena:
        table.add_row("TFLM arena", "-", f"not measured: {arena['why']}")
    for fit in fits.values():
        for row in _fit_rows(fit):
            table.add_row(*row)
    return table


def fit_table(fit: Fit, model: str) -> Table:
    """One board against one model: flash and RAM, what each holds, the headroom."""
    table = Table.of(f"{model} on {fit.title}", MEMORY_COLUMNS)
    for row in _fit_rows(fit):
        table.add_row(*row)
    return table


def _headroom(value: int | None) -> Span:
    if value is None:
        return Span("not measured", "fail")
    return Span(f"{value:+,} headroom", "good") if value >= 0 else Span(f"{value:+,} short", "fail")


def _fit_rows(fit: Fit) -> list[tuple[str, str, list[Piece]]]:
    board = fit.board
    rows: list[tuple[str, str, list[Piece]]] = [
        (
            f"{board} flash",
            f"{fit.flash_need:,} of {fit.flash_bytes:,}",
            [
                _headroom(fit.flash_headroom),
                f": model {fit.model_bytes:,} + firmware allowance {fit.runtime_flash_bytes:,}",
            ],
        )
    ]
    if fit.ram_need is None:
        rows.append((f"{board} RAM", f"? of {fit.ram_bytes:,}", [_headroom(None), f": {fit.arena_why}"]))
    else:
        rows.append(
            (
                f"{board} RAM",
                f"{fit.ram_need:,} of {fit.ram_bytes:,}",
                [
                    _headroom(fit.ram_headroom),
                    f": arena {fit.arena_bytes:,} + I/O buffers {fit.io_bytes:,} + RAM allowance "
                    f"{fit.runtime_ram_bytes:,}",
                ],
            )
        )
    return rows
