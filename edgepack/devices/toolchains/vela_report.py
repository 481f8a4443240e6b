"""What Vela reports for one compile, read from its own files and output: the estimate, as figures.

The summary CSV gives memory (KiB, turned into bytes), MACs, each cycles figure, the inference time
at the configuration's clock and the clock; the per-layer CSV (`--verbose-performance`) gives each
layer's target, cycles and MACs; Vela's printed report gives the NPU and CPU operator counts, and
(`--show-cpu-operations` and its supported-operators warnings) the operators left to the CPU, named
with their TFLite op and Vela's reason. Those counts are of the lowered operations Vela lists (one
per per-layer row): Vela 5.2 counts otherwise without `--show-cpu-operations` (MobileNetV2 96x96 on
the U55: 93 NPU operators without it, 129 with), and edgepack always passes it.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from edgepack.devices.toolchains.vela import VelaRun
from edgepack.errors import StageError

_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+) \(")
_CPU_LINE = re.compile(r"^\s+CPU: (\S+) = (.*) \(outputs \[[^\]]*\]\)\s*$")
_WARNING = re.compile(r"^Warning \(supported operators\) operator: (\w+), ofm: '(.*)'\s*$")
CYCLES = ("npu", "sram_access", "dram_access", "on_chip_flash_access", "off_chip_flash_access", "total")
MEMORIES = ("sram", "dram", "on_chip_flash", "off_chip_flash")


@dataclass(frozen=True)
class CpuOp:
    """An operator Vela leaves to the CPU: its TFLite op, its output's name, Vela's reason."""

    op: str
    name: str
    reason: str = ""


@dataclass(frozen=True)
class Layer:
    """One row of Vela's per-layer report."""

    op: str  # the original (TFLite) operator, as Vela names it
    npu_op: str  # what Vela lowered it to ("Passthrough" on the CPU)
    target: str  # NPU or CPU
    cycles: int
    macs: int
    name: str


@dataclass(frozen=True)
class VelaEstimate:
    """Vela's performance estimate of one model for one Ethos-U configuration (nothing is run)."""

    accelerator: str
    system_config: str
    memory_mode: str
    clock_hz: float
    vela_version: str
    npu_ops: int
    cpu_ops: int
    cpu_fallback: list[CpuOp]
    memory_bytes: dict[str, int]  # sram, dram, on_chip_flash, off_chip_flash
    macs: int
    cycles: dict[str, int]  # npu, sram_access, dram_access, on_chip_flash_access, off_chip_flash_access, total
    inference_ms: float
    inferences_per_second: float | None
    passes: int
    weights_bytes: dict[str, int]  # the original weights, and Vela's NPU encoding of them
    compiled: dict[str, Any]  # the Vela-compiled model: file, sha256, size_bytes
    model_sha256: str
    config: str  # the configuration file Vela read (Arm/vela.ini: Vela's own)
    layers: list[Layer] = field(default_factory=list)

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the validation record and measurements.json."""
        return {**asdict(self), "clock_mhz": self.clock_mhz}


def read_estimate(run: VelaRun, label: str) -> VelaEstimate:
    """The estimate of the compile in `run` (its summary and per-layer CSVs, its printed report); a summary
    without a column edgepack reads (another Vela's layout) is an error naming it."""
    request = run.request["request"]  # edgepack's own record of the compile: not Vela's to garble
    identity = (request["profile"]["accelerator"], request["vela"], request["model_sha256"])
    try:
        return _estimate(run, label, *identity)
    except (KeyError, ValueError) as exc:
        raise StageError(
            f"{label}: Vela's summary lacks or garbles {exc}: a Vela whose output edgepack does not read",
            context=str(run.summary_csv),
            code="vela-output",
            hint="install the Vela edgepack is tested with: pip install 'ethos-u-vela>=5.2,<6'",
        ) from exc


def _estimate(run: VelaRun, label: str, accelerator: str, vela_version: str, model_sha256: str) -> VelaEstimate:
    row = _summary(run, label)
    counts = _counts(run.stdout, label)
    layers = _layers(run)
    compiled = run.compiled.read_bytes()
    args = list(run.args)
    ips = float(row["inferences_per_second"])
    return VelaEstimate(
        accelerator=accelerator,
        system_config=row["system_config"],
        memory_mode=row["memory_mode"],
        clock_hz=float(row["core_clock"]),
        vela_version=vela_version,
        npu_ops=counts["NPU"],
        cpu_ops=counts["CPU"],
        cpu_fallback=cpu_fallback(run.stdout, layers),
        memory_bytes={m: round(float(row[f"{m}_memory_used"]) * 1024) for m in MEMORIES},
        macs=int(row["nn_macs"]),
        cycles={c: int(float(row[f"cycles_{c}"])) for c in CYCLES},
        inference_ms=float(row["inference_time"]) * 1000.0,
        inferences_per_second=None if ips != ips else ips,
        passes=int(row["passes_after_fusing"]),
        weights_bytes={
            "original": int(row["total_original_weights"]),
            "npu_encoded": int(row["total_npu_encoded_weights"]),
        },
        compiled={
            "file": run.compiled.name,
            "sha256": hashlib.sha256(compiled).hexdigest(),
            "size_bytes": len(compiled),
        },
        model_sha256=model_sha256,
        config=args[args.index("--config") + 1],
        layers=layers,
    )


def _summary(run: VelaRun, label: str) -> dict[str, str]:
    try:
        with run.summary_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise StageError(
            f"{label}: Vela's summary {run.summary_csv.name} cannot be read: {exc}", code="vela-output"
        ) from exc
    if len(rows) != 1:
        raise StageError(
            f"{label}: Vela's summary has {len(rows)} rows, not one", context=str(run.summary_csv), code="vela-output"
        )
    return rows[0]


def _counts(stdout: str, label: str) -> dict[str, int]:
    counts = {}
    for line in stdout.splitlines():
        match = _COUNT.match(line)
        if match:
            counts[match.group(1)] = int(match.group(2))
    if set(counts) != {"CPU", "NPU"}:
        raise StageError(
            f"{label}: Vela's report has no 'CPU operators = N' / 'NPU operators = N' lines",
            context="\n".join(stdout.splitlines()[-8:]),
            code="vela-output",
        )
    return counts


def _layers(run: VelaRun) -> list[Layer]:
    if not run.per_layer_csv.is_file():
        return []
    with run.per_layer_csv.open(newline="", encoding="utf-8") as handle:
        return [
            Layer(
                op=r["Original Operator"],
                npu_op=r["NNG Operator"],
                target=r["Target"],
                cycles=int(float(r["Op Cycles"])),
                macs=int(float(r["MAC Count"])),
                name=r["Name"],
            )
            for r in csv.DictReader(handle)
        ]


def cpu_fallback(stdout: str, layers: list[Layer]) -> list[CpuOp]:
    """The operators Vela lists as CPU operators, each with the TFLite op its warning names (else the
    per-layer report's original operator) and the reason Vela gives."""
    warned: dict[str, tuple[str, str]] = {}
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        match = _WARNING.match(line)
        if match:
            reasons: list[str] = []
            for following in lines[index + 1 :]:
                if not following.strip() or _WARNING.match(following):
                    break
                reasons.append(following.strip().removeprefix("Reason: "))
            warned[match.group(2)] = (match.group(1), "; ".join(reasons))
    original = {layer.name: layer.op for layer in layers if layer.target == "CPU"}
    ops = []
    for line in lines:
        match = _CPU_LINE.match(line)
        if match:
            name = match.group(2)
            op, reason = warned.get(name, (original.get(name, match.group(1)), ""))
            ops.append(CpuOp(op=op, name=name, reason=reason))
    return ops
