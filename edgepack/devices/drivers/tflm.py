"""The tflm driver: the model in the real TensorFlow Lite Micro interpreter (reference kernels), here.

Before anything runs, the model's ops are checked against the ops TFLM has (a missing one is a bad
model for this device: exit 2, named). Then `tflm_runner.py` runs in a child process (TFLM's
Python interpreter can abort its process) and reports the arena the model needs, measured, and the
outputs for the parity check. Its wall time is this host's, with reference kernels: it is kept as
`host_invoke_ms`, never as the device's latency.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from edgepack.devices.base import UNTIMED, RunRequest, collect, parse_result, runner_failure
from edgepack.devices.drivers.driver import Driver, RunnerDriver
from edgepack.devices.profiles import TflmDevice
from edgepack.devices.runners import TFLM_RUNNER
from edgepack.errors import DeviceUnreachable, ModelError, StageError
from edgepack.progress import Reporter

# TFLM's reference kernels may round a requantization (or softmax's lookup) differently from LiteRT's
# optimized ones: an int8 output may differ by this many quantization steps.
PARITY_STEPS = 1
HOST_RUNS = 5  # timed invokes: a host figure with reference kernels, kept only as host_invoke_ms
EXIT_NO_RUNTIME = 3
EXIT_BAD_MODEL = 6
INSTALL_HINT = "pip install tflite-micro (wheels for Linux x86-64 only), or pip install 'edgepack[mcu]'"


def check_ops(model: Path, label: str) -> None:
    """Refuse a model with ops TFLM has no kernel for, naming them."""
    from edgepack.analyze.tflm_ops import missing_ops, model_ops

    builtin, custom = model_ops(model.read_bytes())
    missing = missing_ops(builtin, custom)
    if missing:
        raise ModelError(
            f"{label}: TensorFlow Lite Micro has no kernel for {', '.join(missing)}",
            context=f"{model}: ops {', '.join(builtin + custom)}",
            code="tflm-unsupported-op",
            hint="replace those layers, or validate on a LiteRT device (host, rpi4, android)",
        )


def output_tolerances(model: Path, steps: int = PARITY_STEPS) -> list[float]:
    """Per output of the model, how far TFLM's value may be from LiteRT's, in the output's own units:
    `steps` for a quantized integer output, `steps` x the scale for a float output dequantized from
    one (float I/O of an int8 model), 0 otherwise (non-quantized integers, float models: the float rule)."""
    from edgepack.analyze.flatbuffer import read_model

    info = read_model(model.read_bytes())
    producer = {out: op for op in info.operators for out in op.outputs}
    tolerances = []
    for index in info.outputs:
        tensor = info.tensors[index]
        op = producer.get(index)
        if tensor.dtype.startswith(("int", "uint")) and tensor.scales:
            tolerances.append(float(steps))
        elif op is not None and op.op_name == "DEQUANTIZE" and info.tensors[op.inputs[0]].scales:
            tolerances.append(steps * max(info.tensors[op.inputs[0]].scales))
        else:
            tolerances.append(0.0)
    return tolerances


def run_tflm(device: TflmDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """The TFLM runner's record: the measured arena, the outputs (and how far each may be from LiteRT's),
    the host's invoke time (a few runs: reference kernels, a host figure)."""
    check_ops(req.model, label)
    cmd = [
        sys.executable,
        str(TFLM_RUNNER),
        str(req.model),
        "--runs",
        str(min(req.runs, HOST_RUNS)),
        "--seed",
        str(req.seed),
        "--max-arena",
        str(device.max_arena_bytes),
    ]
    if req.inputs:
        cmd += ["--inputs", str(req.inputs)]
    with reporter.task(f"{label}: arena and outputs", 1) as task:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = collect(proc, None, device.run_timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise StageError(
                f"{label}: the TFLM runner did not finish in {device.run_timeout_s:g} s",
                hint="raise run_timeout_s in the device profile",
                code="device-timeout",
            ) from exc
        task.advance(1)
    if proc.returncode != 0:
        raise _failure(label, proc.returncode, stderr, device)
    record = parse_result(stdout, label)
    return {
        **UNTIMED,
        **record,
        "tolerance": {"steps": PARITY_STEPS, "per_output": output_tolerances(req.model)},
    }


def check_tflm(device: TflmDevice) -> dict[str, Any]:
    """The TFLM runner's probe: Python, numpy, tflite-micro."""
    try:
        proc = subprocess.run(
            [sys.executable, str(TFLM_RUNNER), "--probe"], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired as exc:
        raise DeviceUnreachable(
            f"device '{device.name}': the TFLM probe did not answer in 120 s",
            code="device-timeout",
            hint="run `edgepack devices check tflm --debug`",
        ) from exc
    if proc.returncode != 0:
        raise _failure(f"device '{device.name}'", proc.returncode, proc.stderr, device)
    return parse_result(proc.stdout, f"device '{device.name}'")


def _failure(label: str, code: int, stderr: str, device: TflmDevice) -> Exception:
    lines = [line for line in stderr.splitlines() if line.strip()]
    context = "\n".join(lines[-12:]) or "(no output)"
    if code == EXIT_NO_RUNTIME:
        return DeviceUnreachable(
            f"{label}: tflite-micro is not installed", context=context, hint=INSTALL_HINT, code="device-no-runtime"
        )
    if code == EXIT_BAD_MODEL:
        return ModelError(
            f"{label}: the model does not allocate and invoke in TensorFlow Lite Micro",
            context=context,
            code="tflm-model",
            hint=f"the arena was tried up to {device.max_arena_bytes:,} bytes (max_arena in the "
            "profile); an op whose version TFLM lacks also ends here",
        )
    return runner_failure(label, code, stderr)


class TflmDriver(RunnerDriver[TflmDevice]):
    """TFLM on this machine: the TFLM runner, not LiteRT's."""

    kind = "tflm"
    runs_compressed = True  # TFLM decompresses LUT-compressed tensors; LiteRT and Vela cannot
    runtime_label = "runtime"

    def run(self, device: TflmDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_tflm(device, req, reporter, label)

    def throughput_why(self, device: TflmDevice) -> str | None:
        return "TFLM runs one invoke at a time on one thread (reference kernels on this host), not LiteRT"

    def check(self, device: TflmDevice, reporter: Reporter) -> dict[str, Any]:
        return check_tflm(device)


DRIVER: Driver[TflmDevice] = TflmDriver()  # checked against the protocol
