"""measurements.json (the run section: per-device validation, the mode search, the gate, with the time and the
host) as pydantic records, and Vela's estimate figures the manifest's ethos-u format shares."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from edgepack.bundle.record_model import Count, Counts, Num, Opt, Record, Sha256


class CpuOp(Record):
    op: str
    name: str
    reason: Opt[str] = None


class EstimateFigures(Record):
    """Vela's estimate of an Ethos-U configuration: what the device record and the ethos-u format share."""

    accelerator: Opt[str] = None
    system_config: Opt[str] = None
    memory_mode: Opt[str] = None
    clock_mhz: Opt[Num] = Field(None, gt=0)
    vela_version: Opt[str] = None
    npu_ops: Opt[Count] = None
    cpu_ops: Opt[Count] = None
    cpu_fallback: Opt[list[CpuOp]] = None
    memory_bytes: Opt[Counts] = None
    macs: Opt[Count] = None
    cycles: Opt[Counts] = None
    inference_ms: Opt[Num] = Field(None, ge=0)
    inferences_per_second: Num | None = None
    model_sha256: Opt[Sha256] = None


class Compiled(Record):
    file: str
    sha256: Sha256
    size_bytes: Count


class Layer(Record):
    op: str
    npu_op: Opt[str] = None
    target: Literal["NPU", "CPU"]
    cycles: Count
    macs: Count
    name: str


class Estimate(EstimateFigures):
    accelerator: str
    system_config: str
    memory_mode: str
    clock_mhz: Num = Field(gt=0)
    vela_version: str
    npu_ops: Count
    cpu_ops: Count
    cpu_fallback: list[CpuOp]
    memory_bytes: Counts
    macs: Count
    cycles: Counts
    inference_ms: Num = Field(ge=0)
    clock_hz: Opt[Num] = None
    passes: Opt[Count] = None
    weights_bytes: Opt[Counts] = None
    config: Opt[str] = None
    compiled: Opt[Compiled] = None
    layers: list[Layer]


class Latency(Record):
    p50: Num | None = None
    p90: Num | None = None
    p95: Num | None = None
    p99: Num | None = None
    mean: Num | None
    std: Num | None = None
    min: Num | None
    max: Num | None
    runs: Count


class DeviceArena(Record):
    bytes_: Count = Field(alias="bytes")
    persistent: int | None = None
    non_persistent: int | None = None


class Runtime(Record):
    name: Any
    version: Any


class Parity(Record):
    """The device's outputs against LiteRT's on this host."""

    ok: bool | None
    identical: bool | None = None
    max_abs_diff: Num | None = None
    reference: Opt[Any] = None
    outputs: Opt[Any] = None


class ThroughputCell(Record):
    """One cell of the throughput grid (records.ThroughputCell)."""

    threads: Count
    batch: Count
    latency_ms: Latency | None
    per_inference_ms: Num | None
    ips: Num | None
    error: str | None = None


class Throughput(Record):
    """The device's throughput grid (`[validate] threads` x `batch`), or why it times none."""

    cells: list[ThroughputCell]
    why: str | None = None


class DeviceRecord(Record):
    """One device's validation: latency, the runtime, the parity with LiteRT on this host."""

    device: str
    kind: Literal["local", "ssh", "adb", "qemu-arm64", "tflm", "ethos-u"]
    emulated: bool
    latency_ms: Latency | None
    init_ms: Num | None = None
    warmup: Count | None = None
    threads: int | None = None
    cpus: list[int] | None = None
    memory_limit: Opt[Any] = None
    arena: Opt[DeviceArena] = None
    peak_rss_kb: int | None = None
    runtime: Runtime
    python: str | None = None
    numpy: str | None = None
    cpu: str | None = None
    machine: str | None = None
    parity: Parity
    outputs_sha256: list[Sha256] | None = None
    throughput: Opt[Throughput] = None
    estimate: Opt[Estimate] = None


class Budget(Record):
    """One budget's result (gate.BudgetResult)."""

    name: str
    limit: Num
    measured: Num | None
    unit: str
    passed: bool
    margin: Num | None
    detail: Opt[str] = None
    estimated: Opt[bool] = None


class Gate(Record):
    passed: bool
    results: list[Budget]


class MeasurementsV3(Record):
    """measurements.json: what one run measured, where and when (it changes from run to run: not signed)."""

    schema_version: Literal[3]
    model_sha256: Sha256
    measured_at: str
    host: dict[str, Any]
    edgepack: Opt[str] = None
    validation: dict[str, DeviceRecord]
    search: dict[str, Any] | None = None
    gate: Gate


class MeasurementsV2(MeasurementsV3):
    schema_version: Literal[2]  # type: ignore[assignment]


MEASUREMENTS_MODELS: dict[int, type[MeasurementsV3]] = {2: MeasurementsV2, 3: MeasurementsV3}
