"""The validate stage: latency, memory and output parity of the shipped model on each device (never cached).

Every device gets the same inputs (the first test sample, each input in its tensor's type, in the
model's tensor order); every output is compared with the host's: integer outputs must be identical,
float ones equal within a tolerance. The first plain local device is the reference; without one, a
one-invoke run on this machine is. Devices on different machines run at the same time. With a throughput grid
(`[validate] threads` x `batch`), each device that runs LiteRT times every cell; the others say why not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.records import RUN_FIELDS, DeviceRun, Throughput

if TYPE_CHECKING:
    from edgepack.devices.profiles import Device
    from edgepack.pipeline.inputs import RunInputs


def validate(
    inputs: RunInputs, devices: list[Device], samples: Path | None, shipped: Path, litert: Path
) -> dict[str, DeviceRun]:
    """Run the `shipped` model file on each of `devices` with the `samples` (`validation_inputs`); one record
    per device, in their order. `litert` is the shipped model as LiteRT runs it (the parity reference)."""
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers import driver_for, run_device
    from edgepack.devices.profiles import LocalDevice
    from edgepack.validate.parity import parity
    from edgepack.validate.samples import reference_outputs
    from edgepack.validate.schedule import run_all

    recipe, reporter = inputs.recipe, inputs.reporter
    settings = recipe.validation
    grid = recipe.times_throughput
    no_grid = {d.name: driver_for(d.kind).throughput_why(d) for d in devices} if grid else {}

    def measure(device: Device) -> dict[str, Any]:
        reporter.stage("validate", f"on {device.name}")
        threads = device.threads or settings.latency_threads  # a profile's own threads set its latency run's
        cells = settings.grid or ((threads, 1),)  # no lists: the latency run is the budget's one cell
        req = RunRequest(
            shipped,
            samples,
            settings.runs,
            settings.warmup,
            threads,
            recipe.seed,
            work_dir=inputs.root / "validate",
            grid=cells if grid and no_grid[device.name] is None else (),
        )
        return run_device(device, req, reporter, f"validate {device.name}")

    records = run_all(devices, measure)  # different machines at once, one machine's devices in turn
    reference: list[dict[str, Any]] | None = None
    validation: dict[str, DeviceRun] = {}
    for device in devices:
        record = records[device.name]
        outputs = record.pop("outputs")
        tolerance = record.pop("tolerance", None)  # a device that states how far its outputs may be (tflm)
        why = record.pop("parity_why", None)  # a device with no outputs says why (ethos-u: nothing executes)
        if outputs is None:  # a benchmark binary: timings only; an Ethos-U estimate: nothing runs
            check: dict[str, Any] = {"ok": None, "why": why or "not checked: the benchmark binary reports no outputs"}
        elif reference is None and isinstance(device, LocalDevice) and not device.cpus and not device.memory_limit:
            reference = outputs
            check = {"ok": True, "identical": True, "max_abs_diff": 0.0, "reference": True, "outputs": len(outputs)}
        else:
            reference = reference or reference_outputs(recipe.seed, litert, samples)
            check = parity(reference, outputs, tolerance)
            if not check["ok"]:
                reporter.note(f"validate {device.name}: outputs differ from the host's: {check['why']}")
        for own in ("device", "kind", "emulated", "parity", "outputs_sha256"):  # the validation's, not a driver's
            record.pop(own, None)
        grid_record = record.pop("throughput", None)
        throughput = None
        if grid:
            why = no_grid[device.name]
            if why is not None:
                throughput = Throughput((), why)
            else:  # asked for: what the runner gave, and an empty grid (unmeasured, so the budget fails) if none
                throughput = Throughput.from_dict(grid_record) if grid_record else Throughput(())
        order = tuple(record)  # the driver's keys, in its order (the record's dict keeps it)
        known = {name: record.pop(name, None) for name in RUN_FIELDS}
        validation[device.name] = DeviceRun(
            device=device.name,
            kind=device.kind,
            emulated=device.emulated,
            **known,
            parity=check,
            outputs_sha256=None if outputs is None else [o["sha256"] for o in outputs],
            throughput=throughput,
            extra=record,
            keys=("device", "kind", "emulated", *order, "parity", "outputs_sha256", *(("throughput",) * grid)),
        )
    return validation
