"""The qemu-arm64 driver: an emulated Arm64 board on this machine, no root and no binfmt needed.

The board is a Debian arm64 root filesystem (`mmdebstrap --variant=extract`: Python 3 and numpy
from Debian) with the aarch64 `ai-edge-litert` wheel unpacked into it, built once and cached
under `~/.cache/edgepack/qemu-arm64/`. The runner runs under `qemu-aarch64-static -cpu CORE -L
ROOTFS`, with CORE a real Arm core: `-cpu max` gives wrong int8 results. What the emulation needs:
the guest's BLAS dirs on LD_LIBRARY_PATH (the extract variant runs no maintainer scripts, so the
alternatives symlinks are missing) and an Arm `/proc/cpuinfo` stand-in inside the root filesystem
(XNNPACK's CPU detection crashes on the host's x86 one). One hard-linked view of the root
filesystem per core keeps each core's stand-in apart.

Latency measured here is the emulator's, not a board's: the records say `emulated`, and budgets
never check it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from edgepack.devices.base import RunRequest, collect, parse_result, runner_args, runner_failure
from edgepack.devices.drivers.driver import Driver, Row, RunnerDriver
from edgepack.devices.profiles import DEBIAN_PYTHON, QemuDevice
from edgepack.devices.runners import RUNNER
from edgepack.devices.toolchains.qemu_rootfs import SITE, cache_dir, ensure_image, image_key, qemu_binary, view
from edgepack.errors import StageError
from edgepack.progress import Reporter

PROBE_TIMEOUT_S = 300.0


def command(
    device: QemuDevice,
    board: Path,
    args: list[str],
    script: Path | None = RUNNER,
) -> tuple[list[str], dict[str, str]]:
    """The emulator running the board's Python on `script` (the runner) with `args`, and its environment."""
    qemu = qemu_binary()
    assert qemu is not None
    python = DEBIAN_PYTHON[device.suite]
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "PYTHONPATH": SITE,
        "PYTHONDONTWRITEBYTECODE": "1",  # the image is shared, and compiled at build time
        "LD_LIBRARY_PATH": "/usr/lib/aarch64-linux-gnu/blas:/usr/lib/aarch64-linux-gnu/lapack",
    }
    interpreter = board / "usr" / "bin" / f"python{python}"
    return [
        qemu,
        "-cpu",
        device.cpu,
        "-L",
        str(board),
        str(interpreter),
        *([str(script)] if script else []),
        *args,
    ], env


def run_qemu(device: QemuDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """Run the runner under emulation on the cached root filesystem; return its JSON record."""
    rootfs, _ = ensure_image(device, reporter)
    board = view(rootfs, device.cpu)
    args = runner_args(req, str(req.model.resolve()), str(req.inputs.resolve()) if req.inputs else None, device.runtime)
    cmd, env = command(device, board, [*args, "--progress"])
    with reporter.task(f"{label}: {req.what} (emulated {device.cpu})", req.invokes) as task:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            stdout, stderr = collect(proc, None, device.run_timeout_s, task)
        except subprocess.TimeoutExpired as exc:
            raise StageError(
                f"{label}: the emulated run did not finish in {device.run_timeout_s:g} s and was stopped",
                hint="raise run_timeout_s in the device profile, or lower validate.runs",
                code="device-timeout",
            ) from exc
    if proc.returncode != 0:
        raise runner_failure(label, proc.returncode, stderr, python=f"python{DEBIAN_PYTHON[device.suite]} (emulated)")
    return parse_result(stdout, label)


def check_qemu(device: QemuDevice, reporter: Reporter) -> dict[str, Any]:
    """Build the root filesystem if needed, then the runner's probe under emulation."""
    start = time.perf_counter()
    cached = (cache_dir() / image_key(device) / "build.json").is_file()
    rootfs, record = ensure_image(device, reporter)
    built_s = time.perf_counter() - start
    cmd, env = command(device, view(rootfs, device.cpu), ["--probe"])
    label = f"device '{device.name}'"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise StageError(
            f"{label}: the emulated probe did not finish in {PROBE_TIMEOUT_S:g} s",
            code="device-timeout",
            hint=f"is the machine very busy? Try again, or rebuild the cache (delete {rootfs.parent})",
        ) from exc
    if proc.returncode != 0:
        raise runner_failure(
            label, proc.returncode, proc.stderr, python=f"python{DEBIAN_PYTHON[device.suite]} (emulated)"
        )
    probe = parse_result(proc.stdout, label)
    probe["image"] = {
        "path": str(rootfs.parent),
        "cached": cached,
        "seconds": None if cached else round(built_s, 1),
        **{k: record[k] for k in ("suite", "litert_version", "wheel") if k in record},
    }
    return probe


class QemuDriver(RunnerDriver[QemuDevice]):
    kind = "qemu-arm64"

    def run(self, device: QemuDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_qemu(device, req, reporter, label)

    def check(self, device: QemuDevice, reporter: Reporter) -> dict[str, Any]:
        return check_qemu(device, reporter)

    def where(self, device: QemuDevice) -> str:
        return f"qemu-aarch64 -cpu {device.cpu}"

    def leading_rows(self, device: QemuDevice, probe: dict[str, Any]) -> list[Row]:
        """The root filesystem the board runs from: cached, or built by this check."""
        image = probe.get("image")
        if not image:
            return []
        built = "cached" if image["cached"] else f"built now in {image['seconds']:.0f} s"
        return [
            (
                "root filesystem",
                f"{image['path']} ({built}; Debian {image['suite']}, ai-edge-litert {image['litert_version']})",
            )
        ]


DRIVER: Driver[QemuDevice] = QemuDriver()  # checked against the protocol
