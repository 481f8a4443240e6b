"""Check the recipe's `[budgets]` against measured size, latency, throughput, the task's metrics and fidelity."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edgepack.records import DeviceRun, Fit, Throughput, board_fits, device_runs

if TYPE_CHECKING:  # the recipe schema (pydantic) is not imported for `--help`
    from edgepack.analyze.gpu_ops import GpuCompatibility
    from edgepack.recipe.schema import Budgets

ESTIMATED = "estimated by Vela"  # how the basis of a latency that is an Ethos-U estimate begins


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
    estimated: bool = False  # checked against an estimate (Vela's), not a measurement

    @property
    def label(self) -> str:
        """The name, with "(estimated)" when the figure is an estimate."""
        return f"{self.name} (estimated)" if self.estimated else self.name

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
    metrics_float: dict[str, float] = field(default_factory=dict)  # the task's metrics of the float model
    metrics_tflite: dict[str, float] = field(default_factory=dict)  # ... and of the .tflite
    fidelity: dict[str, Any] | None = None  # the .tflite's outputs against the float model's (SQNR per output)
    fits: dict[str, Fit] = field(default_factory=dict)  # board -> how the model fits it
    throughput: dict[str, Throughput] = field(default_factory=dict)  # real device -> its throughput grid
    gpu: GpuCompatibility | None = None  # the GPU delegate's verdict on the shipped model (`gpu_figures`)


def gpu_figures(model: bytes) -> GpuCompatibility:
    """The GPU delegate's verdict on a `.tflite` (analyze/gpu_ops.py, offline)."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.gpu_ops import gpu_compatibility

    return gpu_compatibility(read_model(model))


def needs_gpu(budgets: Budgets) -> bool:
    """Whether a budget needs the GPU delegate's verdict."""
    return budgets.gpu_compatible is not None or budgets.min_gpu_macs_share is not None


def gated_throughput(validation: dict[str, DeviceRun]) -> dict[str, Throughput]:
    """The throughput grids of the real devices that timed one (an emulator's figures are not a board's)."""
    return {
        device: rec.throughput
        for device, rec in validation.items()
        if rec.throughput is not None and not rec.emulated and rec.throughput.why is None
    }


def gated_latency(validation: dict[str, DeviceRun]) -> tuple[dict[str, float], dict[str, str]]:
    """Per real device, the latency a p90 budget is checked against, and what it is when not the p90.

    Emulated devices are left out (the emulator's latency is not a board's). A benchmark binary
    reports no p90: its p95 (older ones: its max) stands in, an upper bound, so a pass is a pass.
    An Ethos-U profile's is Vela's estimated inference time (nothing runs), its basis saying so.
    """
    latency, basis = {}, {}
    for device, rec in validation.items():
        estimate = rec.estimate
        if estimate is not None:
            latency[device] = float(estimate["inference_ms"])
            basis[device] = (
                f"{ESTIMATED}: the inference time at {estimate['clock_mhz']:g} MHz "
                f"({estimate['accelerator']}, {estimate['system_config']}, {estimate['memory_mode']}); "
                "nothing was run"
            )
            continue
        figures = rec.latency_ms
        if rec.emulated or figures is None:
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
    """The figures a bundle records: size, the task's metrics and fidelity from its manifest (schema 2:
    accuracy only), latencies from its measurements.json (`run`; without it, no latency was measured)."""
    metrics = manifest.get("metrics", {})
    accuracy = metrics.get("accuracy") or {}
    runs = device_runs((run or {}).get("validation"))
    latency, basis = gated_latency(runs)
    return Measurements(
        size_bytes=int(manifest["model"]["size_bytes"]),
        accuracy_float=accuracy.get("float"),
        accuracy_tflite=accuracy.get("tflite"),
        latency_p90_ms=latency,
        latency_basis=basis,
        metrics_float=dict(metrics.get("float") or {}),
        metrics_tflite=dict(metrics.get("tflite") or {}),
        fidelity=metrics.get("fidelity"),
        fits=board_fits(manifest.get("fits")),
        throughput=gated_throughput(runs),
    )


def check_budgets(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    """One result per budget set in the recipe, in a stable order."""
    results = []
    if budgets.max_size_bytes is not None:
        results.append(_at_most("max_size", budgets.max_size_bytes, measured.size_bytes, "bytes"))
    results.extend(_latency(budgets, measured))
    results.extend(_throughput(budgets, measured))
    results.extend(_gpu(budgets, measured.gpu))
    if budgets.max_accuracy_drop is not None:
        drop = None
        if measured.accuracy_float is not None and measured.accuracy_tflite is not None:
            drop = round(measured.accuracy_float - measured.accuracy_tflite, 6)
        results.append(
            _at_most(
                "max_accuracy_drop",
                budgets.max_accuracy_drop,
                drop,
                "fraction",
                "float accuracy minus .tflite accuracy on the test split",
            )
        )
    if budgets.min_accuracy is not None:
        results.append(
            _at_least(
                "min_accuracy",
                budgets.min_accuracy,
                measured.accuracy_tflite,
                "fraction",
                ".tflite accuracy on the test split",
            )
        )
    results.extend(_task_budgets(budgets, measured))
    if budgets.min_sqnr_db is not None:
        results.append(_sqnr(budgets.min_sqnr_db, measured.fidelity))
    results.extend(_fits(budgets, measured))
    return results


def candidate_budgets(
    budgets: Budgets, metrics_float: dict[str, float], metrics: dict[str, float], fidelity: dict[str, Any] | None
) -> tuple[bool, list[dict[str, Any]]]:
    """Whether a candidate not yet shipped (a conversion, a fine-tuned model) holds the recipe's budgets on the
    task's metric, and on fidelity when `fidelity` is given; each of those budgets as plain data. Checked by
    `check_budgets`, so a candidate holds exactly where the gate would pass those figures."""
    from edgepack.recipe.schema import QUALITY_BUDGETS

    names = set(QUALITY_BUDGETS) - (set() if fidelity is not None else {"min_sqnr_db"})
    measured = Measurements(
        size_bytes=1,  # size and latency budgets are not the candidates' to hold
        accuracy_float=metrics_float.get("accuracy"),
        accuracy_tflite=metrics.get("accuracy"),
        latency_p90_ms={},
        metrics_float=dict(metrics_float),
        metrics_tflite=dict(metrics),
        fidelity=fidelity,
    )
    results = [r for r in check_budgets(budgets, measured) if r.name in names]
    rows = [{"name": r.name, "limit": r.limit, "measured": r.measured, "passed": r.passed} for r in results]
    return all(r.passed for r in results), rows


def _fits(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    """Two results per board of `fits`: flash (the model and the firmware allowance) and RAM (the arena
    TFLM measured, the input and output buffers, the RAM allowance), each with its headroom."""
    results = []
    for board in budgets.fits:
        fit = measured.fits.get(board)
        if fit is None:
            results += [
                BudgetResult(f"fits.{board}.{what}", 0, None, "bytes", False, None, f"'{board}' was not checked")
                for what in ("flash", "ram")
            ]
            continue
        name = fit.board_name or board
        results.append(
            BudgetResult(
                f"fits.{board}.flash",
                fit.flash_bytes,
                fit.flash_need,
                "bytes",
                fit.flash_headroom >= 0,
                fit.flash_headroom,
                f"{name}: the model ({fit.model_bytes:,} B) + the firmware allowance "
                f"({fit.runtime_flash_bytes:,} B) in {fit.flash_bytes:,} B of flash",
            )
        )
        room = fit.ram_headroom
        if room is None:  # the arena was not measured
            results.append(
                BudgetResult(
                    f"fits.{board}.ram",
                    fit.ram_bytes,
                    None,
                    "bytes",
                    False,
                    None,
                    f"{name}: the arena was not measured: {fit.arena_why}",
                )
            )
            continue
        results.append(
            BudgetResult(
                f"fits.{board}.ram",
                fit.ram_bytes,
                fit.ram_need,
                "bytes",
                room >= 0,
                room,
                f"{name}: the arena ({fit.arena_bytes:,} B, measured by {fit.arena_runtime}) "
                f"+ input/output buffers ({fit.io_bytes:,} B) + the RAM allowance "
                f"({fit.runtime_ram_bytes:,} B) in {fit.ram_bytes:,} B of RAM",
            )
        )
    return results


def _task_budgets(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    """The regression and anomaly budgets, from the task's metrics of the float model and the .tflite."""
    results = []
    rmse, rmse_float = measured.metrics_tflite.get("rmse"), measured.metrics_float.get("rmse")
    if budgets.max_rmse is not None:
        results.append(_at_most("max_rmse", budgets.max_rmse, rmse, "", ".tflite RMSE on the test split"))
    if budgets.max_rmse_increase is not None:
        increase = None
        if rmse is not None and rmse_float:
            increase = round(rmse / rmse_float - 1.0, 6)
        results.append(
            _at_most(
                "max_rmse_increase",
                budgets.max_rmse_increase,
                increase,
                "ratio",
                ".tflite RMSE over the float model's, less 1",
            )
        )
    auc, auc_float = measured.metrics_tflite.get("auc"), measured.metrics_float.get("auc")
    if budgets.min_auc is not None:
        results.append(_at_least("min_auc", budgets.min_auc, auc, "", ".tflite ROC AUC on the test split"))
    if budgets.max_auc_drop is not None:
        drop = None if auc is None or auc_float is None else round(auc_float - auc, 6)
        results.append(
            _at_most(
                "max_auc_drop", budgets.max_auc_drop, drop, "", "float ROC AUC minus .tflite ROC AUC on the test split"
            )
        )
    return results


def _sqnr(limit: float, fidelity: dict[str, Any] | None) -> BudgetResult:
    """The worst output's SQNR against the float model; every output identical passes (no noise at all)."""
    if not fidelity or not fidelity.get("outputs"):
        return BudgetResult("min_sqnr_db", limit, None, "dB", False, None, "the fidelity was not measured")
    worst = fidelity.get("worst_sqnr_db")
    if worst is None:
        return BudgetResult("min_sqnr_db", limit, None, "dB", True, None, "every output identical to the float model's")
    output = min((o for o in fidelity["outputs"] if o["sqnr_db"] is not None), key=lambda o: o["sqnr_db"])
    return BudgetResult(
        "min_sqnr_db",
        limit,
        worst,
        "dB",
        worst >= limit,
        round(worst - limit, 4),
        f"the worst output (output {output['output']}, {output['name']}) against the float model on the test split",
    )


def _latency(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    limit = budgets.latency_p90_ms
    if limit is None:
        return []
    # One figure for every device covers the measured ones; an estimate is checked only where it is named.
    per_device = (
        limit
        if isinstance(limit, dict)
        else {
            d: limit
            for d in sorted(measured.latency_p90_ms)
            if not measured.latency_basis.get(d, "").startswith(ESTIMATED)
        }
    )
    if not per_device:
        return [_at_most("latency_p90_ms", float(limit), None, "ms", "no device was measured")]  # type: ignore[arg-type]
    results = []
    for device, value in sorted(per_device.items()):
        basis = measured.latency_basis.get(device, "p90 latency")
        result = _at_most(
            f"latency_p90_ms.{device}",
            value,
            measured.latency_p90_ms.get(device),
            "ms",
            (
                f"{basis} on '{device}'"
                if device in measured.latency_p90_ms
                else f"'{device}' has no p90 or p95 latency measured on a real device"
            ),
        )
        results.append(replace(result, estimated=basis.startswith(ESTIMATED)))
    return results


def _throughput(budgets: Budgets, measured: Measurements) -> list[BudgetResult]:
    limit = budgets.min_throughput_ips
    if limit is None:
        return []
    per_device = limit if isinstance(limit, dict) else {d: limit for d in sorted(measured.throughput)}
    if not per_device:
        return [_at_least("min_throughput_ips", float(limit), None, "inferences/s", "no real device timed one")]  # type: ignore[arg-type]
    results = []
    for device, value in sorted(per_device.items()):
        grid = measured.throughput.get(device)
        best = grid.best if grid is not None else None
        if best is None:
            why = (
                "it timed no grid"
                if grid is None
                else "no cell of its grid ran"
                if grid.cells
                else "its runner gave no grid"
            )
            results.append(_at_least(f"min_throughput_ips.{device}", value, None, "inferences/s", f"'{device}': {why}"))
            continue
        assert grid is not None
        detail = (
            f"the best of {len(grid.cells)} cell(s) on '{device}': {best.threads} thread(s), batch {best.batch}"
            f" ({best.per_inference_ms:.4g} ms per inference)"
        )
        results.append(_at_least(f"min_throughput_ips.{device}", value, best.ips, "inferences/s", detail))
    return results


def _gpu(budgets: Budgets, gpu: GpuCompatibility | None) -> list[BudgetResult]:
    results = []
    missing = "the GPU delegate's verdict was not computed"
    if budgets.gpu_compatible:
        detail = missing
        if gpu is not None:
            detail = (
                "; ".join(
                    f"op {r.index} {r.op}" + (f" ({r.layer})" if r.layer else "") + f": {r.reason}" for r in gpu.refused
                )
                or f"every op on the GPU ({gpu.summary()})"
            )
        refused = None if gpu is None else len(gpu.refused)
        results.append(_at_most("gpu_compatible", 0, refused, "ops refused", detail))
    if budgets.min_gpu_macs_share is not None:
        share = None if gpu is None else 1.0 if gpu.mac_share is None else gpu.mac_share  # no MACs: none leave
        detail = missing if gpu is None else gpu.summary()
        results.append(_at_least("min_gpu_macs_share", budgets.min_gpu_macs_share, share, "fraction", detail))
    return results


def _at_most(name: str, limit: float, value: float | None, unit: str, detail: str = "") -> BudgetResult:
    if value is None:
        return BudgetResult(name, limit, None, unit, False, None, detail or "not measured")
    return BudgetResult(name, limit, value, unit, value <= limit, limit - value, detail)


def _at_least(name: str, limit: float, value: float | None, unit: str, detail: str = "") -> BudgetResult:
    if value is None:
        return BudgetResult(name, limit, None, unit, False, None, detail or "not measured")
    return BudgetResult(name, limit, value, unit, value >= limit, value - limit, detail)


def conversion_results(
    search: dict[str, Any] | None, fallback: dict[str, Any] | None, tflite_accuracy: float | None = None
) -> list[BudgetResult]:
    """The criteria of `[convert.search]` and `[convert.fallback]` as budget results, from their records
    (in the convert stage, or a bundle's manifest and measurements). Both judge against the float
    model the conversion started from (after the optimize stages). `tflite_accuracy` serves the
    records of 0.2 bundles, which kept only accuracies."""
    from edgepack.evaluate.judge import search_goal

    results = []
    if search:
        chosen = next(c for c in search["candidates"] if c["chosen"])
        verdict = (
            f"{chosen['mode']}, the {search_goal(search)} of the candidates that meet the criterion"
            if search["met"]
            else f"no candidate meets it; {chosen['mode']} is the best"
        )
        results.append(
            _criterion(
                "convert.search", search.get("criterion"), search["allowed_drop"], chosen, bool(search["met"]), verdict
            )
        )
    if fallback and fallback.get("criterion"):
        if "drop" not in fallback:  # a 0.2 record: accuracies only
            if tflite_accuracy is None:
                return results
            fallback = {
                **fallback,
                "drop": round(fallback["float_accuracy"] - tflite_accuracy, 6),
                "worst_sqnr_db": None,
                "met": round(fallback["float_accuracy"] - tflite_accuracy, 6)
                <= fallback["criterion"]["allowed_drop"] + 1e-9,
            }
        results.append(
            _criterion(
                "convert.fallback",
                fallback["criterion"],
                fallback["criterion"]["allowed_drop"],
                fallback,
                bool(fallback["met"]),
                f"the .tflite with {len(fallback['kept_float'])} op(s) kept in float",
            )
        )
    return results


def _criterion(
    name: str, criterion: dict[str, Any] | None, allowed: float | None, figures: dict[str, Any], met: bool, detail: str
) -> BudgetResult:
    if criterion and criterion.get("min_sqnr_db") is not None:
        limit, worst = float(criterion["min_sqnr_db"]), figures.get("worst_sqnr_db")
        return BudgetResult(name, limit, worst, "dB", met, None if worst is None else round(worst - limit, 4), detail)
    drop = figures.get("drop")
    unit = "fraction" if figures.get("metric", "accuracy") == "accuracy" else ""
    margin = None if drop is None or allowed is None else allowed - drop
    return BudgetResult(name, float(allowed if allowed is not None else 0.0), drop, unit, met, margin, detail)
