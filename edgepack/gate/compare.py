"""Two bundles' figures side by side: old, new and the change of each, with regressions flagged.

Pure: it takes two `BundleFigures` (`bundle/figures.py`) and returns typed records; the CLI renders them.
A change is a regression when the figure got worse (larger size, latency, arena, MACs or quantization
error; a worse task metric) by more than its tolerance: latency is a measurement and varies from run
to run, so it is flagged above `LATENCY_TOLERANCE` (relative); the quantization error above
`QUANT_ERROR_TOLERANCE`; everything else at any change for the worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgepack.bundle.figures import BundleFigures

LATENCY_TOLERANCE = 0.05  # relative: 5 % slower is noise on a shared machine, more is flagged
QUANT_ERROR_TOLERANCE = 0.10


@dataclass(frozen=True)
class Change:
    """One figure in both bundles. `better` is "lower", "higher" or "" (neither: an op count)."""

    group: str  # size, metric, latency, memory, compute, ops, quantization
    name: str
    old: float | None
    new: float | None
    unit: str  # bytes, fraction, ms, MACs, ops, "" (a plain number)
    better: str
    tolerance: float = 0.0  # relative worsening allowed before it is a regression

    @property
    def change(self) -> float | None:
        """new - old (None when either is missing)."""
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def relative(self) -> float | None:
        """The change over the old figure (None when either is missing or the old one is 0)."""
        change = self.change
        return None if change is None or not self.old else change / abs(self.old)

    @property
    def worse(self) -> bool:
        """The figure got worse (in its direction), whatever the tolerance."""
        change = self.change
        if change is None or not self.better:
            return False
        return change > 0 if self.better == "lower" else change < 0

    @property
    def regression(self) -> bool:
        """Worse by more than the tolerance."""
        if not self.worse:
            return False
        relative = self.relative
        return relative is None or abs(relative) > self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "group": self.group,
            "name": self.name,
            "old": self.old,
            "new": self.new,
            "unit": self.unit,
            "change": self.change,
            "relative": self.relative,
            "better": self.better or None,
            "regression": self.regression,
        }


@dataclass(frozen=True)
class Comparison:
    """Every figure of two bundles, in a stable order."""

    old: str
    new: str
    changes: tuple[Change, ...]

    @property
    def regressions(self) -> list[Change]:
        """The figures that got worse beyond their tolerance."""
        return [c for c in self.changes if c.regression]

    def get(self, name: str) -> Change:
        """The change named `name` (KeyError when neither bundle has it)."""
        for change in self.changes:
            if change.name == name:
                return change
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "old": self.old,
            "new": self.new,
            "regressions": [c.name for c in self.regressions],
            "changes": [c.to_dict() for c in self.changes],
        }


def compare(old: BundleFigures, new: BundleFigures) -> Comparison:
    """Size, shipped size, the task's metric, latency percentiles per device, arena, activation peak, MACs,
    op histogram and per-layer quantization error of `old` and `new`."""
    metric_unit = "fraction" if old.metric == "accuracy" else ""
    direction = "higher" if new.higher_is_better else "lower"
    changes = [
        Change("size", "size", old.size_bytes, new.size_bytes, "bytes", "lower"),
        Change("size", "shipped size", old.shipped_bytes, new.shipped_bytes, "bytes", "lower"),
        Change("size", "gzip size", old.gzip_bytes, new.gzip_bytes, "bytes", "lower"),
        Change("metric", f"{new.metric} (.tflite)", old.metric_tflite, new.metric_tflite, metric_unit, direction),
        Change("metric", f"{new.metric} (float)", old.metric_float, new.metric_float, metric_unit, direction),
    ]
    for device in sorted(set(old.latency_ms) | set(new.latency_ms)):
        before, after = old.latency_ms.get(device, {}), new.latency_ms.get(device, {})
        where = f"{device} (emulated)" if device in old.emulated or device in new.emulated else device
        for key in ("p50", "p90", "p95", "p99", "mean"):
            if key in before or key in after:
                changes.append(
                    Change(
                        "latency",
                        f"latency {key} on {where}",
                        before.get(key),
                        after.get(key),
                        "ms",
                        "lower",
                        LATENCY_TOLERANCE,
                    )
                )
    changes += [
        Change("memory", "TFLM arena", old.arena_bytes, new.arena_bytes, "bytes", "lower"),
        Change("memory", "activation peak", old.activation_peak_bytes, new.activation_peak_bytes, "bytes", "lower"),
        Change("compute", "MACs", old.macs, new.macs, "MACs", "lower"),
    ]
    counted = bool(old.op_histogram) and bool(new.op_histogram)
    for op in sorted(set(old.op_histogram) | set(new.op_histogram)):
        changes.append(
            Change(
                "ops",
                f"ops {op}",
                old.op_histogram.get(op, 0 if counted else None),
                new.op_histogram.get(op, 0 if counted else None),
                "ops",
                "",
            )
        )
    for layer in sorted(set(old.quant_error) | set(new.quant_error)):
        changes.append(
            Change(
                "quantization",
                f"quantization error {layer}",
                old.quant_error.get(layer),
                new.quant_error.get(layer),
                "",
                "lower",
                QUANT_ERROR_TOLERANCE,
            )
        )
    return Comparison(old.source, new.source, tuple(changes))
