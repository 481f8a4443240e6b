"""One entry point per action over every device kind: run the runner, probe the device, compare outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.devices.base import RunRequest
from edgepack.devices.profiles import (
    AdbDevice,
    Device,
    LocalDevice,
    SshDevice,
)
from edgepack.reporting import NullReporter, Reporter

FLOAT_RTOL = 1e-5
FLOAT_ATOL = 1e-6


def run_device(device: Device, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """The runner's record from `device` (latency, memory, runtime, CPU, outputs)."""
    if isinstance(device, LocalDevice):
        from edgepack.devices.local import run_local

        return run_local(device, req, reporter, label)
    if isinstance(device, SshDevice):
        from edgepack.devices.ssh import run_ssh

        return run_ssh(device, req, reporter, label)
    if isinstance(device, AdbDevice):
        from edgepack.devices.adb import run_adb

        return run_adb(device, req, reporter, label)
    from edgepack.devices.qemu import run_qemu

    return run_qemu(device, req, reporter, label)


def check_device(device: Device, reporter: Reporter | None = None) -> dict[str, Any]:
    """The runner's probe on `device`: Python, numpy, the runtime and its version, CPU.

    An emulated board's root filesystem is built first when it is not cached yet.
    """
    if isinstance(device, LocalDevice):
        from edgepack.devices.local import check_local

        return check_local(device)
    if isinstance(device, SshDevice):
        from edgepack.devices.ssh import check_ssh

        return check_ssh(device)
    if isinstance(device, AdbDevice):
        from edgepack.devices.adb import check_adb

        return check_adb(device)
    from edgepack.devices.qemu import check_qemu

    return check_qemu(device, reporter or NullReporter())


def parity(reference: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare a device's outputs with the reference run's, every output: integer outputs must be
    identical, float ones equal within rtol 1e-5 / atol 1e-6. `outputs` has one entry per output
    (its index, identical, max_abs_diff, ok); `why` names the first that differs."""
    if len(reference) != len(outputs):
        return {"ok": False, "why": f"{len(outputs)} output(s), the reference has {len(reference)}"}
    rows, why = [], None
    for index, (ref, out) in enumerate(zip(reference, outputs)):
        if ref["shape"] != out["shape"] or ref["dtype"] != out["dtype"]:
            return {"ok": False, "why": f"output {index}: {out['shape']} {out['dtype']} vs reference "
                                        f"{ref['shape']} {ref['dtype']}"}
        a = np.asarray(ref["values"], dtype=np.float64)
        b = np.asarray(out["values"], dtype=np.float64)
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        same = ref["sha256"] == out["sha256"]
        if np.issubdtype(np.dtype(ref["dtype"]), np.integer):
            ok = same
            problem = f"output {index}: integer outputs differ from the reference (by up to {diff:g})"
        else:
            ok = bool(np.allclose(b, a, rtol=FLOAT_RTOL, atol=FLOAT_ATOL))
            problem = f"output {index}: float outputs differ beyond rtol {FLOAT_RTOL:g} / atol {FLOAT_ATOL:g}"
        rows.append({"output": index, "ok": ok, "identical": same, "max_abs_diff": diff})
        if not ok and why is None:
            why = problem
    result: dict[str, Any] = {"ok": why is None, "identical": all(r["identical"] for r in rows),
                              "max_abs_diff": max(r["max_abs_diff"] for r in rows) if rows else 0.0, "outputs": rows}
    if why is not None:
        result["why"] = why
    return result
