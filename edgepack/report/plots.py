"""The report's figures, drawn with matplotlib (Agg, SVG out) from recorded figures only: nothing here
measures or recomputes a model's metrics. Each function returns an SVG document (text as paths: no fonts
to fetch) or None when there is nothing to draw."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

COLOURS = {"main": "#1f77b4", "accent": "#d62728", "muted": "#7f7f7f", "good": "#2ca02c"}


RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "edgepack",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _isolated(draw: Callable[..., str | None]) -> Callable[..., str | None]:
    """Draw under edgepack's style without touching the caller's matplotlib (no pyplot, no global backend
    or rcParams: a notebook's own plots stay as they were)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> str | None:
        import matplotlib

        with matplotlib.rc_context(RC):
            return draw(*args, **kwargs)

    return wrapper


def _subplots(figsize: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _svg(fig: Any) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buffer = io.StringIO()
    fig.tight_layout()
    FigureCanvasSVG(fig).print_svg(buffer, metadata={"Date": None})
    return buffer.getvalue()


@_isolated
def metric_by_stage(stages: list[tuple[str, float]], metric: str, percent: bool) -> str | None:
    """The task's metric after each stage (float model, each optimize stage, the .tflite)."""
    if not stages:
        return None
    fig, ax = _subplots(figsize=(6.4, 2.8))
    names = [name for name, _ in stages]
    values = [100 * v if percent else v for _, v in stages]
    ax.plot(range(len(values)), values, marker="o", color=COLOURS["main"])
    for x, value in enumerate(values):
        ax.annotate(
            f"{value:.2f}" if percent else f"{value:.4g}",
            (x, value),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
        )
    ax.set_xticks(range(len(names)), names, rotation=15, ha="right")
    ax.set_ylabel(f"{metric} (%)" if percent else metric)
    ax.set_title(f"{metric} after each stage (test split)")
    low, high = min(values), max(values)
    pad = max(0.5 if percent else 0.01 * abs(high), (high - low) * 0.3)
    ax.set_ylim(low - pad, high + pad)
    return _svg(fig)


@_isolated
def latency(devices: dict[str, dict[str, float]]) -> str | None:
    """Per device its recorded distribution: min-max whisker, mean +- std box, p50/p90/p99 marks."""
    if not devices:
        return None
    fig, ax = _subplots(figsize=(6.4, 0.9 + 0.7 * len(devices)))
    marks = {
        "p50": ("|", COLOURS["main"]),
        "p90": ("D", COLOURS["accent"]),
        "p95": ("s", COLOURS["accent"]),
        "p99": ("^", COLOURS["muted"]),
    }
    for y, figures in enumerate(devices.values()):
        if "min" in figures and "max" in figures:
            ax.plot([figures["min"], figures["max"]], [y, y], color=COLOURS["muted"], linewidth=1)
        if "mean" in figures and "std" in figures:
            ax.barh(
                y,
                2 * figures["std"],
                left=figures["mean"] - figures["std"],
                height=0.35,
                color=COLOURS["main"],
                alpha=0.25,
            )
        for key, (marker, colour) in marks.items():
            if key in figures:
                ax.plot(
                    figures[key],
                    y,
                    marker=marker,
                    color=colour,
                    markersize=8,
                    linestyle="none",
                    label=key if y == 0 else None,
                )
    ax.set_yticks(range(len(devices)), list(devices))
    ax.set_xlabel("latency (ms)")
    ax.set_title("latency per device as recorded (whisker: min-max; box: mean +- std)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(-0.6, len(devices) - 0.4)
    return _svg(fig)


@_isolated
def quant_error(layers: list[tuple[str, float]]) -> str | None:
    """Each op's output error against float, in quantization steps (RMSE / scale)."""
    if not layers:
        return None
    fig, ax = _subplots(figsize=(6.4, 0.8 + 0.28 * len(layers)))
    names = [name[:40] for name, _ in layers]
    ax.barh(range(len(layers)), [v for _, v in layers], color=COLOURS["main"])
    ax.set_yticks(range(len(layers)), names)
    ax.invert_yaxis()
    ax.set_xlabel("RMSE / quantization step")
    ax.set_title("per-layer quantization error against float")
    return _svg(fig)


@_isolated
def activation_memory(live: list[int], op_names: list[str], peak_at: int | None) -> str | None:
    """Bytes of activations live at each op, the peak marked with its op."""
    if not live:
        return None
    fig, ax = _subplots(figsize=(6.4, 2.8))
    ax.step(range(len(live)), live, where="mid", color=COLOURS["main"])
    ax.fill_between(range(len(live)), live, step="mid", alpha=0.2, color=COLOURS["main"])
    if peak_at is not None:
        ax.plot(peak_at, live[peak_at], marker="o", color=COLOURS["accent"])
        ax.annotate(
            f"peak {live[peak_at]:,} B at op {peak_at} {op_names[peak_at]}",
            (peak_at, live[peak_at]),
            textcoords="offset points",
            xytext=(8, -4),
            color=COLOURS["accent"],
        )
    ax.set_xlabel("op index")
    ax.set_ylabel("live activation bytes")
    ax.set_ylim(0, max(live) * 1.25 or 1)
    ax.set_title("activation memory across ops (from tensor lifetimes)")
    return _svg(fig)


@_isolated
def pareto(candidates: list[dict[str, Any]], metric: str, percent: bool) -> str | None:
    """The search's candidates: size against the metric, the Pareto front (over size, latency, arena and the
    metric: a point on it may look beaten in this plane) joined, the pick ringed."""
    points = [c for c in candidates if c.get("value") is not None]
    if not points:
        return None
    fig, ax = _subplots(figsize=(6.4, 3.2))
    scale = 100 if percent else 1

    def xy(c: dict[str, Any]) -> tuple[float, float]:
        return c["size_bytes"] / 1000, c["value"] * scale

    front = sorted((c for c in points if c.get("pareto")), key=lambda c: c["size_bytes"])
    ax.scatter(*zip(*(xy(c) for c in points)), color=COLOURS["muted"], label="candidate", zorder=2)
    if front:
        ax.plot(*zip(*(xy(c) for c in front)), marker="o", color=COLOURS["main"], label="Pareto front", zorder=3)
    for c in points:
        ax.annotate(c["mode"], xy(c), textcoords="offset points", xytext=(5, 5))
        if c.get("chosen"):
            ax.scatter(*xy(c), s=180, facecolors="none", edgecolors=COLOURS["accent"], label="pick", zorder=4)
    ax.set_xlabel("size (KB)")
    ax.set_ylabel(f"{metric} (%)" if percent else metric)
    ax.set_title("search: size against the task's metric (front over size, latency, arena, metric)")
    ax.legend(fontsize=8)
    return _svg(fig)
