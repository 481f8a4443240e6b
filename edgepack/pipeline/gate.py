"""The gate: the recipe's budgets against the run's figures (size shipped, latency per device, the task's
metrics, fidelity, the boards the model must fit), and the conversion criteria (search, fallback) as budget results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgepack.gate.budgets import (
    BudgetResult,
    Measurements,
    check_budgets,
    conversion_results,
    gated_latency,
    gated_throughput,
    gpu_figures,
    needs_gpu,
)

if TYPE_CHECKING:
    from edgepack.bundle.figures import BundleFigures
    from edgepack.recipe.schema import Budgets
    from edgepack.records import DeviceRun, EvaluateRecord, Fit


def gate(
    budgets: Budgets,
    evaluated: EvaluateRecord,
    validation: dict[str, DeviceRun],
    size_bytes: int,
    fits: dict[str, Fit],
    search_report: dict[str, Any] | None,
    fallback: dict[str, Any] | None,
    baseline: BundleFigures | None,
    metric: str,
    shipped: bytes | None = None,
) -> list[BudgetResult]:
    """Every budget against the figures: the evaluate record, the devices' `validation`, the shipped model's
    size, the boards' `fits`; the search's and the fallback's criteria; `baseline` (the `[budgets] baseline`
    bundle's figures, or None) compared in the task's `metric`; `shipped` (the model's bytes) for the GPU
    delegate's verdict."""
    latency, basis = gated_latency(validation)
    accuracy = evaluated.metrics
    measured = Measurements(
        size_bytes=size_bytes,
        accuracy_float=accuracy["float"].get("accuracy"),
        accuracy_tflite=accuracy["tflite"].get("accuracy"),
        latency_p90_ms=latency,
        latency_basis=basis,
        metrics_float=accuracy["float"],
        metrics_tflite=accuracy["tflite"],
        fidelity=evaluated.fidelity,
        fits=fits,
        throughput=gated_throughput(validation),
        gpu=gpu_figures(shipped) if shipped is not None and needs_gpu(budgets) else None,
    )
    results = check_budgets(budgets, measured)
    results += conversion_results(search_report, fallback)
    if baseline is not None:
        from edgepack.gate.baseline import baseline_results

        results += baseline_results(budgets, measured, metric, baseline)
    return results
