"""Budgets against a previous bundle (`[budgets] baseline`, `gate --baseline`): how much bigger, slower or
less accurate this model may be than the baseline's.

`max_size_increase` and `max_latency_increase` are relative (0.05 = 5 %): the shipped size, and the p90 (or
what stands in for it, as for `latency_p90_ms`) of each real device both bundles measured. `max_accuracy_loss`
is absolute, in the task's headline metric of the `.tflite` (accuracy as a fraction, AUC, RMSE).
"""

from __future__ import annotations

from pathlib import Path

from edgepack.bundle.figures import BundleFigures, read_figures
from edgepack.errors import BadInputError, BundleError
from edgepack.gate.budgets import ESTIMATED, BudgetResult, Measurements, _at_most, gated_latency
from edgepack.recipe.schema import Budgets
from edgepack.records import device_runs


def baseline_path(budgets: Budgets, base_dir: Path, override: Path | None = None) -> Path | None:
    """Where the baseline is: `override` (gate --baseline), else budgets.baseline against `base_dir` (the
    recipe's folder). A baseline budget with no baseline is a bad input."""
    if override is not None:
        return override
    if budgets.baseline is None:
        if budgets.baseline_limits:
            first = next(iter(budgets.baseline_limits))
            raise BadInputError(
                f"budgets.{first} is set but there is no baseline to compare with",
                hint='set [budgets] baseline = "PATH" (a previous bundle directory or its '
                "manifest.json, relative to the recipe), or give `edgepack gate --baseline OLD`",
            )
        return None
    path = Path(budgets.baseline).expanduser()
    return path if path.is_absolute() else base_dir / path


def load_baseline(path: Path | None) -> BundleFigures | None:
    """The baseline bundle's figures; a missing or unreadable one is an error naming the path."""
    if path is None:
        return None
    try:
        return read_figures(path)
    except BundleError as exc:
        raise BundleError(
            f"the baseline {path} cannot be read: {exc.message}",
            context=exc.context,
            code=exc.code,
            hint=exc.hint or "point budgets.baseline (or --baseline) at a bundle directory edgepack wrote",
        ) from exc


def baseline_results(
    budgets: Budgets, measured: Measurements, metric: str, baseline: BundleFigures
) -> list[BudgetResult]:
    """One result per baseline budget set (per device for latency), in a stable order."""
    results = []
    where = f"the baseline {baseline.source}"
    if budgets.max_size_increase is not None:
        old = baseline.shipped_bytes
        increase = round(measured.size_bytes / old - 1.0, 6) if old else None
        results.append(
            _at_most(
                "max_size_increase",
                budgets.max_size_increase,
                increase,
                "ratio",
                f"shipped size {measured.size_bytes:,} B over {old:,} B in {where}, less 1",
            )
        )
    if budgets.max_latency_increase is not None:
        results.extend(_latency(budgets.max_latency_increase, measured, baseline))
    if budgets.max_accuracy_loss is not None:
        new = measured.metrics_tflite.get(metric, measured.accuracy_tflite if metric == "accuracy" else None)
        old_value = baseline.metric_tflite if baseline.metric == metric else None
        loss = None
        if new is not None and old_value is not None:
            loss = round(old_value - new if baseline.higher_is_better else new - old_value, 6)
        results.append(
            _at_most(
                "max_accuracy_loss",
                budgets.max_accuracy_loss,
                loss,
                "fraction" if metric == "accuracy" else "",
                f".tflite {metric} of {where} minus this one's"
                if old_value is not None
                else f"{where} records no .tflite {metric}",
            )
        )
    return results


def _latency(limit: float, measured: Measurements, baseline: BundleFigures) -> list[BudgetResult]:
    """Per real device both bundles measured: the p90 (or its stand-in) over the baseline's, less 1."""
    old, old_basis = gated_latency(device_runs((baseline.run or {}).get("validation")))
    estimated = {
        d for basis in (old_basis, measured.latency_basis) for d, why in basis.items() if why.startswith(ESTIMATED)
    }
    both = sorted((set(old) & set(measured.latency_p90_ms)) - estimated)  # Vela's estimates are not measurements
    if not both:
        why = (
            "the baseline has no measurements.json (a .zip leaves it out)"
            if baseline.run is None
            else "no real device was measured in both this run and the baseline"
        )
        return [_at_most("max_latency_increase", limit, None, "ratio", why)]
    results = []
    for device in both:
        new = measured.latency_p90_ms[device]
        increase = round(new / old[device] - 1.0, 6) if old[device] else None
        results.append(
            _at_most(
                f"max_latency_increase.{device}",
                limit,
                increase,
                "ratio",
                f"p90 on '{device}' {new:.4f} ms over {old[device]:.4f} ms in the baseline, less 1",
            )
        )
    return results
