"""TFLM's measured tensor arena: the arena a board's RAM must hold for a model, from TFLM's own interpreter.

The tflm driver runs the model once (its ops checked first) in the TFLM runner, which bisects the smallest
arena that allocates and invokes; `require_tflm` says, before anything trains, when tflite-micro is missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgepack.devices.profiles import TflmDevice
from edgepack.errors import BadInputError
from edgepack.progress import NullReporter, Reporter


@dataclass(frozen=True)
class Arena:
    """The tensor arena TFLM's interpreter needed for a model: the smallest multiple of 16 bytes with which
    it allocates and invokes, and the recording allocator's split."""

    need: int
    non_persistent: int | None
    persistent: int | None
    runtime: str  # "tflite-micro VERSION"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_arena(model: Path, reporter: Reporter | None = None, label: str = "tflm arena") -> Arena:
    """TFLM's measured arena for `model` (its ops checked first); raises the tflm driver's errors (no
    tflite-micro: DeviceUnreachable; an op TFLM lacks: ModelError)."""
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers.tflm import run_tflm

    record = run_tflm(tflm_profile(), RunRequest(model, None, 0, 0, 1), reporter or NullReporter(), label)
    arena = record["arena"]
    return Arena(
        arena["bytes"],
        arena.get("non_persistent"),
        arena.get("persistent"),
        f"{record['runtime']['name']} {record['runtime']['version']}",
    )


def tflm_profile() -> TflmDevice:
    """The `tflm` profile (a project's own `devices/tflm.toml` first: its max_arena, its timeout), else the
    defaults."""
    from edgepack.devices.profiles import load_device

    try:
        device = load_device("tflm")
    except BadInputError:
        device = None
    return device if isinstance(device, TflmDevice) else TflmDevice(name="tflm", kind="tflm")


def require_tflm(context: str) -> None:
    """tflite-micro must work here to measure an arena: else exit 4 with how to install it (said before
    anything trains, not as a budget that fails). The TFLM runner's own probe answers (an import that
    fails is as missing as no package)."""
    from edgepack.devices.drivers.tflm import INSTALL_HINT, check_tflm
    from edgepack.errors import DeviceUnreachable

    try:
        check_tflm(tflm_profile())
    except DeviceUnreachable as exc:
        if exc.code != "device-no-runtime":  # a probe that timed out says so itself
            raise
        raise DeviceUnreachable(
            f"{context}: tflite-micro, which measures the arena a board's RAM must hold, is not installed",
            context=exc.context,
            hint=INSTALL_HINT,
            code="device-no-runtime",
        ) from exc
