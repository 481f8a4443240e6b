"""The first measurement of a starter recipe through the real pipeline (evaluate, validate, ship; no
bundle), and the budgets it gives: each with room the user can take back, each saying what was measured.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.errors import EdgepackError
from edgepack.init.tomlvalue import toml_value
from edgepack.progress import Reporter

if TYPE_CHECKING:
    from edgepack.records import DeviceRun

# The smallest latency budget written: a p90 of a few microseconds varies 2-3x from run to run (the
# timer, the scheduler, the caches), so twice such a figure would fail the next run by chance.
LATENCY_FLOOR_MS = 0.05


@dataclass(frozen=True)
class Measured:
    """The draft recipe's figures from one run of the pipeline (evaluate, validate, ship)."""

    size_bytes: int
    latency_ms: dict[str, float]  # p50, p90, p99 on the host
    task: str
    metric: str
    float_value: float | None
    tflite_value: float | None
    worsening: float | None  # accuracy / AUC drop (a fraction), or the RMSE increase (a ratio)
    worst_sqnr_db: float | None  # None: every output identical to the float model's
    on: str  # the date

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "size_bytes": self.size_bytes,
            "latency_ms": self.latency_ms,
            "task": self.task,
            "metric": self.metric,
            "float": self.float_value,
            "tflite": self.tflite_value,
            "worsening": self.worsening,
            "worst_sqnr_db": self.worst_sqnr_db,
            "date": self.on,
        }


def measure(draft: Path, workdir: Path | None, reporter: Reporter, quiet_native: bool) -> Measured:
    """Run the draft recipe through the pipeline (no bundle) in `workdir` (None: a temporary one, removed)."""
    from edgepack.pipeline import Pipeline
    from edgepack.recipe.load import load_recipe

    scratch = workdir is None
    root = Path(tempfile.mkdtemp(prefix="edgepack-init-")) if workdir is None else workdir
    try:
        pipeline = Pipeline(load_recipe(str(draft)), root, reporter, use_cache=True, quiet_native=quiet_native)
        evaluated = pipeline.evaluate().record
        validation = pipeline.validate()
        size = len(pipeline.shipped().data)
    except EdgepackError as exc:
        exc.hint = ((exc.hint + "; ") if exc.hint else "") + (
            "the first measurement ran the draft recipe: fix the cause, or pass --no-measure to write it unmeasured"
        )
        raise
    finally:
        if scratch:
            shutil.rmtree(root, ignore_errors=True)
    return _figures(evaluated, validation, size)


def _figures(evaluated: Any, validation: dict[str, DeviceRun], size: int) -> Measured:
    host = validation.get("host")  # records.DeviceRun
    latency = (host.latency_ms if host is not None else None) or {}
    metrics = evaluated.metrics
    metric = evaluated.metric
    ref, got = metrics.get("float", {}).get(metric), metrics.get("tflite", {}).get(metric)
    worse = None  # as the gate reckons it: RMSE as a ratio over the float's, accuracy and AUC as a difference
    if ref is not None and got is not None and metric == "rmse":
        worse = got / ref - 1.0 if ref else None
    elif ref is not None and got is not None:
        worse = ref - got
    worst = (evaluated.fidelity or {}).get("worst_sqnr_db")
    return Measured(
        size_bytes=size,
        latency_ms={k: float(latency[k]) for k in ("p50", "p90", "p99") if k in latency},
        task=evaluated.task,
        metric=metric,
        float_value=ref,
        tflite_value=got,
        worsening=None if worse is None else round(float(worse), 6),
        worst_sqnr_db=None if worst is None else float(worst),
        on=date.today().isoformat(),
    )


@dataclass(frozen=True)
class Budget:
    """One budget line: its key, its TOML value, the value itself, and the comment that says where it came from."""

    key: str
    toml: str
    value: Any
    comment: str
    unset: bool = False  # the measurement is beyond what the budget can hold: written as a comment only


def ceil_to(value: float, step: float) -> float:
    """`value` rounded up to a multiple of `step` (immune to float noise such as 0.1 + 0.2)."""
    return round(math.ceil(value / step - 1e-9) * step, 10)


def ceil_sig(value: float, digits: int = 2) -> float:
    """`value` rounded up to `digits` significant digits."""
    if value <= 0:
        return 10.0**-6
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return float(f"{ceil_to(value, step):.{digits}g}")


def budgets_from(measured: Measured, device: str = "host") -> list[Budget]:
    """The budgets of a first measurement: each with room the user can tighten, each saying what was measured."""
    when = f"on {measured.on}: tighten as you need"
    kb = math.ceil(measured.size_bytes / 1000)
    limit_kb = (kb * 11 + 9) // 10  # the next KB, plus 10 %, rounded up
    found = [
        Budget(
            "max_size",
            f'"{limit_kb} KB"',
            f"{limit_kb} KB",
            f"measured {measured.size_bytes:,} B (shipped, with its metadata) {when}",
        )
    ]
    p90 = measured.latency_ms.get("p90")
    if p90 is not None:
        limit = max(LATENCY_FLOOR_MS, ceil_sig(2 * p90))
        floor = f" (2x is under the {LATENCY_FLOOR_MS:g} ms floor: timer noise)" if limit == LATENCY_FLOOR_MS else ""
        found.append(
            Budget(
                "latency_p90_ms",
                f"{{ {device} = {toml_value(limit)} }}",
                {device: limit},
                f"measured p90 {p90:.3g} ms on {device}{floor} {when}",
            )
        )
    found += _task_budget(measured, when)
    sqnr = measured.worst_sqnr_db
    if sqnr is not None and math.isfinite(sqnr):
        wanted = math.floor(sqnr - 3)
        limit = float(min(300, max(-100, wanted)))
        said = f"measured worst output {sqnr:.2f} dB"
        found.append(
            Budget("min_sqnr_db", toml_value(limit), limit, f"{said} {when}")
            if wanted >= -100
            else Budget(
                "min_sqnr_db",
                toml_value(limit),
                limit,
                f"not set: {said}, below the budget's "
                "range (at least -100 dB): the converted model is far from the float one",
                unset=True,
            )
        )
    return found


def _task_budget(measured: Measured, when: str) -> list[Budget]:
    """The task's budget: the measured worsening plus a margin, never below a floor (a fraction or a ratio)."""
    budget = _TASK_BUDGETS.get(measured.task)
    if measured.worsening is None or budget is None:
        return []
    return budget(measured, measured.worsening, measured.float_value or 0.0, measured.tflite_value or 0.0, when)


def _accuracy_budget(measured: Measured, worse: float, ref: float, got: float, when: str) -> list[Budget]:
    limit = min(1.0, max(0.01, ceil_to(worse + 0.005, 0.0001)))
    said = f"{100 * worse:+.2f} points ({100 * ref:.2f} % float, {100 * got:.2f} % int8)"
    return [Budget("max_accuracy_drop", toml_value(limit), limit, f"measured {said} {when}")]


def _rmse_budget(measured: Measured, worse: float, ref: float, got: float, when: str) -> list[Budget]:
    wanted = max(0.05, ceil_to(worse + 0.02, 0.0001))
    limit = min(10.0, wanted)
    said = f"{100 * worse:+.2f} % (RMSE {ref:.4g} float, {got:.4g} int8)"
    if wanted > limit:
        return [
            Budget(
                "max_rmse_increase",
                toml_value(limit),
                limit,
                f"not set: measured {said}, beyond the budget's range (at most 10, i.e. 1000 % worse)",
                unset=True,
            )
        ]
    return [Budget("max_rmse_increase", toml_value(limit), limit, f"measured {said} {when}")]


def _auc_budget(measured: Measured, worse: float, ref: float, got: float, when: str) -> list[Budget]:
    limit = min(1.0, max(0.01, ceil_to(worse + 0.005, 0.0001)))
    said = f"{worse:+.4f} (AUC {ref:.4f} float, {got:.4f} int8)"
    return [Budget("max_auc_drop", toml_value(limit), limit, f"measured {said} {when}")]


_TASK_BUDGETS = {  # fidelity has none of these: its min_sqnr_db comes from the measured SQNR, as any task's
    "classification": _accuracy_budget,
    "regression": _rmse_budget,
    "anomaly": _auc_budget,
}
