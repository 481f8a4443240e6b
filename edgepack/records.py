"""The records that cross modules: typed, frozen dataclasses every stage imports (nothing of edgepack here).

The stage records (train, optimize, convert, evaluate) are stored as JSON in each stage's `stage.json`;
`DeviceRun` is one device's validation record, kept in the run's result and written to measurements.json.
Each record's figures travel between stages, into the summary, the manifest and `--json` as one of these
records instead of a dict whose keys are spelled in many files. `to_dict` is the JSON form (nested figures
stay plain data); `from_dict` reads it back and ignores keys it does not know, so a stage record written by
a newer field set reads as a cache miss, never as a wrong record.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import ItemsView, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """JSON in and out for the dataclass records below."""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The record from its JSON form (a `TypeError` when a field is missing)."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class TrainRecord(Record):
    """The float reference model: where it came from, its size and its test metrics."""

    model_file: str
    keras: int  # 2: a tf_keras model (what the optimize stages work on); 3: a Keras 3 model kept as it is
    params: int
    test_metrics: dict[str, float]
    source: dict[str, Any]  # kind, format, keras_version; a Keras 3 model's bridge proof
    fit: dict[str, float] = field(default_factory=dict)  # the last epoch's loss and metrics (built models)

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy of a classifier (None for other tasks)."""
        return self.test_metrics.get("accuracy")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if "accuracy" in self.test_metrics:
            data["test_accuracy"] = self.test_metrics["accuracy"]  # the field readers of 0.2 bundles know
        return data


@dataclass(frozen=True)
class OptimizeRecord(Record):
    """What the `[[optimize]]` stages did (one dict per stage) and the exported SavedModel."""

    saved_model: str
    layers: list[str]
    stages: list[dict[str, Any]]
    inputs: list[str] = field(default_factory=list)  # the model's input names, in its input order


@dataclass(frozen=True)
class ConvertRecord(Record):
    """The `.tflite`: mode, hashes and sizes, what reached its kernels, calibration, error report, fallback."""

    model_file: str
    mode: str
    io: str
    sha256: str
    size_bytes: int
    gzip_bytes: int
    weights: dict[str, dict[str, Any]]
    calibration: dict[str, Any] | None
    quant_error: dict[str, Any]
    fallback: dict[str, Any] | None
    given: str | None = None  # a model given with --model: its path, not converted here


@dataclass(frozen=True)
class EvaluateRecord(Record):
    """The task's metrics of the float, optimized and `.tflite` models on the test split, and the
    `.tflite`'s fidelity to the Keras model it was converted from.

    `float`, `optimized` and `tflite` are the headline metric (accuracy, RMSE, AUC; None for a
    fidelity task); `drop` is how much worse the `.tflite` is than the float model in it."""

    task: str
    metric: str
    float: builtins.float | None  # the field `float` shadows the builtin inside the class body
    optimized: builtins.float | None
    tflite: builtins.float | None
    drop: builtins.float | None
    metrics: dict[str, dict[str, builtins.float]]
    fidelity: dict[str, Any]
    test_samples: int


@dataclass(frozen=True)
class ThroughputCell(Record):
    """One cell of the throughput grid: `threads` interpreter threads, `batch` samples per invoke."""

    threads: int
    batch: int
    latency_ms: dict[str, Any] | None  # per invoke (the whole batch): the runner's p50 ... runs; None: not run
    per_inference_ms: builtins.float | None  # the mean invoke over the batch
    ips: builtins.float | None  # inferences per second: batch x 1000 / the mean invoke
    error: str | None = None  # why the cell was not timed (a graph that fixes its batch, a load failure)


@dataclass(frozen=True)
class Throughput:
    """A device's throughput grid (`[validate] threads` x `batch`), or why the device does not time it."""

    cells: tuple[ThroughputCell, ...]
    why: str | None = None  # the device times no grid: why (a benchmark binary, TFLM, an estimate)

    @property
    def best(self) -> ThroughputCell | None:
        """The cell with the most inferences per second (a tie: fewer threads, then the smaller batch)."""
        timed = [cell for cell in self.cells if cell.ips is not None and math.isfinite(cell.ips)]
        return max(timed, key=lambda c: (c.ips, -c.threads, -c.batch), default=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for measurements.json and `--json`."""
        return {"cells": [cell.to_dict() for cell in self.cells], "why": self.why}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Throughput:
        """The grid from its JSON form."""
        return cls(tuple(ThroughputCell.from_dict(cell) for cell in data.get("cells") or ()), data.get("why"))


RUN_FIELDS = ("latency_ms", "init_ms", "warmup", "threads", "peak_rss_kb", "runtime")  # what every driver reports
DEVICE_FIELDS = ("device", "kind", "emulated", *RUN_FIELDS, "parity", "outputs_sha256")


@dataclass(frozen=True)
class Fit(Record):
    """One board against one model: flash and RAM needed, the board's figures, the headroom of each."""

    board: str  # the profile's name
    board_name: str | None  # None: a manifest that did not record it (the schema makes it optional)
    core: str | None
    clock_mhz: float | None
    flash_bytes: int
    model_bytes: int
    runtime_flash_bytes: int
    ram_bytes: int
    arena_bytes: int | None  # None: TFLM could not measure it (see `arena_why`)
    io_bytes: int
    runtime_ram_bytes: int
    arena_runtime: str | None = None
    arena_why: str = ""

    @property
    def title(self) -> str:
        """The board as a heading: its name, core and clock (what the profile gave)."""
        detail = ", ".join(
            [*([self.core] if self.core else []), *([f"{self.clock_mhz:g} MHz"] if self.clock_mhz else [])]
        )
        return f"{self.board_name or self.board}" + (f" ({detail})" if detail else "")

    @property
    def flash_need(self) -> int:
        return self.model_bytes + self.runtime_flash_bytes

    @property
    def ram_need(self) -> int | None:
        return None if self.arena_bytes is None else self.arena_bytes + self.io_bytes + self.runtime_ram_bytes

    @property
    def flash_headroom(self) -> int:
        return self.flash_bytes - self.flash_need

    @property
    def ram_headroom(self) -> int | None:
        need = self.ram_need
        return None if need is None else self.ram_bytes - need

    @property
    def fits(self) -> bool:
        return self.flash_headroom >= 0 and self.ram_headroom is not None and self.ram_headroom >= 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest and `--json`: the inputs, the needs and the headroom (which `from_dict`
        drops: they are computed)."""
        return {
            **asdict(self),
            "flash_need": self.flash_need,
            "flash_headroom": self.flash_headroom,
            "ram_need": self.ram_need,
            "ram_headroom": self.ram_headroom,
            "fits": self.fits,
        }


@dataclass(frozen=True)
class DeviceRun:
    """One device's validation record: what every driver reports (latency, memory, the runtime) with the output
    parity against the host's, and `extra` for the keys of one kind or one driver (the runner's python, numpy,
    cpu, machine, cpus, memory_limit; TFLM's `arena`; Vela's `estimate`; benchmark_model's memory_delta_kb).

    `to_dict` is the record as `--json run` and measurements.json hold it, its keys in the order the driver
    gave them (`keys`; in the dataclass's order without it); `from_dict` reads one back, a key it lacks
    (an older measurements.json) read as None."""

    device: str
    kind: str
    emulated: bool
    latency_ms: (
        dict[str, Any] | None
    )  # p50, p90, p99, mean, std, min, max, runs (a benchmark binary: fewer); None: untimed
    init_ms: float | None = None
    warmup: int | None = None
    threads: int | None = None
    peak_rss_kb: int | None = None  # the memory the run peaked at (None where the driver cannot tell)
    runtime: dict[str, Any] | None = None  # name, version
    parity: dict[str, Any] = field(default_factory=dict)  # ok (None: not checked), why, identical, max_abs_diff...
    outputs_sha256: list[str] | None = None
    throughput: Throughput | None = None  # the throughput grid, when the recipe asked for one
    extra: dict[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the dict's key order, as it came

    @property
    def arena(self) -> dict[str, Any] | None:
        """The arena TFLM measured (tflm devices), or None."""
        return self.extra.get("arena")

    @property
    def estimate(self) -> dict[str, Any] | None:
        """Vela's estimate (ethos-u devices: nothing runs), or None."""
        return self.extra.get("estimate")

    # 0.3 gave each device's record as a dict. Its reads still work, each with a DeprecationWarning: use the
    # attributes (`run.latency_ms`) or `to_dict()`.
    def _as_dict(self, what: str) -> dict[str, Any]:
        import warnings

        warnings.warn(
            f"DeviceRun{what} is deprecated: validation records are DeviceRun objects; use the attribute or .to_dict()",
            DeprecationWarning,
            stacklevel=3,
        )
        return self.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self._as_dict(f"[{key!r}]")[key]

    def __contains__(self, key: object) -> bool:
        return key in self._as_dict(f": {key!r} in")

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict(" iterated"))

    def get(self, key: str, default: Any = None) -> Any:
        return self._as_dict(f".get({key!r})").get(key, default)

    def items(self) -> ItemsView[str, Any]:
        return self._as_dict(".items()").items()

    @property
    def parity_ok(self) -> bool | None:
        """True: the outputs match the host's; False: they differ; None: not checked."""
        return self.parity.get("ok")

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, exactly the dict the validate stage made."""
        flat = {name: getattr(self, name) for name in DEVICE_FIELDS}
        # the grid only where one was asked for (older records keep their keys), or where the dict had the key
        grid = self.throughput is not None or "throughput" in self.keys
        if grid:
            flat["throughput"] = None if self.throughput is None else self.throughput.to_dict()
        flat.update(self.extra)
        if not self.keys:
            return flat
        return {key: flat[key] for key in self.keys if key in flat} | {
            key: value
            for key, value in flat.items()
            if key not in self.keys and (key in self.extra or key == "throughput")
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceRun:
        """The record from its dict (measurements.json's `validation` entries, the validate stage's)."""
        get = data.get
        return cls(
            device=str(get("device")),
            kind=str(get("kind")),
            emulated=bool(get("emulated")),
            latency_ms=get("latency_ms"),
            init_ms=get("init_ms"),
            warmup=get("warmup"),
            threads=get("threads"),
            peak_rss_kb=get("peak_rss_kb"),
            runtime=get("runtime"),
            parity=get("parity") or {},
            outputs_sha256=get("outputs_sha256"),
            throughput=Throughput.from_dict(data["throughput"]) if data.get("throughput") else None,
            extra={key: value for key, value in data.items() if key not in (*DEVICE_FIELDS, "throughput")},
            keys=tuple(data),
        )


def board_fits(fits: dict[str, dict[str, Any]] | None) -> dict[str, Fit]:
    """A manifest's (or `--json`'s) `fits` back as records, by board."""
    optional = {"board_name": None, "core": None, "clock_mhz": None}  # optional in the published schema
    return {
        board: Fit.from_dict({**optional, **fit, "arena_why": fit.get("arena_why") or ""})
        for board, fit in (fits or {}).items()
    }


def device_runs(validation: dict[str, dict[str, Any]] | None) -> dict[str, DeviceRun]:
    """A `validation` section read from disk (measurements.json) as records, device name -> `DeviceRun`."""
    return {name: DeviceRun.from_dict(rec) for name, rec in (validation or {}).items()}


def device_dicts(validation: dict[str, DeviceRun]) -> dict[str, dict[str, Any]]:
    """The records as the `validation` section of measurements.json and `--json run`."""
    return {name: run.to_dict() for name, run in validation.items()}
