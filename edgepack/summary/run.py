"""The tables of a run: results (the task's metric float vs .tflite, fidelity, size, latency per device), after
each stage, kernels in the .tflite, quantization error, ops kept in float."""

from __future__ import annotations

import math
from typing import Any

from edgepack.records import DeviceRun
from edgepack.summary.figures import METRIC_NAMES, arena_text, drop_text, figure, latency_figures, size
from edgepack.table import Column, Piece, Span, Table


def results_table(
    evaluate: Any,
    convert: Any,
    validation: dict[str, DeviceRun],
    shipped_bytes: int | None = None,
    compression: dict[str, Any] | None = None,
) -> Table:
    """The task's metric float vs .tflite, fidelity per output, size (and as shipped, with its metadata or
    LUT-compressed, as the `compression` record says: `shipped_bytes`), latency per device."""
    table = Table.of("edgepack results", ["measure", Column("value", "right")])
    mode, metric = convert.mode, evaluate.metric
    name = METRIC_NAMES.get(metric, metric)
    if evaluate.float is not None:
        table.add_row(f"{name}, float (Keras)", figure(metric, evaluate.float))
    for extra, value in evaluate.metrics["tflite"].items():
        if extra != metric and extra in METRIC_NAMES:
            table.add_row(
                f"{METRIC_NAMES[extra]}, float / {mode} .tflite",
                f"{figure(extra, evaluate.metrics['float'].get(extra))} / {figure(extra, value)}",
            )
    if metric in evaluate.metrics["tflite"]:
        table.add_row(f"{name}, {mode} .tflite (LiteRT)", figure(metric, evaluate.tflite))
    if evaluate.drop is not None:
        verb = "drop" if metric in ("accuracy", "auc") else "rise"
        table.add_row(f"{name} {verb}, float -> {mode}", drop_text(metric, evaluate.drop))
    for out in evaluate.fidelity.get("outputs", []):
        which = out["name"] if len(evaluate.fidelity["outputs"]) > 1 else "output"
        table.add_row(
            f"{which}: {mode} vs float, SQNR / cosine / max error",
            f"{figure('sqnr_db', out['sqnr_db'])} / {out['cosine']:.6f} / {out['max_abs_error']:.4g}",
        )
    table.add_row(f"model size ({mode}, {convert.io} I/O)", size(convert.size_bytes))
    if shipped_bytes is not None and shipped_bytes != convert.size_bytes:
        what = "LUT-compressed for TFLite Micro" if compression else "with its TFLite metadata"
        table.add_row(f"model size {what} (shipped)", size(shipped_bytes))
    cal = convert.calibration or {}
    if mode in ("int8", "int16x8") and "input_range" in cal:
        table.add_row("calibration sample", _calibration(cal))
    table.add_row("model size, gzip -9", size(convert.gzip_bytes))
    for device, rec in validation.items():
        _device_rows(table, device, rec)
    return table


def _calibration(cal: dict[str, Any]) -> list[Piece]:
    pieces: list[Piece] = [f"{cal['samples']} (seed {cal['seed']})"]
    if "classes" in cal:
        missing = cal["missing_classes"]
        pieces.append(f", {cal['classes']}/{cal['test_classes']} classes")
        if missing:
            pieces += [" ", Span(f"(misses {', '.join(missing[:3])})", "warn")]
    outside = cal["input_range"]["test_outside_fraction"]
    pieces.append(f", {100 * outside:.2f} % of test inputs outside its range")
    return pieces


def _device_rows(table: Table, name: str, rec: DeviceRun) -> None:
    """A device's rows of the results: latency, arena, Vela's estimate, memory, output parity."""
    lat = rec.latency_ms
    where = f"{name} (emulated)" if rec.emulated else name
    if lat is not None:
        shown = latency_figures(lat)
        table.add_row(f"latency on {where} {' / '.join(shown)}", " / ".join(f"{v:.3f}" for v in shown.values()) + " ms")
    if rec.arena:
        table.add_row(f"TFLM arena on {name} (measured)", arena_text(rec.arena))
    if rec.estimate:
        est = rec.estimate
        table.add_row(
            f"inference on {name} (estimated by Vela, {est['clock_mhz']:g} MHz)",
            f"{est['inference_ms']:.3f} ms, {est['npu_ops']} NPU / {est['cpu_ops']} CPU ops",
        )
    if rec.peak_rss_kb is not None:
        table.add_row(f"peak RSS on {name}", f"{rec.peak_rss_kb / 1024:.1f} MiB")
    elif rec.extra.get("memory_delta_kb") is not None:
        table.add_row(f"memory growth on {name} (benchmark_model)", f"{rec.extra['memory_delta_kb'] / 1024:.1f} MiB")
    check = rec.parity
    if check and not check.get("reference"):
        table.add_row(f"outputs on {name} vs host", parity_text(check))


def parity_text(check: dict[str, Any]) -> list[Piece]:
    """A device's output parity against the host, as a few words."""
    if check["ok"] is None:
        return [str(check["why"])]
    if not check["ok"]:
        return [Span("DIFFER", "bad"), f": {check['why']}"]
    if check.get("identical"):
        return ["identical"]
    steps = check.get("tolerance_steps")
    within = f" (within the {steps} step(s) allowed)" if steps else ""
    return [f"max diff {check['max_abs_diff']:.3g}{within}"]


def stages_table(train: Any, optimize: Any, convert: Any, evaluate: Any) -> Table:
    """One row per step from the float model to the .tflite: the task's metric, parameters, sparsity, size."""
    metric = evaluate.metric
    columns = ("stage", METRIC_NAMES.get(metric, metric), "params", "kernel zeros", "size")
    table = Table.of("after each stage", [Column(c, "left" if c == "stage" else "right") for c in columns])
    table.add_row("train (float)", figure(metric, train.test_metrics.get(metric)), f"{train.params:,}", "-", "-")
    for rec in optimize.stages:
        table.add_row(
            f"{rec['stage']}: {_stage_name(rec)}",
            figure(metric, rec["test_metrics"].get(metric)),
            f"{rec['params']:,}",
            f"{rec['kernel_zeros']:.2f}",
            _weights_size(rec["weights_gzip_bytes"]),
        )
    weights = convert.weights
    sizes = {k: float(math.prod(v["shape"])) for k, v in weights.items()}
    zeros = sum(v["sparsity"] * sizes[k] for k, v in weights.items()) / max(1.0, sum(sizes.values()))
    table.add_row(
        f"{convert.mode} .tflite",
        figure(metric, evaluate.tflite),
        "-",
        f"{zeros:.2f}",
        f"{convert.size_bytes:,} B ({convert.gzip_bytes:,} B gz)",
    )
    return table


def weights_table(convert: Any) -> Table:
    """What pruning and clustering left in each kernel of the .tflite."""
    columns = ("layer", "op", "dtype", "shape", "sparsity", "distinct values", "max non-zeros / 4")
    table = Table.of(
        f"kernels in the {convert.mode} .tflite",
        [Column(c, "left" if c in ("layer", "op", "dtype") else "right") for c in columns],
    )
    for layer, w in convert.weights.items():
        per4 = "-" if w["max_nonzeros_per_4"] is None else str(w["max_nonzeros_per_4"])
        table.add_row(
            layer,
            w["op"],
            w.get("dtype") or "-",  # int4 where the kernel is 4-bit
            "x".join(map(str, w["shape"])),
            f"{w['sparsity']:.2f}",
            f"{w['unique_values']:,} ({w['unique_per_channel_max']:,}/channel)",
            per4,
        )
    return table


def quant_error_table(convert: Any, top: int = 5) -> Table:
    """The layers int8 hurts most: error of each op's output against float, in quantization steps."""
    report = convert.quant_error
    rows = report["layers"]
    columns = ("layer", "op", "RMSE / step", "mean abs error", "max abs error")
    table = Table.of(
        f"quantization error, worst {min(top, len(rows))} of {len(rows)} ops "
        f"(full list: {report['file']} in the convert stage and the manifest)",
        [Column(c, "left" if c in ("layer", "op") else "right") for c in columns],
    )
    for row in rows[:top]:
        ratio = row["rmse_over_scale"]
        table.add_row(
            row["layer"] or row["tensor"][:40],
            row["op"],
            "-" if ratio is None else f"{ratio:.2f}",
            f"{row['mean_abs_error']:.4g}",
            f"{row['max_abs_error']:.4g}",
        )
    return table


def fallback_table(convert: Any) -> Table:
    """The ops kept in float, and what it bought (the task's metric) and cost (size, host latency)."""
    from edgepack.evaluate.judge import criterion_text

    report = convert.fallback
    criterion, metric = report["criterion"], report["metric"]
    title: list[Piece] = ["ops kept in float"]
    if criterion:
        verdict = Span("met", "good") if report["met"] else Span("not met, the best attempt is kept", "bad")
        title += [f" (criterion: {criterion_text(criterion, metric)}: ", verdict, ")"]
    table = Table.of(title, ["measure", Column("plain int8", "right"), Column("with ops in float", "right")])
    kept = (
        ", ".join(
            f"{k['layer'] or k['tensor'][:30]} ({k['op']}{', keep_float' if k['forced'] else ''})"
            for k in report["kept_float"]
        )
        or "none"
    )
    table.add_row("ops in float", "none", kept)
    name = METRIC_NAMES.get(metric, metric)
    float_value = "" if report["float_value"] is None else f" (float model: {figure(metric, report['float_value'])})"
    table.add_row(f"{name}{float_value}", figure(metric, report["plain_int8_value"]), figure(metric, report["value"]))
    table.add_row("size", f"{report['plain_int8_size_bytes']:,} B", f"{report['size_bytes']:,} B")
    latency = report["host_latency_ms"]
    table.add_row("latency on this machine, median", f"{latency['plain_int8']:.3f} ms", f"{latency['result']:.3f} ms")
    table.add_row(
        "attempts",
        "",
        ", ".join(f"{a['extra_float_ops']} op(s): {figure(metric, a['value'])}" for a in report["attempts"]),
    )
    return table


def _weights_size(value: int | None) -> str:
    return "-" if value is None else f"{value:,} B weights gz"


def _stage_name(rec: dict[str, Any]) -> str:
    extra = {
        "prune": rec.get("structure"),
        "qat": rec.get("scheme"),
        "cluster": f"{rec.get('clusters')} clusters",
        "distill": f"student {rec.get('param_ratio', 0):.1%} of teacher",
        "low-rank": _low_rank_detail(rec),
    }
    detail = extra.get(rec["kind"])
    return f"{rec['kind']} ({detail})" if detail else rec["kind"]


def _low_rank_detail(rec: dict[str, Any]) -> str:
    """'energy 0.9, 8/10 factored' (or 'rank 16, ...'): the target and the layers it factored of those selected."""
    target = f"rank {rec['rank']}" if rec.get("rank") is not None else f"energy {rec.get('energy')}"
    totals = rec.get("totals", {})
    considered = totals.get("factored", 0) + totals.get("kept", 0)
    return f"{target}, {totals.get('factored', 0)}/{considered} factored"
