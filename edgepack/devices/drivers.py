"""One entry point per action over every device kind: run the runner, probe the device, compare outputs."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from edgepack.devices.base import RunRequest
from edgepack.devices.profiles import Device
from edgepack.errors import BadInputError
from edgepack.progress import NullReporter, Reporter

FLOAT_RTOL = 1e-5
FLOAT_ATOL = 1e-6


_DRIVERS = {  # kind -> (module, its run function, its check function); imported when used
    "local": ("edgepack.devices.local", "run_local", "check_local"),
    "ssh": ("edgepack.devices.ssh", "run_ssh", "check_ssh"),
    "adb": ("edgepack.devices.adb", "run_adb", "check_adb"),
    "qemu-arm64": ("edgepack.devices.qemu", "run_qemu", "check_qemu"),
    "tflm": ("edgepack.devices.tflm", "run_tflm", "check_tflm"),
    "ethos-u": ("edgepack.devices.ethos_u", "run_ethos_u", "check_ethos_u"),
    "mcu": ("edgepack.devices.mcu", "run_mcu", "check_mcu"),  # a board: checked, never run
}


def _driver(kind: str, which: int) -> Any:
    try:
        module, *functions = _DRIVERS[kind]
    except KeyError:
        raise BadInputError(
            f"no driver for device kind '{kind}'", hint=f"kinds: {', '.join(_DRIVERS)}", code="device-invalid"
        ) from None
    return getattr(importlib.import_module(module), functions[which])


def run_device(device: Device, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """The runner's record from `device` (latency, memory, runtime, CPU, outputs)."""
    return _driver(device.kind, 0)(device, req, reporter, label)


def check_device(device: Device, reporter: Reporter | None = None) -> dict[str, Any]:
    """The runner's probe on `device`: Python, numpy, the runtime and its version, CPU.

    An emulated board's root filesystem is built first when it is not cached yet.
    """
    check = _driver(device.kind, 1)
    if device.kind == "qemu-arm64":
        return check(device, reporter or NullReporter())
    return check(device)


def parity(
    reference: list[dict[str, Any]], outputs: list[dict[str, Any]], tolerance: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Compare a device's outputs with the reference run's, every output: integer outputs must be
    identical, float ones equal within rtol 1e-5 / atol 1e-6, unless the device states a tolerance
    (`{"steps": N, "per_output": [absolute, in each output's units]}`: TFLM's one quantization step).
    `outputs` has one entry per output (its index, identical, max_abs_diff, ok); `why` names the
    first that differs."""
    allowed = list((tolerance or {}).get("per_output") or [])
    if len(reference) != len(outputs):
        return {"ok": False, "why": f"{len(outputs)} output(s), the reference has {len(reference)}"}
    rows, why = [], None
    for index, (ref, out) in enumerate(zip(reference, outputs)):
        if ref["shape"] != out["shape"] or ref["dtype"] != out["dtype"]:
            return {
                "ok": False,
                "why": f"output {index}: {out['shape']} {out['dtype']} vs reference {ref['shape']} {ref['dtype']}",
            }
        a = np.asarray(ref["values"], dtype=np.float64)
        b = np.asarray(out["values"], dtype=np.float64)
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        same = ref["sha256"] == out["sha256"]
        slack = allowed[index] if index < len(allowed) else 0.0
        beyond = f", more than the {slack:g} allowed" if slack else ""
        if np.issubdtype(np.dtype(ref["dtype"]), np.integer):
            ok = same or diff <= slack
            problem = f"output {index}: integer outputs differ from the reference (by up to {diff:g}{beyond})"
        else:
            ok = bool(np.allclose(b, a, rtol=FLOAT_RTOL, atol=max(FLOAT_ATOL, slack)))
            problem = (
                f"output {index}: float outputs differ beyond rtol {FLOAT_RTOL:g} / "
                f"atol {max(FLOAT_ATOL, slack):g} (by up to {diff:g})"
            )
        rows.append(
            {
                "output": index,
                "ok": ok,
                "identical": same,
                "max_abs_diff": diff,
                **({"tolerance": slack} if slack else {}),
            }
        )
        if not ok and why is None:
            why = problem
    result: dict[str, Any] = {
        "ok": why is None,
        "identical": all(r["identical"] for r in rows),
        "max_abs_diff": max(r["max_abs_diff"] for r in rows) if rows else 0.0,
        "outputs": rows,
    }
    if tolerance:
        result["tolerance_steps"] = tolerance.get("steps")
    if why is not None:
        result["why"] = why
    return result
