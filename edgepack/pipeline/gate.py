"""The gate: the recipe's budgets against the run's figures (size shipped, latency per device, the task's
metrics, fidelity, the boards the model must fit), and the conversion criteria (search, fallback) as budget results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgepack.gate.budgets import BudgetResult, Measurements, check_budgets, conversion_results, gated_latency
from edgepack.pipeline.fits import fit_records

if TYPE_CHECKING:
    from edgepack.pipeline.run import Pipeline


def gate(p: Pipeline) -> list[BudgetResult]:
    """Check every budget; the result is kept in the run's result (and measurements.json)."""
    evaluated = p.evaluate().record
    validation = p.result.validation or p.validate()
    latency, basis = gated_latency(validation)
    with p.clock.timed("fits"):  # the boards' fits: a TFLM arena when validation did not measure one
        p.result.fits = fit_records(p)
    accuracy = evaluated.metrics
    measured = Measurements(
        size_bytes=len(p.shipped().data),
        accuracy_float=accuracy["float"].get("accuracy"),
        accuracy_tflite=accuracy["tflite"].get("accuracy"),
        latency_p90_ms=latency,
        latency_basis=basis,
        metrics_float=accuracy["float"],
        metrics_tflite=accuracy["tflite"],
        fidelity=evaluated.fidelity,
        fits=p.result.fits,
    )
    p.result.gate = check_budgets(p.recipe.budgets, measured)
    p.result.gate += conversion_results(p.search_report(), p.convert().record.fallback)
    if p.baseline is not None:
        from edgepack.gate.baseline import baseline_results

        p.result.gate += baseline_results(p.recipe.budgets, measured, p.task.metric, p.baseline)
    p.gated = True
    return p.result.gate
