"""The microcontroller tables: where activation memory peaks, the TFLM arena, how each board holds the
model (flash and RAM with their headroom), and Vela's estimate per Ethos-U device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


def kib(value: int) -> str:
    """Bytes with a KiB figure beside them (boards' datasheets count memory in binary units)."""
    return f"{value:,} B ({value / 1024:g} KiB)" if value % 1024 == 0 else f"{value:,} B ({value / 1024:.1f} KiB)"


def ethos_u_table(validation: dict[str, dict[str, Any]]) -> Table | None:
    """Vela's estimate per Ethos-U device (a column each): inference time at the clock, operators on the NPU
    and the CPU (those named), SRAM, flash, MACs."""
    from rich.table import Table

    estimates = {name: rec["estimate"] for name, rec in validation.items() if rec.get("estimate")}
    if not estimates:
        return None
    table = Table(title="Ethos-U estimates (Vela; nothing was run)", title_justify="left")
    table.add_column("estimate")
    for name in estimates:
        table.add_column(name, justify="right")
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


def arena_text(arena: dict[str, Any]) -> str:
    """The measured TFLM arena and its split, as one line."""
    split = (
        f" ({arena['non_persistent']:,} B planned buffers + {arena['persistent']:,} B persistent)"
        if arena.get("non_persistent") is not None and arena.get("persistent") is not None
        else ""
    )
    return f"{arena['bytes']:,} B{split}"


def memory_table(memory: dict[str, Any], fits: dict[str, dict[str, Any]]) -> Table:
    """Where activation memory peaks (the op, its layer, the largest tensors live there), the arena TFLM
    measured, and each board of `budgets.fits` with the headroom of its flash and RAM."""
    from rich.table import Table

    table = Table(title="memory", title_justify="left")
    table.add_column("what")
    table.add_column("bytes", justify="right")
    table.add_column("detail")
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


def fit_table(fit: dict[str, Any], model: str) -> Table:
    """One board against one model: flash and RAM, what each holds, the headroom."""
    from rich.table import Table

    table = Table(
        title=f"{model} on {fit['board_name']} ({fit['core']}, {fit['clock_mhz']:g} MHz)", title_justify="left"
    )
    table.add_column("what")
    table.add_column("bytes", justify="right")
    table.add_column("detail")
    for row in _fit_rows(fit):
        table.add_row(*row)
    return table


def _fit_rows(fit: dict[str, Any]) -> list[tuple[str, str, str]]:
    def headroom(value: int | None) -> str:
        if value is None:
            return "[bold red]not measured[/]"
        return f"[green]{value:+,} headroom[/]" if value >= 0 else f"[bold red]{value:+,} short[/]"

    board = fit["board"]
    rows = [
        (
            f"{board} flash",
            f"{fit['flash_need']:,} of {fit['flash_bytes']:,}",
            f"{headroom(fit['flash_headroom'])}: model {fit['model_bytes']:,} + firmware allowance "
            f"{fit['runtime_flash_bytes']:,}",
        )
    ]
    if fit["ram_need"] is None:
        rows.append((f"{board} RAM", f"? of {fit['ram_bytes']:,}", f"{headroom(None)}: {fit['arena_why']}"))
    else:
        rows.append(
            (
                f"{board} RAM",
                f"{fit['ram_need']:,} of {fit['ram_bytes']:,}",
                f"{headroom(fit['ram_headroom'])}: arena {fit['arena_bytes']:,} + I/O buffers "
                f"{fit['io_bytes']:,} + RAM allowance {fit['runtime_ram_bytes']:,}",
            )
        )
    return rows
