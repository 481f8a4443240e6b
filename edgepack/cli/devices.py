"""`edgepack devices list|check`: the device profiles, and whether a device is ready to validate on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.cli.group import typer_app

if TYPE_CHECKING:
    from rich.table import Table

    from edgepack.devices.profiles import Device

app = typer_app(help="List device profiles and check that a device is reachable and ready.", no_args_is_help=True)


def _where(device: Device) -> str:
    if device.kind == "ssh":
        return f"{device.user + '@' if device.user else ''}{device.host}:{device.port}"
    if device.kind == "adb":
        return device.serial or "(the one attached)"
    if device.kind == "qemu-arm64":
        return f"qemu-aarch64 -cpu {device.cpu}"
    if device.kind == "ethos-u":
        return f"Vela estimate: {device.accelerator}, {device.system_config}"
    if device.kind == "mcu":
        return f"a board: {device.core}, {device.clock_mhz:g} MHz"
    cpus = device.cpus if device.kind == "local" else None
    return "this machine" + (f", CPUs {cpus}" if cpus else "")


@app.command("list")
@boundary
def list_cmd() -> None:
    """List the device profiles (./devices first, then the shipped ones)."""
    from rich.table import Table

    from edgepack.devices.profiles import known_devices, load_device, profile_path

    rows = []
    for name in known_devices():
        device = load_device(name)
        rows.append(
            {
                "name": name,
                "kind": device.kind,
                "where": _where(device),
                "description": device.description,
                "path": str(profile_path(name)),
            }
        )
    if output.state.json:
        output.emit_json(rows)
        return
    table = Table(title="devices", title_justify="left")
    for column in ("name", "kind", "where", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["kind"], row["where"], row["description"])
    output.print_table(table)


@app.command("check")
@boundary
def check(
    name: str = typer.Argument(..., help="A device profile name (see `edgepack devices list`)."),
    model: Path = typer.Option(
        None,
        "--model",
        "-m",
        help="A board (kind mcu): does this .tflite fit it? "
        "Flash and RAM with their headroom; exit 3 when it does not fit.",
    ),
) -> None:
    """Reach the device and report its Python, numpy, LiteRT runtime and CPU; exit 4 when it is not ready.
    For a board, its flash, RAM and core, and with --model whether the model fits."""
    from rich.table import Table

    from edgepack.devices.drivers import check_device
    from edgepack.devices.profiles import load_device
    from edgepack.errors import EXIT_DEVICE, BadInputError, DeviceUnreachable

    device = load_device(name)
    if model is not None:
        if device.kind != "mcu":
            raise BadInputError(
                f"--model is for boards (kind \"mcu\"); '{name}' is a {device.kind} device",
                code="device-not-a-board",
                hint=f"validate the model there: edgepack validate --model {model} --device {name}",
            )
        _fit(device, model)
        return
    start = time.perf_counter()
    probe = check_device(device, output.reporter())
    probe = {
        "device": name,
        "kind": device.kind,
        "emulated": device.emulated,
        "seconds": round(time.perf_counter() - start, 3),
        **probe,
    }
    if output.state.json:
        output.emit_json(probe)
        if probe["runtime"] is None:  # one JSON document: it says runtime null
            raise typer.Exit(EXIT_DEVICE)
    else:
        table = Table(title=f"device {name} ({device.kind}, {_where(device)})", title_justify="left")
        table.add_column("check")
        table.add_column("found")
        runtime = probe["runtime"]
        image = probe.get("image")
        if image:
            table.add_row(
                "root filesystem",
                f"{image['path']} ("
                + ("cached" if image["cached"] else f"built now in {image['seconds']:.0f} s")
                + f"; Debian {image['suite']}, "
                f"ai-edge-litert {image['litert_version']})",
            )
        if device.kind == "mcu":
            _board_rows(table, probe)
        table.add_row(
            "estimate (nothing runs)"
            if device.kind == "ethos-u"
            else "a board (nothing runs)"
            if device.kind == "mcu"
            else "emulated"
            if device.emulated
            else "reachable",
            f"yes ({probe['seconds']:.2f} s)",
        )
        table.add_row(
            "LiteRT runtime"
            if device.kind not in ("tflm", "ethos-u", "mcu")
            else "compiler"
            if device.kind == "ethos-u"
            else "arena measured by"
            if device.kind == "mcu"
            else "runtime",
            f"{runtime['name']} {runtime['version']}" if runtime else "[red]none[/]",
        )
        if device.kind == "ethos-u":
            clock = f", {probe['clock_mhz']:g} MHz (clock_mhz)" if probe.get("clock_mhz") else ""
            table.add_row(
                "configuration", f"{probe['accelerator']}, {probe['system_config']}, {probe['memory_mode']}{clock}"
            )
            table.add_row("Python", probe["python"])
        elif probe.get("python"):
            table.add_row("Python / numpy", f"{probe['python']} / {probe['numpy']}")
        else:
            table.add_row("Python / numpy", "not needed (benchmark binary)")
        usable = f", {probe['cpus']} usable" if probe.get("cpus") else ""
        if device.kind not in ("ethos-u", "mcu"):  # nothing runs on this machine's CPU for an estimate or a board
            table.add_row("CPU", f"{probe['cpu']} ({probe['machine']}{usable})")
        output.print_table(table)
    if probe["runtime"] is None and device.kind == "mcu":
        from edgepack.devices.tflm import INSTALL_HINT

        raise DeviceUnreachable(
            f"device '{name}': tflite-micro, which measures a model's arena for the board, is not installed",
            code="device-no-runtime",
            hint=INSTALL_HINT,
        )
    if probe["runtime"] is None:
        raise DeviceUnreachable(
            f"device '{name}': no LiteRT runtime",
            code="device-no-runtime",
            hint="install one there: pip install ai-edge-litert (or tflite-runtime on older boards)",
        )


def _board_rows(table: Table, probe: dict[str, Any]) -> None:
    from edgepack.summary.figures import kib

    table.add_row("board", probe["board"])
    table.add_row(
        "core / clock",
        f"{probe['core']} at {probe['clock_mhz']:g} MHz" + (f", NPU {probe['npu']}" if probe.get("npu") else ""),
    )
    table.add_row("flash", f"{kib(probe['flash_bytes'])}, {kib(probe['runtime_flash_bytes'])} of it for the firmware")
    table.add_row(
        "RAM", f"{kib(probe['ram_bytes'])}, {kib(probe['runtime_ram_bytes'])} of it for stack, heap and the application"
    )


def _fit(board: Any, model: Path) -> None:
    """Whether `model` fits `board`: a table (or JSON) of flash and RAM with their headroom; exit 3 when not."""
    from edgepack.devices.mcu import measure_arena, model_fits
    from edgepack.errors import EXIT_BUDGET, BadInputError, BudgetExceeded
    from edgepack.summary.mcu import fit_table

    try:
        data = model.read_bytes()
    except OSError as exc:
        raise BadInputError(
            f"{model}: cannot be read: {exc.strerror or exc}", code="model-unreadable", hint="give a .tflite file"
        ) from exc
    arena = measure_arena(model, output.reporter(), f"{board.name}: arena in TFLM")  # errors say why (exit 2, 4)
    flash, basis = _flash_bytes(model, data)
    fit = model_fits([board.name], data, arena, flash_bytes=flash)[board.name]
    if output.state.json:
        output.emit_json({"device": board.name, "kind": "mcu", "model": str(model), "flash_basis": basis, **fit})
        if not fit["fits"]:
            raise typer.Exit(EXIT_BUDGET)  # the JSON document already says what is short
        return
    output.print_table(fit_table(fit, f"{model} ({basis})"))
    if not fit["fits"]:
        short = [what for what in ("flash", "ram") if fit[f"{what}_headroom"] < 0]
        raise BudgetExceeded(
            f"{model.name} does not fit {fit['board_name']}: "
            + " and ".join(f"{what} short by {-fit[f'{what}_headroom']:,} B" for what in short),
            context=f"device '{board.name}'",
            code="does-not-fit",
            hint="shrink the model (int8, pruning, a smaller input) or pick a larger board; "
            "the peak layer is in `edgepack inspect MODEL.tflite`",
        )


def _flash_bytes(model: Path, data: bytes) -> tuple[int, str]:
    """What of `model` goes to flash: the converted model the c-array embeds (its size from the bundle's
    manifest beside it, when that lists this very file), else the file as given (with any metadata)."""
    import hashlib
    import json

    from edgepack.bundle.manifest import flash_size

    try:
        manifest = json.loads((model.parent / "manifest.json").read_text(encoding="utf-8"))
        listed = manifest["model"]
        if listed["sha256"] == hashlib.sha256(data).hexdigest() and flash_size(manifest):
            what = "LUT-compressed model" if manifest.get("compression") else "converted model"
            return int(flash_size(manifest) or 0), f"flash: the {what}, as the bundle's c-array embeds it"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return len(data), "flash: the file as given, its TFLite metadata included"
