"""The ethos-u driver: the model compiled by Vela for an Arm Ethos-U NPU, and Vela's estimate as the record.

Nothing executes: there are no outputs to compare and no measured latency (`latency_ms` is None);
the record's `estimate` holds what Vela reports (operators on the NPU and the CPU, the CPU ones
named, SRAM and flash, MACs, cycles, the inference time at the configuration's clock, per layer).
A model without integer arithmetic (float32, float16, dynamic range) is refused before Vela runs:
the NPU computes int8 and int16 only, and Vela would put every operator on the CPU. An integer model
of which Vela maps nothing to the NPU is refused the same way, with the operators named.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.devices.base import UNTIMED, RunRequest
from edgepack.devices.drivers.driver import Driver, Row, RunnerDriver
from edgepack.devices.profiles import EthosUDevice
from edgepack.errors import ModelError
from edgepack.progress import Reporter

if TYPE_CHECKING:
    from edgepack.devices.toolchains.vela_report import VelaEstimate

NOT_RUN = "not checked: nothing executes on an Ethos-U profile; Vela compiles the model and estimates its performance"


def check_integer(model: Path, device: EthosUDevice, label: str) -> None:
    """Refuse a model whose arithmetic is not integer: nothing of it maps to the NPU."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import analyze

    report = analyze(read_model(model.read_bytes()))
    if not report.integer_model:
        raise ModelError(
            f"{label}: {model} computes in {report.compute}; the Ethos-U NPU runs int8 and int16 "
            f"models only (Vela would leave every operator to the CPU)",
            context=f"device '{device.name}'",
            hint='convert with mode = "int8" (or "int16x8") in [convert], or validate this model on a CPU device',
            code="ethos-u-not-integer",
        )


def compile_for(device: EthosUDevice, model: Path, folder: Path, label: str) -> VelaEstimate:
    """Compile `model` for `device` into `folder` and read Vela's estimate; nothing on the NPU is refused."""
    from edgepack.devices.toolchains.vela import compile_model
    from edgepack.devices.toolchains.vela_report import read_estimate

    check_integer(model, device, label)
    estimate = read_estimate(compile_model(device, model, folder, label), label)
    refuse_all_cpu(estimate, device, model, label)
    return estimate


def refuse_all_cpu(estimate: VelaEstimate, device: EthosUDevice, model: Path, label: str) -> None:
    """An estimate with no operator on the NPU is not an NPU estimate: refused, the CPU operators named."""
    if estimate.npu_ops == 0:
        ops = ", ".join(sorted({op.op for op in estimate.cpu_fallback})) or "(none listed)"
        raise ModelError(
            f"{label}: Vela maps no operator of {model} to the {device.accelerator} NPU",
            context=f"CPU operators: {ops}",
            code="ethos-u-no-npu-ops",
            hint="replace those layers with ones the NPU supports (`vela --supported-ops-report`)",
        )


def run_ethos_u(device: EthosUDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
    """The validation record of `device`: Vela's estimate, no latency measured, no outputs."""
    with reporter.task(f"{label}: Vela compile ({device.accelerator})", 1) as task:
        if req.work_dir is not None:
            estimate = compile_for(device, req.model, req.work_dir / "ethos-u" / device.name, label)
        else:
            with tempfile.TemporaryDirectory(prefix="edgepack-vela-") as tmp:
                estimate = compile_for(device, req.model, Path(tmp) / device.name, label)
        task.advance(1)
    return {
        **UNTIMED,
        "runtime": {"name": "vela", "version": estimate.vela_version},
        "estimate": estimate.to_dict(),
        "outputs": None,
        "parity_why": NOT_RUN,
    }


def check_ethos_u(device: EthosUDevice) -> dict[str, Any]:
    """Vela's probe in a child process: its version (exit 4 with the install hint when it is missing)."""
    from edgepack.devices.toolchains.vela import probe

    found = probe(f"device '{device.name}'")
    return {
        "runtime": {"name": "vela", "version": found["version"]},
        "python": found["python"],
        "numpy": None,
        "accelerator": device.accelerator,
        "system_config": device.system_config,
        "memory_mode": device.memory_mode,
        "clock_mhz": device.clock_mhz,
    }


class EthosUDriver(RunnerDriver[EthosUDevice]):
    """Vela's estimate for an NPU configuration: nothing runs, on this machine's CPU or elsewhere."""

    kind = "ethos-u"
    estimates = True
    runtime_label = "compiler"

    def run(self, device: EthosUDevice, req: RunRequest, reporter: Reporter, label: str) -> dict[str, Any]:
        return run_ethos_u(device, req, reporter, label)

    def throughput_why(self, device: EthosUDevice) -> str | None:
        return "nothing runs on an ethos-u profile (Vela's estimate), and LiteRT's threads and batch do not apply"

    def check(self, device: EthosUDevice, reporter: Reporter) -> dict[str, Any]:
        return check_ethos_u(device)

    def where(self, device: EthosUDevice) -> str:
        return f"Vela estimate: {device.accelerator}, {device.system_config}"

    def reached(self, device: EthosUDevice) -> str:
        return "estimate (nothing runs)"

    def detail_rows(self, device: EthosUDevice, probe: dict[str, Any]) -> list[Row]:
        clock = f", {probe['clock_mhz']:g} MHz (clock_mhz)" if probe.get("clock_mhz") else ""
        return [
            ("configuration", f"{probe['accelerator']}, {probe['system_config']}, {probe['memory_mode']}{clock}"),
            ("Python", probe["python"]),
        ]


DRIVER: Driver[EthosUDevice] = EthosUDriver()  # checked against the protocol
