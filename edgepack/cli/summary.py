"""Tables people read at the end of a command: results per stage and the budget report."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from edgepack.cli.mcu_tables import arena_text

if TYPE_CHECKING:
    from rich.table import Table

    from edgepack.gate.budgets import BudgetResult


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals."""
    return "-" if value is None else f"{100 * value:.2f} %"


def size(value: int) -> str:
    """Bytes with a KB figure beside them."""
    return f"{value:,} B ({value / 1000:.1f} KB)"


METRIC_NAMES = {"accuracy": "accuracy", "rmse": "RMSE", "mae": "MAE", "auc": "ROC AUC", "sqnr_db": "SQNR"}


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


def results_table(
    evaluate: Any,
    convert: Any,
    validation: dict[str, dict[str, Any]],
    shipped_bytes: int | None = None,
    compression: dict[str, Any] | None = None,
) -> Table:
    """The task's metric float vs .tflite, fidelity per output, size (and as shipped, with its metadata or
    LUT-compressed, as the `compression` record says: `shipped_bytes`), latency per device."""
    from rich.table import Table

    table = Table(title="edgepack results", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
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
        coverage = ""
        if "classes" in cal:
            missing = cal["missing_classes"]
            coverage = f", {cal['classes']}/{cal['test_classes']} classes" + (
                f" [yellow](misses {', '.join(missing[:3])})[/]" if missing else ""
            )
        table.add_row(
            "calibration sample",
            f"{cal['samples']} (seed {cal['seed']}){coverage}, "
            f"{100 * cal['input_range']['test_outside_fraction']:.2f} % of test inputs outside its range",
        )
    table.add_row("model size, gzip -9", size(convert.gzip_bytes))
    for name, rec in validation.items():
        lat = rec["latency_ms"]
        where = f"{name} (emulated)" if rec.get("emulated") else name
        if lat is not None:
            shown = latency_figures(lat)
            table.add_row(
                f"latency on {where} {' / '.join(shown)}", " / ".join(f"{v:.3f}" for v in shown.values()) + " ms"
            )
        if rec.get("arena"):
            table.add_row(f"TFLM arena on {name} (measured)", arena_text(rec["arena"]))
        if rec.get("estimate"):
            est = rec["estimate"]
            table.add_row(
                f"inference on {name} (estimated by Vela, {est['clock_mhz']:g} MHz)",
                f"{est['inference_ms']:.3f} ms, {est['npu_ops']} NPU / {est['cpu_ops']} CPU ops",
            )
        if rec.get("peak_rss_kb") is not None:
            table.add_row(f"peak RSS on {name}", f"{rec['peak_rss_kb'] / 1024:.1f} MiB")
        elif rec.get("memory_delta_kb") is not None:
            table.add_row(f"memory growth on {name} (benchmark_model)", f"{rec['memory_delta_kb'] / 1024:.1f} MiB")
        check = rec.get("parity", {})
        if check and not check.get("reference"):
            table.add_row(f"outputs on {name} vs host", parity_text(check))
    return table


def latency_figures(latency: dict[str, Any]) -> dict[str, float]:
    """Three percentiles of a device's latency (p50/p90/p99, or what a benchmark binary gives)."""
    keys = [key for key in ("p50", "p90", "p95", "p99") if latency.get(key) is not None][:3] or ["mean"]
    return {key: float(latency[key]) for key in keys}


def parity_text(check: dict[str, Any]) -> str:
    """A device's output parity against the host, as a few words."""
    if check["ok"] is None:
        return str(check["why"])
    if not check["ok"]:
        return f"[red]DIFFER[/red]: {check['why']}"
    if check.get("identical"):
        return "identical"
    steps = check.get("tolerance_steps")
    within = f" (within the {steps} step(s) allowed)" if steps else ""
    return f"max diff {check['max_abs_diff']:.3g}{within}"


def stages_table(train: Any, optimize: Any, convert: Any, evaluate: Any) -> Table:
    """One row per step from the float model to the .tflite: the task's metric, parameters, sparsity, size."""
    from rich.table import Table

    metric = evaluate.metric
    table = Table(title="after each stage", title_justify="left")
    for column in ("stage", METRIC_NAMES.get(metric, metric), "params", "kernel zeros", "size"):
        table.add_column(column, justify="left" if column == "stage" else "right")
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
    from rich.table import Table

    table = Table(title=f"kernels in the {convert.mode} .tflite", title_justify="left")
    for column in ("layer", "op", "dtype", "shape", "sparsity", "distinct values", "max non-zeros / 4"):
        table.add_column(column, justify="left" if column in ("layer", "op", "dtype") else "right")
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
    from rich.table import Table

    report = convert.quant_error
    rows = report["layers"]
    table = Table(
        title=f"quantization error, worst {min(top, len(rows))} of {len(rows)} ops "
        f"(full list: {report['file']} in the convert stage and the manifest)",
        title_justify="left",
    )
    for column in ("layer", "op", "RMSE / step", "mean abs error", "max abs error"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
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
    from rich.table import Table

    from edgepack.tasks.judge import criterion_text

    report = convert.fallback
    criterion, metric = report["criterion"], report["metric"]
    title = "ops kept in float"
    if criterion:
        title += (
            f" (criterion: {criterion_text(criterion, metric)}: "
            + ("[green]met[/]" if report["met"] else "[red]not met, the best attempt is kept[/]")
            + ")"
        )
    table = Table(title=title, title_justify="left")
    table.add_column("measure")
    table.add_column("plain int8", justify="right")
    table.add_column("with ops in float", justify="right")
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


def search_table(search: dict[str, Any]) -> Table:
    """Every candidate: size, latency, arena, the task's metric; which meet the criterion, the Pareto front
    (over all four), the pick and why."""
    from rich.table import Table

    from edgepack.tasks.judge import criterion_text, search_goal

    metric = search.get("metric", "accuracy")
    verdict = "[green]met[/]" if search["met"] else "[red]no candidate meets it: the best is kept[/]"
    criterion = {**(search.get("criterion") or {}), "allowed_drop": search["allowed_drop"]}
    title = (
        f"search: the {search_goal(search)} with {criterion_text(criterion, metric)} ({verdict}); "
        f"latency on {search['device']}"
    )
    if search.get("why"):
        title += f"\n{search['chosen']} kept: {search['why']}"
    table = Table(title=title, title_justify="left")
    name = METRIC_NAMES.get(metric, metric)
    columns = ("candidate", "size", f"p50 on {search['device']}", "arena", name, "worse by", "SQNR", "meets", "Pareto")
    for column in (*columns, "pick"):
        table.add_column(column, justify="left" if column in ("candidate", "meets", "Pareto", "pick") else "right")
    for c in search["candidates"]:
        worse = "-" if c["drop"] is None else drop_text(metric, c["drop"])
        table.add_row(
            c["mode"],
            f"{c['size_bytes']:,} B",
            f"{c['latency_p50_ms']:.3f} ms",
            "-" if c.get("arena_bytes") is None else f"{c['arena_bytes']:,} B",
            figure(metric, c["value"]),
            worse,
            figure("sqnr_db", c["worst_sqnr_db"]),
            "yes" if c["meets"] else "[red]no[/]",
            "yes" if c["pareto"] else "",
            "[bold]<-[/]" if c["chosen"] else "",
        )
    return table


def tune_table(search: dict[str, Any], metric: str) -> Table:
    """An "auto" optimize value (`final_sparsity`, `rank`): each try's value, its fine-tuned model's
    metric, the budgets, the pick."""
    from rich.table import Table

    tries, field = search["tries"], search.get("field", "final_sparsity")  # records before rank search: sparsity
    table = Table(title=tune_summary(search), title_justify="left")
    for column in (field, METRIC_NAMES.get(metric, metric), "budgets", "time", "pick"):
        table.add_column(column, justify="right" if column in (field, "time") else "left")
    for t in tries:
        failed = [b["name"] for b in t["budgets"] if not b["passed"]]
        table.add_row(
            f"{t[field]:g}",
            figure(metric, t["metrics"].get(metric)),
            "hold" if not failed else f"[red]break {', '.join(failed)}[/]",
            "cached" if t["cached"] else f"{t['seconds']:.1f} s",
            "[bold]<-[/]" if t["chosen"] else "",
        )
    return table


def tune_summary(search: dict[str, Any]) -> str:
    """One line: which stage's value was searched, what was kept and why, how many tries in how long."""
    return (
        f"optimize[{search['stage']}].{search.get('field', 'final_sparsity')} = 'auto': {search['chosen']:g} kept ({search['why']}); "
        f"{len(search['tries'])} of {len(search['grid'])} grid values tried in {search['seconds']:.1f} s"
    )


def granularity_table(choice: dict[str, Any]) -> Table:
    """`dense_granularity = "auto"`: both conversions, their figures, the budgets each holds, the pick and why."""
    from rich.table import Table

    metric = choice.get("metric", "accuracy")
    table = Table(title=f"Dense layers: {choice['chosen']} kept ({choice['why']})", title_justify="left")
    for column in ("Dense layers", "size", METRIC_NAMES.get(metric, metric), "worse by", "SQNR", "budgets", "pick"):
        table.add_column(column, justify="left" if column in ("Dense layers", "budgets", "pick") else "right")
    for c in choice["candidates"]:
        failed = [b["name"] for b in c["budgets"] if not b["passed"]]
        table.add_row(
            c["dense_granularity"],
            f"{c['size_bytes']:,} B",
            figure(metric, c["value"]),
            "-" if c["drop"] is None else drop_text(metric, c["drop"]),
            figure("sqnr_db", c["worst_sqnr_db"]),
            "hold" if not failed else f"[red]break {', '.join(failed)}[/]",
            "[bold]<-[/]" if c["chosen"] else "",
        )
    return table


def compression_table(record: dict[str, Any]) -> Table:
    """`compression = "lut"`: each compressed tensor (bits, table mode, bytes before and after), the file's
    size before and after, and TFLM's arena with what it includes."""
    from rich.table import Table

    ratio = f"{record['ratio']:.2f}x" if record.get("ratio") is not None else "-"
    title = (
        f"TFLM look-up-table compression: {record['size_before_bytes']:,} B -> {record['size_bytes']:,} B ({ratio}), "
        f"{len(record['tensors'])} tensor(s), {len(record.get('skipped') or [])} left as they were"
    )
    arena = record.get("arena") or {}
    if arena.get("how") == "measured":
        plain = arena.get("uncompressed_model_bytes")
        title += f"; arena {arena['bytes']:,} B" + (
            f" ({plain:,} B uncompressed + {arena['decoded_bytes']:,} B of decoded tensors)"
            if plain is not None
            else ""
        )
    table = Table(title=title, title_justify="left")
    for column in ("tensor", "values", "bits", "tables", "before", "after"):
        table.add_column(column, justify="left" if column in ("tensor", "tables") else "right")
    for t in record["tensors"]:
        tables = "1 (per tensor)" if t["mode"] == "per-tensor" else f"{t['tables']} (per channel, axis {t['axis']})"
        table.add_row(
            t["name"], str(t["values"]), str(t["bits"]), tables, f"{t['bytes_before']:,} B", f"{t['bytes_after']:,} B"
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


def budget_table(results: list[BudgetResult]) -> Table:
    """One row per budget: limit, measured, margin, pass/fail."""
    from rich.table import Table

    table = Table(title="budgets", title_justify="left")
    for column, justify in (
        ("budget", "left"),
        ("limit", "right"),
        ("measured", "right"),
        ("margin", "right"),
        ("result", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.label,
            _value(r.limit, r.unit),
            _value(r.measured, r.unit),
            _value(r.margin, r.unit, signed=True),
            "[green]pass[/]" if r.passed else "[bold red]FAIL[/]",
        )
    if not results:
        table.add_row("(no budgets in the recipe)", "", "", "", "")
    return table


def failures(results: list[BudgetResult]) -> list[str]:
    """One line per exceeded budget."""
    from edgepack.gate.junit import describe

    return [describe(r) for r in results if not r.passed]


def _value(value: float | None, unit: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{100 * value:+.2f} pts" if signed else f"{100 * value:.2f} %"
    if unit == "bytes":
        return f"{value:+,.0f} B" if signed else f"{value:,.0f} B"
    if unit == "ratio":
        return f"{100 * value:+.2f} %" if signed else f"{100 * value:.2f} %"
    if not unit:
        return f"{value:+.6g}" if signed else f"{value:.6g}"
    return f"{value:+.3f} {unit}" if signed else f"{value:.3f} {unit}"


def compare_table(comparison: Any, title: str | None = None) -> Table:
    """Old, new and the change of every figure two bundles share (`gate.compare.Comparison`); regressions in red."""
    from rich.table import Table

    table = Table(title=title or f"compare {comparison.old} -> {comparison.new}", title_justify="left")
    for column, justify in (("figure", "left"), ("old", "right"), ("new", "right"), ("change", "right"), ("", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for c in comparison.changes:
        if c.old is None and c.new is None:
            continue
        flag = "[bold red]worse[/]" if c.regression else ("worse, within noise" if c.worse else "")
        if not flag and c.better and c.change:
            flag = "[green]better[/]"
        table.add_row(c.name, _figure(c.old, c.unit), _figure(c.new, c.unit), change_text(c), flag)
    return table


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


def _figure(value: float | None, unit: str) -> str:
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
