"""Numbers as the tables show them: percentages, bytes, the task's metric, drops and changes."""

from __future__ import annotations

from typing import Any

METRIC_NAMES = {"accuracy": "accuracy", "rmse": "RMSE", "mae": "MAE", "auc": "ROC AUC", "sqnr_db": "SQNR"}


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals."""
    return "-" if value is None else f"{100 * value:.2f} %"


def size(value: int) -> str:
    """Bytes with a KB figure beside them."""
    return f"{value:,} B ({value / 1000:.1f} KB)"


def figure(metric: str, value: float | None) -> str:
    """A metric's value as people read it: accuracy and AUC as a percentage, SQNR in dB, RMSE as a number."""
    if value is None:
        return "identical" if metric == "sqnr_db" else "-"
    if metric == "accuracy":
        return pct(value)
    if metric == "auc":
        return f"{value:.4f}"
    if metric == "sqnr_db":
        return f"{value:.2f} dB"
    return f"{value:.6g}"


def drop_text(metric: str, drop: float) -> str:
    """How much worse the .tflite is: points of accuracy lost, AUC lost, RMSE gained."""
    if metric == "accuracy":
        return f"{100 * drop:+.2f} points"
    if metric == "auc":
        return f"{drop:+.4f}"
    return f"{drop:+.6g}"


def budget_value(value: float | None, unit: str, signed: bool = False) -> str:
    """A budget's limit, measured value or (signed) margin in its unit."""
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{100 * value:+.2f} pts" if signed else f"{100 * value:.2f} %"
    if unit == "bytes":
        return f"{value:+,.0f} B" if signed else f"{value:,.0f} B"
    if unit == "inferences/s":
        return f"{value:+,.0f}/s" if signed else f"{value:,.0f}/s"
    if unit == "ratio":
        return f"{100 * value:+.2f} %" if signed else f"{100 * value:.2f} %"
    if not unit:
        return f"{value:+.6g}" if signed else f"{value:.6g}"
    return f"{value:+.3f} {unit}" if signed else f"{value:.3f} {unit}"


def change_text(change: Any) -> str:
    """A change as people read it: points of accuracy, bytes or ms with the relative change beside them."""
    delta = change.change
    if delta is None:
        return "-"
    if change.unit == "fraction":
        return f"{100 * delta:+.2f} pts"
    relative = change.relative
    rel = "" if relative is None or change.unit == "ops" else f" ({100 * relative:+.2f} %)"
    if change.unit in ("bytes", "MACs", "ops"):
        return f"{delta:+,.0f}" + (" B" if change.unit == "bytes" else "") + rel
    if change.unit == "ms":
        return f"{delta:+.4f} ms{rel}"
    return f"{delta:+.4g}{rel}"


def compared_value(value: float | None, unit: str) -> str:
    """One side of a comparison (old or new) in its unit."""
    if value is None:
        return "-"
    if unit == "fraction":
        return pct(value)
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit in ("MACs", "ops"):
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:.4f} ms"
    return f"{value:.4g}"


def latency_figures(latency: dict[str, Any]) -> dict[str, float]:
    """Three percentiles of a device's latency (p50/p90/p99, or what a benchmark binary gives)."""
    keys = [key for key in ("p50", "p90", "p95", "p99") if latency.get(key) is not None][:3] or ["mean"]
    return {key: float(latency[key]) for key in keys}


def arena_text(arena: dict[str, Any]) -> str:
    """The measured TFLM arena and its split, as one line."""
    split = (
        f" ({arena['non_persistent']:,} B planned buffers + {arena['persistent']:,} B persistent)"
        if arena.get("non_persistent") is not None and arena.get("persistent") is not None
        else ""
    )
    return f"{arena['bytes']:,} B{split}"
