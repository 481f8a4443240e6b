"""The local driver: run the standalone runner in a subprocess of this machine.

A crash inside the native runtime kills the child, not edgepack: it becomes a clear error with
the runner's stderr tail. Pinning (`cpus`) and the memory cap (`memory_limit`) are applied by the
runner itself, after its imports.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from edgepack.devices.base import (
    RunRequest,
    collect,
    parse_result,
    runner_args,
    runner_failure,
)
from edgepack.devices.drivers.driver import Driver, RunnerDriver
from edgepack.devices.profiles import LocalDevice
from edgepack.devices.runners import RUNNER
from edgepack.errors import StageError
from edgepack.progress import Reporter


def run_local(
    device: LocalDevice, req: RunRequest, reporter: Reporter, label: str, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Benchmark `req.model` with the runner in a child process; return its JSON record."""
    args = runner_args(
        req,
        str(req.model),
        str(req.inputs) if req.inputs else None,
        device.runtime,
        device.cpus,
        device.memory_limit_bytes,
    )
    cmd = [sys.executable, str(RUNNER), *args, "--progress"]
    with reporter.task(f"{label}: {req.what}", req.invokes) as task:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = collect(proc, None, timeout_s, task)
        except subprocess.TimeoutExpired as exc:
            raise StageError(f"{label}: the runner did not finish in {timeout_s:.0f} s", code="device-timeout") from exc
    if proc.returncode != 0:
        raise runner_failure(label, proc.returncode, stderr, python=sys.executable)
    return parse_result(stdout, label)


def check_local(device: LocalDevice) -> dict[str, Any]:
    """The runner's probe on this machine."""
    pinning = ["--cpus", ",".join(str(c) for c in device.cpus)] if device.cpus else []
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--probe", *pinning], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise runner_failure(f"device '{device.name}'", proc.returncode, proc.stderr)
    return parse_result(proc.stdout, f"device '{device.name}'")


class LocalDriver(RunnerDriver[LocalDevice]):
    kind = "local"

    def run(self, device: LocalDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_local(device, req, reporter, label)

    def check(self, device: LocalDevice, reporter: Reporter) -> dict[str, Any]:
        return check_local(device)

    def where(self, device: LocalDevice) -> str:
        return "this machine" + (f", CPUs {device.cpus}" if device.cpus else "")


DRIVER: Driver[LocalDevice] = LocalDriver()  # checked against the protocol
