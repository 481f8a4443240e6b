"""The mcu driver: a board is checked (its figures, and whether TFLM, which measures a fit's arena, is here),
never run; whether a model fits it is `devices/boards.py`."""

from __future__ import annotations

from typing import Any

from edgepack.devices.drivers.driver import Driver, Row, RunnerDriver, python_row
from edgepack.devices.profiles import McuDevice, TflmDevice
from edgepack.errors import BadInputError, EdgepackError
from edgepack.progress import Reporter


def run_mcu(device: McuDevice, req: Any, reporter: Reporter, label: str) -> dict[str, Any]:
    """A board is not a run target: say where it belongs."""
    raise BadInputError(
        f"{label}: '{device.name}' is a board (kind \"mcu\"), which edgepack does not run on",
        context=f"device '{device.name}'",
        code="device-not-runnable",
        hint=f'check the fit with [budgets] fits = ["{device.name}"] or `edgepack devices check '
        f'{device.name} --model MODEL.tflite`; validate on "tflm" for TFLM\'s outputs and arena',
    )


def check_mcu(device: McuDevice) -> dict[str, Any]:
    """The board's figures and whether TFLM (which measures the arena of a fit) is installed here."""
    from edgepack.devices.drivers.tflm import check_tflm
    from edgepack.errors import DeviceUnreachable

    try:
        probe = check_tflm(TflmDevice(name="tflm", kind="tflm"))
    except DeviceUnreachable:
        probe = {"runtime": None}
    return {
        **probe,
        "board": device.board,
        "core": device.core,
        "clock_mhz": device.clock_mhz,
        "flash_bytes": device.flash_bytes,
        "ram_bytes": device.ram_bytes,
        "npu": device.npu,
        "runtime_flash_bytes": device.runtime_flash_bytes,
        "runtime_ram_bytes": device.runtime_ram_bytes,
    }


class McuDriver(RunnerDriver[McuDevice]):
    """A board: its figures, and whether TFLM (which measures a fit's arena) is installed here."""

    kind = "mcu"
    is_board = True
    runtime_label = "arena measured by"

    def run(self, device: McuDevice, req: Any, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_mcu(device, req, reporter, label)

    def throughput_why(self, device: McuDevice) -> str | None:
        return "a board is fitted, never run"

    def check(self, device: McuDevice, reporter: Reporter) -> dict[str, Any]:
        return check_mcu(device)

    def where(self, device: McuDevice) -> str:
        return f"a board: {device.core}, {device.clock_mhz:g} MHz"

    def reached(self, device: McuDevice) -> str:
        return "a board (nothing runs)"

    def leading_rows(self, device: McuDevice, probe: dict[str, Any]) -> list[Row]:
        from edgepack.units import kib

        npu = f", NPU {probe['npu']}" if probe.get("npu") else ""
        return [
            ("board", probe["board"]),
            ("core / clock", f"{probe['core']} at {probe['clock_mhz']:g} MHz{npu}"),
            ("flash", f"{kib(probe['flash_bytes'])}, {kib(probe['runtime_flash_bytes'])} of it for the firmware"),
            (
                "RAM",
                f"{kib(probe['ram_bytes'])}, {kib(probe['runtime_ram_bytes'])} of it for stack, heap and the application",
            ),
        ]

    def detail_rows(self, device: McuDevice, probe: dict[str, Any]) -> list[Row]:
        return [python_row(probe)]  # nothing runs on this machine's CPU for a board

    def no_runtime(self, name: str) -> EdgepackError:
        from edgepack.devices.drivers.tflm import INSTALL_HINT
        from edgepack.errors import DeviceUnreachable

        return DeviceUnreachable(
            f"device '{name}': tflite-micro, which measures a model's arena for the board, is not installed",
            code="device-no-runtime",
            hint=INSTALL_HINT,
        )


DRIVER: Driver[McuDevice] = McuDriver()  # checked against the protocol
