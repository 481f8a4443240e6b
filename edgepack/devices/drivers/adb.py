"""The adb driver: an Android device (or a board running adbd) over `adb`.

The device is found with `adb devices` (never `wait-for-device`, which blocks forever); runner,
model and inputs are pushed to `remote_dir`; the runner runs through `adb shell` under the
device's `timeout` and prints an exit marker, because older adb versions do not pass the remote
exit status back. Every adb call has its own time limit.

No phone is attached where edgepack is developed: the tests drive this module through a fake
`adb` on PATH that replays what a real adb printed (see tests/fakes/adb).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from edgepack.devices.base import (
    EXIT_TIMEOUT,
    RunRequest,
    parse_result,
    runner_args,
    runner_failure,
    shell_join,
    tail,
)
from edgepack.devices.drivers.driver import Driver, RunnerDriver
from edgepack.devices.profiles import AdbDevice
from edgepack.devices.runners import RUNNER
from edgepack.errors import BadInputError, DeviceUnreachable, StageError
from edgepack.progress import Reporter

ADB_TIMEOUT_S = 30.0
KILL_GRACE_S = 5
_MARKER = "edgepack-exit:"
_MARKER_RE = re.compile(rf"^{_MARKER}(\d+)\s*$", re.MULTILINE)


def run_adb(device: AdbDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """Push runner + model (+ inputs), run the runner with `adb shell`, parse its JSON (or the
    profile's benchmark binary's log)."""
    if device.benchmark:
        _benchmark_binary(device, label)  # a profile mistake before a missing phone
    serial = _serial(device, label)
    if device.benchmark:
        return _run_benchmark(device, serial, req, reporter, label)
    files = {"runner.py": RUNNER, "model.tflite": req.model}
    if req.inputs:
        files["inputs.npz"] = req.inputs
    args = runner_args(req, "model.tflite", "inputs.npz" if req.inputs else None, device.runtime)
    with reporter.task(f"{label}: {req.what}", req.invokes) as task:
        stdout = _run_runner(device, serial, files, args, device.run_timeout_s, label)
        task.advance(req.invokes)
    return parse_result(stdout, label)


def check_adb(device: AdbDevice) -> dict[str, Any]:
    """The runner's probe on the device (with a benchmark binary: the device's ABI and CPU)."""
    label = f"device '{device.name}'"
    binary = _benchmark_binary(device, label) if device.benchmark else None
    serial = _serial(device, label)
    if binary is not None:
        info = _device_info(device, serial, label)
        return {
            "python": None,
            "numpy": None,
            "cpus": None,
            **info,
            "runtime": {"name": "benchmark_model", "version": f"{binary.name}, {binary.stat().st_size:,} B"},
        }
    return parse_result(_run_runner(device, serial, {"runner.py": RUNNER}, ["--probe"], 60.0, label), label)


def _run_runner(
    device: AdbDevice, serial: str, files: dict[str, Path], args: list[str], timeout_s: float, label: str
) -> str:
    code, stdout, stderr = _run_on_device(device, serial, files, [device.python, "runner.py", *args], timeout_s, label)
    if code != 0:
        raise runner_failure(label, code, stderr + stdout, timeout_s=timeout_s, python=device.python)
    return stdout


def _run_benchmark(device: AdbDevice, serial: str, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """benchmark_model on the device: latency statistics and memory, no outputs (no parity)."""
    from edgepack.devices.toolchains.benchmark_model import benchmark_args, parse

    files = {"benchmark_model": _benchmark_binary(device, label), "model.tflite": req.model}
    argv = [
        "./benchmark_model",
        *benchmark_args(req.runs, req.warmup, req.threads, device.run_timeout_s, device.benchmark_args),
    ]
    with reporter.task(f"{label}: {req.runs} runs (benchmark_model)", req.warmup + req.runs) as task:
        code, stdout, stderr = _run_on_device(
            device, serial, files, argv, device.run_timeout_s, label, executable="benchmark_model"
        )
        task.advance(req.warmup + req.runs)
    if code == EXIT_TIMEOUT or code > 128:
        raise runner_failure(label, code, stderr + stdout, timeout_s=device.run_timeout_s)
    if code != 0:
        raise StageError(
            f"{label}: benchmark_model failed (exit {code})",
            context=tail(stderr + stdout) or "(no output)",
            hint="is it built for this device's ABI (adb shell getprop ro.product.cpu.abi)? Does it "
            "support the model's ops? Run it by hand with `adb shell` to see",
            code="runner-failed",
        )
    record = parse(stderr + "\n" + stdout, req.runs, label)
    info = _device_info(device, serial, label)
    return {
        **record,
        "warmup": req.warmup,
        "threads": req.threads,
        "cpus": None,
        "memory_limit": None,
        "python": None,
        "numpy": None,
        **info,
    }


def _benchmark_binary(device: AdbDevice, label: str) -> Path:
    assert device.benchmark is not None
    path = Path(device.benchmark).expanduser()
    if not path.is_file():
        from edgepack.devices.profiles import profile_path

        raise BadInputError(
            f"{label}: the benchmark binary {path} does not exist",
            context=f"{profile_path(device.name)}: benchmark",
            hint="download TFLite's prebuilt android_aarch64_benchmark_model (or build "
            "//tensorflow/lite/tools/benchmark:benchmark_model for Android) and give its path",
            code="device-invalid",
        )
    return path


def _device_info(device: AdbDevice, serial: str, label: str) -> dict[str, str]:
    """The device's machine (uname -m) and CPU (from its /proc/cpuinfo, with the phone's model name)."""
    from edgepack.devices.runners.runner import describe_cpu

    script = "uname -m; echo ---; getprop ro.product.model 2>/dev/null; echo ---; cat /proc/cpuinfo"
    parts = (_adb(serial, ["shell", script], label).stdout.replace("\r\n", "\n").split("---\n") + ["", ""])[:3]
    machine, model, cpuinfo = (part.strip() for part in parts)
    cpu = describe_cpu(cpuinfo) or machine
    return {"machine": machine or "unknown", "cpu": f"{model}, {cpu}" if model and model not in cpu else cpu}


def _run_on_device(
    device: AdbDevice,
    serial: str,
    files: dict[str, Path],
    argv: list[str],
    timeout_s: float,
    label: str,
    executable: str | None = None,
) -> tuple[int, str, str]:
    """Push `files` to remote_dir, run `argv` there under the device's `timeout`: (exit, stdout, stderr)."""
    remote = device.remote_dir.rstrip("/")
    _adb(serial, ["shell", f"mkdir -p {shell_join([remote])}"], label)
    for name, path in files.items():
        _adb(serial, ["push", str(path), f"{remote}/{name}"], label)
    chmod = f"chmod 755 {shell_join([executable])} && " if executable else ""
    script = (
        f"cd {shell_join([remote])} && {chmod}timeout -k {KILL_GRACE_S} {timeout_s:g} {shell_join(argv)}; "
        f"echo {_MARKER}$?"
    )
    proc = _adb(serial, ["shell", script], label, timeout_s + ADB_TIMEOUT_S, check=False)
    match = _MARKER_RE.search(proc.stdout)
    if not match:
        raise _adb_error(proc.stderr or proc.stdout, label, serial)
    return int(match.group(1)), proc.stdout[: match.start()], proc.stderr


def _serial(device: AdbDevice, label: str) -> str:
    """The serial to use: the profile's, or the one device attached; checked against `adb devices`."""
    listing = _adb(None, ["devices"], label).stdout
    states = dict(line.split("\t", 1) for line in listing.splitlines()[1:] if "\t" in line)
    states = {serial.strip(): state.strip() for serial, state in states.items()}
    if device.serial and device.serial not in states:
        raise DeviceUnreachable(
            f"{label}: no device with serial '{device.serial}' is attached",
            context=f"adb devices: {', '.join(f'{s} ({t})' for s, t in states.items()) or 'none'}",
            hint="plug it in and enable USB debugging, or fix serial in the profile",
            code="adb-no-device",
        )
    if not states:
        raise DeviceUnreachable(
            f"{label}: no Android device is attached (adb devices lists none)",
            hint="plug it in and enable USB debugging; for a device over TCP: adb connect HOST:PORT",
            code="adb-no-device",
        )
    if not device.serial and len(states) > 1:
        raise DeviceUnreachable(
            f"{label}: {len(states)} devices are attached; which one?",
            context=", ".join(states),
            hint='set serial = "..." in the device profile',
            code="adb-ambiguous",
        )
    serial = device.serial or next(iter(states))
    state = states[serial]
    if state == "unauthorized":
        raise DeviceUnreachable(
            f"{label}: device {serial} has not authorized this computer",
            hint="unlock the phone and accept the 'Allow USB debugging?' dialog",
            code="adb-unauthorized",
        )
    if state != "device":
        raise DeviceUnreachable(
            f"{label}: device {serial} is {state}",
            hint="reconnect it (adb reconnect) and check the cable",
            code="adb-offline",
        )
    return serial


def _adb(
    serial: str | None, args: list[str], label: str, timeout_s: float = ADB_TIMEOUT_S, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = ["adb", *(["-s", serial] if serial else []), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise DeviceUnreachable(
            f"{label}: `adb` is not installed",
            code="adb-missing",
            hint="install the Android platform tools (Debian: apt install adb)",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise StageError(
            f"{label}: `adb {args[0]}` did not answer in {timeout_s:g} s",
            code="device-timeout",
            hint="check the connection (adb devices); the device may be busy or asleep",
        ) from exc
    if check and proc.returncode != 0:
        raise _adb_error(proc.stderr or proc.stdout, label, serial)
    return proc


def _adb_error(output: str, label: str, serial: str | None) -> DeviceUnreachable:
    text = output.lower()
    if "unauthorized" in text:
        return DeviceUnreachable(
            f"{label}: device {serial or ''} has not authorized this computer",
            context=tail(output),
            code="adb-unauthorized",
            hint="unlock the phone and accept the 'Allow USB debugging?' dialog",
        )
    if "no devices" in text or "not found" in text or "offline" in text:
        return DeviceUnreachable(
            f"{label}: the device went away",
            context=tail(output),
            code="adb-no-device",
            hint="check the cable and `adb devices`",
        )
    return DeviceUnreachable(
        f"{label}: adb failed",
        context=tail(output) or "(no output)",
        code="adb-failed",
        hint="run the same adb command by hand to see why",
    )


class AdbDriver(RunnerDriver[AdbDevice]):
    kind = "adb"

    def run(self, device: AdbDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_adb(device, req, reporter, label)

    def check(self, device: AdbDevice, reporter: Reporter) -> dict[str, Any]:
        return check_adb(device)

    def where(self, device: AdbDevice) -> str:
        return device.serial or "(the one attached)"

    def throughput_why(self, device: AdbDevice) -> str | None:
        if device.benchmark:
            return "the profile runs benchmark_model, which times one setting; remove `benchmark` to run the grid"
        return None


DRIVER: Driver[AdbDevice] = AdbDriver()  # checked against the protocol
