"""Check the recipe's `[budgets]` against measured size, latency and accuracy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgepack.recipe.schema import Budgets


@dataclass(frozen=True)
class BudgetResult:
    """One budget: its limit, the measured value, the margin left (negative when exceeded)."""

    name: str
    limit: float
    measured: float | None
    unit: str
    passed: bool
    margin: float | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the manifest and `--json`."""
        return asdict(self)


@dataclass(frozen=True)
class Measurements:
    """What the budgets are checked against."""

    size_bytes: int
    accuracy_float: float | None
    accuracy_tflite: float | None
    latency_p90_ms: dict[str, float]
    latency_basis: dict[str, str] = field(default_factory=dict)  # device -> what stands in for its p90


def gated_latency(validation: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, str]]:
    """Per real device, the latency a p90 budget is checked against, and what it is when not the p90.

    Emulated devices are left out (the emulator's latency is not a board's). A benchmark binary
    reports no p90: its p95 (older ones: its max) stands in, an upper bound, so a pass is a pass.
    """
    latency, basis = {}, {}
    for device, rec in validation.items():
        figures = rec["latency_ms"]
        if rec.get("emulated"):
            continue
        if figures.get("p90") is not None:
            latency[device] = figures["p90"]
            continue
        bound = next((key for key in ("p95", "max") if figures.get(key) is not None), None)
        if bound is not None:
            latency[device] = figures[bound]
            basis[device] = f"{bound}, an upper bound of the p90 (the benchmark binary reports no p90)"
    return latency, basis


def measurements_from_manifest(manifest: dict[str, Any], run: dict[str, Any] | None = None) -> Measurements:
    """The figures a bundle records: size and accuracy from its manifest, latencies from its
    measurements.json (`run`; without it, no latency was measured)."""
    accuracy = manifest.get("metrics", {}).get("accuracy", {})
    latency, basis = gated_latency((run or {}).get("validation", {}))
    return Measurements(size_bytes=int(manifest["model"]["size_bytes"]), accuracy_float=accuracy.get("float"),
                        accuracy_tflite=accuracy.get("tflite"), latency_p90_ms=latency, latency_basis=basis)


def check_budgets(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    """One result per budget set in the recipe, in a stable order."""
    results = []
    if budgets.max_size_bytes is not None:
        results.append(_at_most("max_size", budgets.max_size_bytes, measured.size_bytes, "bytes"))
    results.extend(_latency(budgets, measured))
    if budgets.max_accuracy_drop is not None:
        drop = None
        if measured.accuracy_float is not None and measured.accuracy_tflite is not None:
            drop = round(measured.accuracy_float - measured.accuracy_tflite, 6)
        results.append(_at_most("max_accuracy_drop", budgets.max_accuracy_drop, drop, "fraction",
                                "float accuracy minus .tflite accuracy on the test split"))
    if budgets.min_accuracy is not None:
        results.append(_at_least("min_accuracy", budgets.min_accuracy, measured.accuracy_tflite, "fraction",
                                 ".tflite accuracy on the test split"))
    return results


def _latency(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    limit = budgets.latency_p90_ms
    if limit is None:
        return []
    per_device = limit if isinstance(limit, dict) else {d: limit for d in sorted(measured.latency_p90_ms)}
    if not per_device:
        return [_at_most("latency_p90_ms", float(limit), None, "ms", "no device was measured")]  # type: ignore[arg-type]
    return [_at_most(f"latency_p90_ms.{device}", value, measured.latency_p90_ms.get(device), "ms",
                     (f"{measured.latency_basis.get(device, 'p90 latency')} on '{device}'"
                      if device in measured.latency_p90_ms
                      else f"'{device}' has no p90 or p95 latency measured on a real device"))
            for device, value in sorted(per_device.items())]


def _at_most(name: str, limit: float, value: float | None, unit: str, detail: str = "") -> BudgetResult:
    if value is None:
        return BudgetResult(name, limit, None, unit, False, None, detail or "not measured")
    return BudgetResult(name, limit, value, unit, value <= limit, limit - value, detail)


def _at_least(name: str, limit: float, value: float | None, unit: str, detail: str = "") -> BudgetResult:
    if value is None:
        return BudgetResult(name, limit, None, unit, False, None, detail or "not measured")
    return BudgetResult(name, limit, value, unit, value >= limit, value - limit, detail)


def conversion_results(search: dict[str, Any] | None, fallback: dict[str, Any] | None,
                       tflite_accuracy: float | None) -> list[BudgetResult]:
    """The accuracy criteria of `[convert.search]` and `[convert.fallback]` as budget results, from
    their records (in the convert stage, or a bundle's manifest). Both measure the drop from the
    float model the conversion started from (after the optimize stages)."""
    results = []
    if search:
        chosen = next(c for c in search["candidates"] if c["chosen"])
        results.append(BudgetResult(
            "convert.search", search["allowed_drop"], chosen["drop"], "fraction", bool(search["met"]),
            search["allowed_drop"] - chosen["drop"],
            f"{chosen['mode']}, the {search['objective']} of the modes that meet the criterion" if search["met"]
            else f"no mode meets it; {chosen['mode']} is the most accurate"))
    if fallback and fallback.get("criterion") and tflite_accuracy is not None:
        allowed = fallback["criterion"]["allowed_drop"]
        drop = round(fallback["float_accuracy"] - tflite_accuracy, 6)
        results.append(BudgetResult(
            "convert.fallback", allowed, drop, "fraction", drop <= allowed + 1e-9, allowed - drop,
            f"float minus .tflite accuracy with {len(fallback['kept_float'])} op(s) kept in float"))
    return results
