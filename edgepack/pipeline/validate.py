"""Validation on devices: latency, memory and output parity of the shipped model (never cached).

Every device gets the same inputs (the first test sample, each input in its tensor's type, in the
model's tensor order); every output is compared with the host's: integer outputs must be identical,
float ones equal within a tolerance. The first plain local device is the reference; without one, a
one-invoke run on this machine is. Devices on different machines run at the same time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.errors import BadInputError
from edgepack.fsutil import atomic_write_bytes
from edgepack.progress import NullReporter

if TYPE_CHECKING:
    from collections.abc import Callable

    from edgepack.devices.profiles import Device
    from edgepack.pipeline.inputs import RunInputs
    from edgepack.recipe.schema import Recipe


def validate(
    inputs: RunInputs, devices: list[Device], samples: Path | None, shipped: Path, litert: Path
) -> dict[str, dict[str, Any]]:
    """Run the `shipped` model file on each of `devices` with the `samples` (`validation_inputs`); one record
    per device, in their order. `litert` is the shipped model as LiteRT runs it (the parity reference)."""
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers import run_device
    from edgepack.devices.parity import parity
    from edgepack.devices.profiles import LocalDevice
    from edgepack.devices.schedule import run_all

    recipe, reporter = inputs.recipe, inputs.reporter
    settings = recipe.validation

    def measure(device: Device) -> dict[str, Any]:
        reporter.stage("validate", f"on {device.name}")
        req = RunRequest(
            shipped,
            samples,
            settings.runs,
            settings.warmup,
            device.threads or settings.threads,
            recipe.seed,
            work_dir=inputs.root / "validate",
        )
        return run_device(device, req, reporter, f"validate {device.name}")

    records = run_all(devices, measure)  # different machines at once, one machine's devices in turn
    reference: list[dict[str, Any]] | None = None
    validation: dict[str, dict[str, Any]] = {}
    for device in devices:
        record = records[device.name]
        outputs = record.pop("outputs")
        tolerance = record.pop("tolerance", None)  # a device that states how far its outputs may be (tflm)
        why = record.pop("parity_why", None)  # a device with no outputs says why (ethos-u: nothing executes)
        if outputs is None:  # a benchmark binary: timings only; an Ethos-U estimate: nothing runs
            record["parity"] = {"ok": None, "why": why or "not checked: the benchmark binary reports no outputs"}
            record["outputs_sha256"] = None
        elif reference is None and isinstance(device, LocalDevice) and not device.cpus and not device.memory_limit:
            reference = outputs
            record["parity"] = {
                "ok": True,
                "identical": True,
                "max_abs_diff": 0.0,
                "reference": True,
                "outputs": len(outputs),
            }
        else:
            reference = reference or reference_outputs(recipe.seed, litert, samples)
            record["parity"] = parity(reference, outputs, tolerance)
            if not record["parity"]["ok"]:
                reporter.note(f"validate {device.name}: outputs differ from the host's: {record['parity']['why']}")
        if outputs is not None:
            record["outputs_sha256"] = [o["sha256"] for o in outputs]
        validation[device.name] = {
            "device": device.name,
            "kind": device.kind,
            "emulated": device.emulated,
            **record,
        }
    return validation


def load_devices(recipe: Recipe, names: list[str] | None, compressed: bool) -> list[Any]:
    """The device profiles `names` (default: the recipe's), checked against its budgets (before any stage
    runs: an unknown device or a budget on an emulated one is a recipe mistake; an ethos-u profile's
    latency is Vela's estimate, budgetable as such) and, for a `compressed` (LUT) model, all of kind tflm."""
    from edgepack.devices.boards import load_boards
    from edgepack.devices.drivers import driver_for
    from edgepack.devices.profiles import load_device

    where = "--device" if names is not None else "validation.devices"
    devices = _runnable([load_device(name) for name in (recipe.validation.devices if names is None else names)], where)
    if compressed:  # a compressed model only TFLM runs: any other kind, under any name (run, bundle, validate)
        from edgepack.convert.lut import check_lut

        check_lut(recipe.name, devices)
    if names is not None:
        return devices
    load_boards(recipe.budgets.fits)  # every board of budgets.fits is a board profile
    budget = recipe.budgets.latency_p90_ms
    emulated = sorted(
        d.name
        for d in devices
        if d.emulated and not driver_for(d.kind).estimates and isinstance(budget, dict) and d.name in budget
    )
    if emulated:
        raise BadInputError(
            f"budgets.latency_p90_ms names {', '.join(emulated)}: an emulated device's latency is the "
            "emulator's (tflm: this host's, with reference kernels), not a board's, and is never checked",
            context=f"recipe '{recipe.name}'",
            hint="budget a real device (kind local, ssh or adb), or an ethos-u profile's estimate, instead",
            code="budget-emulated",
        )
    return devices


def _runnable(devices: list[Any], where: str) -> list[Any]:
    """The devices, unless one is a board (kind "mcu"): boards are fitted, not run on."""
    from edgepack.devices.drivers import driver_for

    boards = [d.name for d in devices if driver_for(d.kind).is_board]
    if boards:
        raise BadInputError(
            f'{where} names {", ".join(boards)}: a board (kind "mcu") is not a run target',
            context=where,
            code="device-not-runnable",
            hint=f"check the fit with [budgets] fits = {boards!r} (or `edgepack devices check "
            f'{boards[0]} --model MODEL.tflite`); validate on "tflm" for TFLM\'s arena',
        )
    return devices


def validation_inputs(inputs: RunInputs, converted: Path, input_names: Callable[[], list[str] | None]) -> Path | None:
    """An .npz holding the first test sample of each input in its tensor's type and in the `converted` model's
    tensor order (`input_0`, `input_1`...); None when the model's inputs do not take the recipe's samples (the
    runner then feeds seeded random inputs). `input_names` is asked only for a model of several inputs."""
    import numpy as np

    from edgepack.errors import BadInputError
    from edgepack.litert import input_order, interpreter, to_input

    interp = interpreter(converted)
    arrays = inputs.data.test_inputs
    details = interp.get_input_details()
    try:
        ordered = input_order(interp, input_names() if len(details) > 1 else None, [x.shape[1:] for x in arrays])
    except BadInputError as exc:
        inputs.reporter.note(f"validate: random inputs: {exc.message}")
        return None
    if len(ordered) != len(arrays) or any(tuple(d["shape"][1:]) != tuple(x.shape[1:]) for d, x in zip(ordered, arrays)):
        return None
    path = inputs.root / "validate" / "inputs.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    by_index = {d["index"]: x for d, x in zip(ordered, arrays)}
    samples = {
        f"input_{i}": to_input(by_index[d["index"]][: max(1, int(d["shape"][0]))], d) for i, d in enumerate(details)
    }
    buffer = io.BytesIO()
    np.savez(buffer, **samples)  # type: ignore[arg-type]  # numpy stub: **samples may bind allow_pickle: bool
    atomic_write_bytes(path, buffer.getvalue())
    return path


def reference_outputs(seed: int, litert: Path, samples: Path | None) -> list[dict[str, Any]]:
    """The shipped model's outputs on this machine, one invoke: the parity reference (`litert`: a LUT-compressed
    model's are the uncompressed model's: LiteRT cannot run the compressed one, and the weights are the same)."""
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers.local import run_local
    from edgepack.devices.profiles import LocalDevice

    host = LocalDevice(name="host", kind="local")
    req = RunRequest(litert, samples, 1, 0, 1, seed)
    return list(run_local(host, req, NullReporter(), "validate: host reference")["outputs"])
