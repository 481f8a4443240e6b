"""What a device kind's driver does, and the defaults of a device that runs the LiteRT runner.

A driver runs the model on its kind of device (`run`), probes the device (`check`), says where the device
is (`where`) and what `edgepack devices check` shows of its probe (`check_rows`); `is_board` and `estimates`
say what the kind's records are (a board is fitted, never run; an estimate is a compiler's, nothing executes),
`runs_compressed` whether it runs a LUT-compressed model and `throughput_why` why a device does not time
the throughput grid (None: it does, in the LiteRT runner).
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from edgepack.devices.base import RunRequest
from edgepack.devices.profiles import Device
from edgepack.errors import DeviceUnreachable, EdgepackError
from edgepack.progress import Reporter

DeviceT = TypeVar("DeviceT", bound=Device)
DeviceT_contra = TypeVar("DeviceT_contra", contravariant=True)
Row = tuple[str, str | None]  # (what, found); None: nothing found (shown as "none")


class Driver(Protocol[DeviceT_contra]):
    """One device kind's driver."""

    kind: str
    is_board: bool  # a board (mcu): fitted against a model (`devices/boards.py`), never run
    estimates: bool  # nothing executes: the record is a compiler's estimate (ethos-u: Vela's); no outputs
    runs_compressed: bool  # runs a LUT-compressed model (convert.compression = "lut"): TFLM only

    def run(self, device: DeviceT_contra, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        """The runner's record from `device` (latency, memory, runtime, CPU, outputs)."""
        ...

    def check(self, device: DeviceT_contra, reporter: Reporter) -> dict[str, Any]:
        """The device's probe: its runtime and version (None: none), Python, numpy, CPU, the kind's own."""
        ...

    def where(self, device: DeviceT_contra) -> str:
        """Where the device is, in a few words (`edgepack devices list`)."""
        ...

    def check_rows(self, device: DeviceT_contra, probe: dict[str, Any]) -> list[Row]:
        """The rows `edgepack devices check` shows of `probe` (with its `seconds`), in order."""
        ...

    def no_runtime(self, name: str) -> EdgepackError:
        """The error for a probe that found no runtime on device `name`."""
        ...

    def throughput_why(self, device: DeviceT_contra) -> str | None:
        """Why `device` does not time `[validate]`'s throughput grid (threads x batch), or None when it does."""
        ...


class RunnerDriver(Generic[DeviceT]):
    """The defaults of a device the LiteRT runner runs on (local, ssh, adb, qemu-arm64), for the others to
    override: this machine, reachable (or emulated), the LiteRT runtime, Python and numpy, the CPU."""

    kind = ""
    is_board = False
    estimates = False
    runs_compressed = False
    runtime_label = "LiteRT runtime"

    def where(self, device: DeviceT) -> str:
        return "this machine"

    def reached(self, device: DeviceT) -> str:
        """What the probe's answer shows: the device was reached (or emulated here)."""
        return "emulated" if device.emulated else "reachable"

    def check_rows(self, device: DeviceT, probe: dict[str, Any]) -> list[Row]:
        runtime = probe["runtime"]
        return [
            *self.leading_rows(device, probe),
            (self.reached(device), f"yes ({probe['seconds']:.2f} s)"),
            (self.runtime_label, f"{runtime['name']} {runtime['version']}" if runtime else None),
            *self.detail_rows(device, probe),
        ]

    def leading_rows(self, device: DeviceT, probe: dict[str, Any]) -> list[Row]:
        """The kind's rows before the probe's answer."""
        return []

    def detail_rows(self, device: DeviceT, probe: dict[str, Any]) -> list[Row]:
        """The rows after the runtime: Python and numpy, then the CPU the runner ran on."""
        return [python_row(probe), cpu_row(probe)]

    def throughput_why(self, device: DeviceT) -> str | None:
        return None  # the LiteRT runner times every cell

    def no_runtime(self, name: str) -> EdgepackError:
        return DeviceUnreachable(
            f"device '{name}': no LiteRT runtime",
            code="device-no-runtime",
            hint="install one there: pip install ai-edge-litert (or tflite-runtime on older boards)",
        )


def python_row(probe: dict[str, Any]) -> Row:
    if probe.get("python"):
        return ("Python / numpy", f"{probe['python']} / {probe['numpy']}")
    return ("Python / numpy", "not needed (benchmark binary)")


def cpu_row(probe: dict[str, Any]) -> Row:
    usable = f", {probe['cpus']} usable" if probe.get("cpus") else ""
    return ("CPU", f"{probe['cpu']} ({probe['machine']}{usable})")
