"""`edgepack devices list|check`: the device profiles, and whether a device is ready to validate on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.cli.group import typer_app
from edgepack.table import Span, Table

app = typer_app(help="List device profiles and check that a device is reachable and ready.", no_args_is_help=True)


@app.command("list")
@boundary
def list_cmd() -> None:
    """List the device profiles (./devices first, then the shipped ones)."""
    from edgepack.devices.drivers import driver_for
    from edgepack.devices.profiles import known_devices, load_device, profile_path

    rows = []
    for name in known_devices():
        device = load_device(name)
        rows.append(
            {
                "name": name,
                "kind": device.kind,
                "where": driver_for(device.kind).where(device),
                "description": device.description,
                "path": str(profile_path(name)),
            }
        )
    table = Table.of("devices", ["name", "kind", "where", "description"])
    for row in rows:
        table.add_row(row["name"], row["kind"], row["where"], row["description"])
    output.result(rows, table)


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
    from edgepack.devices.drivers import check_device, driver_for
    from edgepack.devices.profiles import load_device
    from edgepack.errors import EXIT_DEVICE, BadInputError

    device = load_device(name)
    driver = driver_for(device.kind)
    if model is not None:
        if not driver.is_board:
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
    table = Table.of(f"device {name} ({device.kind}, {driver.where(device)})", ["check", "found"])
    for what, found in driver.check_rows(device, probe):
        table.add_row(what, Span("none", "bad") if found is None else found)
    if output.result(probe, table) and probe["runtime"] is None:  # one JSON document: it says runtime null
        raise typer.Exit(EXIT_DEVICE)
    if probe["runtime"] is None:
        raise driver.no_runtime(name)


def _fit(board: Any, model: Path) -> None:
    """Whether `model` fits `board`: a table (or JSON) of flash and RAM with their headroom; exit 3 when not."""
    from edgepack.devices.boards import model_fits
    from edgepack.devices.toolchains.tflm_arena import measure_arena
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
        output.emit_json(
            {"device": board.name, "kind": "mcu", "model": str(model), "flash_basis": basis, **fit.to_dict()}
        )
        if not fit.fits:
            raise typer.Exit(EXIT_BUDGET)  # the JSON document already says what is short
        return
    output.print_table(fit_table(fit, f"{model} ({basis})"))
    if not fit.fits:
        short = {"flash": fit.flash_headroom, "ram": fit.ram_headroom}
        raise BudgetExceeded(
            f"{model.name} does not fit {fit.board_name}: "
            + " and ".join(
                f"{what} short by {-room:,} B" if room is not None else f"{what} not measured"
                for what, room in short.items()
                if room is None or room < 0
            ),
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
