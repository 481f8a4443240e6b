"""The device drivers, one module per kind, and their registry: run the runner on a device, probe it.

A kind's module is imported when its driver is first asked for (`driver_for`), so listing commands and
`--help` import none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgepack.errors import BadInputError

if TYPE_CHECKING:
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers.driver import Driver
    from edgepack.devices.profiles import Device
    from edgepack.progress import Reporter

MODULES = {  # kind -> the module whose DRIVER drives it
    "local": "edgepack.devices.drivers.local",
    "ssh": "edgepack.devices.drivers.ssh",
    "adb": "edgepack.devices.drivers.adb",
    "qemu-arm64": "edgepack.devices.drivers.qemu",
    "tflm": "edgepack.devices.drivers.tflm",
    "ethos-u": "edgepack.devices.drivers.ethos_u",
    "mcu": "edgepack.devices.drivers.mcu",  # a board: checked, never run
}


def driver_for(kind: str) -> Driver[Any]:
    """The driver of device kind `kind`; an unknown kind is a bad profile, naming the kinds."""
    try:
        module = MODULES[kind]
    except KeyError:
        raise BadInputError(
            f"no driver for device kind '{kind}'", hint=f"kinds: {', '.join(MODULES)}", code="device-invalid"
        ) from None
    driver: Driver[Any] = importlib.import_module(module).DRIVER
    return driver


def run_device(device: Device, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """The runner's record from `device` (latency, memory, runtime, CPU, outputs), run while holding the lock
    of its machine: another edgepack process on this computer running on the same machine makes it wait."""
    from edgepack.devices.machines import machine_lock

    def waiting(key: str) -> None:
        reporter.note(f"{label}: waiting for {key}: another edgepack process is running on it")

    driver = driver_for(device.kind)
    with machine_lock(device, waiting):
        return driver.run(device, req, reporter, label)


def check_device(device: Device, reporter: Reporter | None = None) -> dict[str, Any]:
    """The runner's probe on `device`: Python, numpy, the runtime and its version, CPU.

    An emulated board's root filesystem is built first when it is not cached yet.
    """
    from edgepack.progress import NullReporter

    return driver_for(device.kind).check(device, reporter or NullReporter())
