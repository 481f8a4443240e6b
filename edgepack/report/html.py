"""`report.html`: one self-contained page about a run, from its manifest, measurements.json and model.

It opens offline: no scripts, no fonts, no stylesheets or images from anywhere (a Content-Security-Policy
meta tag, `default-src 'none'; img-src data:; style-src 'unsafe-inline'`, makes any fetch impossible);
the plots are inline SVG (`data:` images). The tables are the terminal's (`edgepack.summary`), and key
figures carry their raw value in `data-value` for scripts. Like measurements.json it is evidence of a
run: not an artifact of the manifest, not in the zip.
"""

from __future__ import annotations

import base64
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.table import Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; } th { background: #f4f4f4; text-align: left; }
td.right { text-align: right; } .fail { color: #c00; font-weight: bold; } .pass { color: #080; }
img.plot { display: block; max-width: 100%; margin: 0.5em 0; } .note { color: #666; }
code { font-size: 0.9em; }
"""


def render_report(
    manifest: dict[str, Any], run: dict[str, Any] | None, model: bytes | None, comparison: Any = None
) -> str:
    """The page. `run` is measurements.json (None: no latency, budgets or search recorded), `model` the
    bundle's model file (the activation memory curve), `comparison` a `gate.compare.Comparison` against
    a baseline."""
    run = run or {}
    metrics = manifest.get("metrics") or {}
    metric = metrics.get("metric", "accuracy")
    sections = [
        _identity(manifest, run),
        _budgets(run),
        _stages(manifest, metric),
        _latency(run),
        _throughput(run),
        _quant_error(manifest),
        _memory(manifest, model),
        _ethos_u(run),
        _search(run, metric),
        _granularity(manifest),
        _compression(manifest),
        _tuned(manifest, metric),
    ]
    if comparison is not None:
        sections.append(_baseline(comparison))
    title = f"edgepack report: {manifest.get('name', 'bundle')} {manifest.get('version') or ''}".strip()
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n" + "\n".join(s for s in sections if s) + "\n</body>\n</html>\n"
    )


def table_html(table: Table, css_id: str | None = None) -> str:
    """A table (as the terminal shows it) as an HTML table, its cells' text without tones; FAIL cells marked."""
    from edgepack.table import plain

    head = "".join(f"<th>{escape(c.header)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row):
            text = plain(value)
            css = {"FAIL": "fail", "pass": "pass", "worse": "fail"}.get(text, "")
            css = " ".join(filter(None, [css, "right" if column.align == "right" else ""]))
            cells.append(f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{css_id}"' if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _plot(svg: str | None, css_id: str, alt: str) -> str:
    if svg is None:
        return ""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img class="plot" id="{css_id}" alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _figures(css_id: str, rows: list[tuple[str, str, Any, str]]) -> str:
    """A two-column table; each row: key (data-key), label, raw value (data-value), shown text."""
    body = "".join(
        f'<tr data-key="{escape(key)}" data-value="{escape(str(raw))}"><th>{escape(label)}</th>'
        f"<td>{escape(text)}</td></tr>"
        for key, label, raw, text in rows
    )
    return f'<table id="{css_id}"><tbody>{body}</tbody></table>'


def _identity(manifest: dict[str, Any], run: dict[str, Any]) -> str:
    model, recipe = manifest.get("model") or {}, manifest.get("recipe") or {}
    rows = [
        ("name", "recipe", manifest.get("name"), f"{manifest.get('name')} {manifest.get('version') or ''}"),
        ("recipe.sha256", "recipe sha256", recipe.get("sha256"), f"{recipe.get('sha256')} ({recipe.get('source')})"),
        ("model.sha256", "model sha256", model.get("sha256"), str(model.get("sha256"))),
        ("model.size_bytes", "model size (shipped)", model.get("size_bytes"), f"{model.get('size_bytes', 0):,} B"),
        ("model.mode", "mode, I/O", model.get("mode"), f"{model.get('mode')}, {model.get('io')} I/O"),
    ]
    rows += [
        (f"toolchain.{name}", name, version, version) for name, version in (manifest.get("toolchain") or {}).items()
    ]
    if run.get("measured_at"):
        host = run.get("host") or {}
        rows.append(
            (
                "measured_at",
                "measured",
                run["measured_at"],
                f"{run['measured_at']} on {host.get('node')} ({host.get('machine')}, Python {host.get('python')})",
            )
        )
    description = manifest.get("description") or ""
    return (f"<h2>Run</h2>\n<p>{escape(description)}</p>\n" if description else "<h2>Run</h2>\n") + _figures(
        "identity", rows
    )


def _budgets(run: dict[str, Any]) -> str:
    from edgepack.gate.budgets import BudgetResult
    from edgepack.summary.gate import budget_table

    gate = run.get("gate")
    if not gate:
        return '<h2>Budgets</h2>\n<p class="note">No measurements.json: the budgets were not recorded.</p>'
    results = [BudgetResult(**r) for r in gate.get("results", [])]
    verdict = "every budget holds" if gate.get("passed") else f"{sum(not r.passed for r in results)} exceeded"
    css = "pass" if gate.get("passed") else "fail"
    return f'<h2>Budgets</h2>\n<p class="{css}" id="verdict">{escape(verdict)}</p>\n' + table_html(
        budget_table(results), "budgets"
    )


def _stages(manifest: dict[str, Any], metric: str) -> str:
    from edgepack.report import plots
    from edgepack.summary.figures import METRIC_NAMES, figure

    metrics = manifest.get("metrics") or {}
    stages: list[tuple[str, float]] = []
    if (metrics.get("float") or {}).get(metric) is not None:
        stages.append(("train (float)", metrics["float"][metric]))
    for rec in (manifest.get("optimization") or {}).get("stages") or []:
        value = (rec.get("test_metrics") or {}).get(metric)
        if value is not None:
            stages.append((f"{rec['stage']}: {rec['kind']}", value))
    if (metrics.get("tflite") or {}).get(metric) is not None:
        stages.append((f"{(manifest.get('model') or {}).get('mode')} .tflite", metrics["tflite"][metric]))
    name = METRIC_NAMES.get(metric, metric)
    rows = [(f"stage.{i}", stage, value, figure(metric, value)) for i, (stage, value) in enumerate(stages)]
    return (
        f"<h2>{escape(name)} after each stage</h2>\n"
        + _plot(plots.metric_by_stage(stages, name, metric == "accuracy"), "plot-stages", f"{name} after each stage")
        + _figures("stages", rows)
    )


def _latency(run: dict[str, Any]) -> str:
    from edgepack.bundle.figures import LATENCY_KEYS
    from edgepack.report import plots

    devices = {}
    for device, rec in (run.get("validation") or {}).items():
        figures = rec.get("latency_ms") or {}
        recorded = {k: float(figures[k]) for k in LATENCY_KEYS if figures.get(k) is not None}
        if recorded:
            devices[f"{device} (emulated)" if rec.get("emulated") else device] = recorded
    if not devices:
        return '<h2>Latency</h2>\n<p class="note">No latency was recorded.</p>'
    keys = [k for k in LATENCY_KEYS if any(k in d for d in devices.values())]
    head = "".join(f"<th>{k} (ms)</th>" for k in keys)
    body = "".join(
        f'<tr data-device="{escape(device)}"><th>{escape(device)}</th>'
        + "".join(
            f'<td class="right" data-key="{k}" data-value="{d[k]!r}">{d[k]:.4f}</td>' if k in d else "<td>-</td>"
            for k in keys
        )
        + "</tr>"
        for device, d in devices.items()
    )
    return (
        '<h2>Latency</h2>\n<p class="note">The percentiles the validation recorded (raw samples are not '
        "kept).</p>\n"
        + _plot(plots.latency(devices), "plot-latency", "latency per device")
        + f'<table id="latency"><thead><tr><th>device</th>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _quant_error(manifest: dict[str, Any]) -> str:
    from edgepack.report import plots

    report = manifest.get("quantization_error") or {}
    if not report.get("measured"):
        return (
            '<h2>Per-layer quantization error</h2>\n<p class="note">Not measured: '
            f"{escape(str(report.get('why', 'no record')))}</p>"
        )
    layers = [
        (row.get("layer") or row["tensor"], float(row["rmse_over_scale"]))
        for row in report.get("layers") or []
        if row.get("rmse_over_scale") is not None
    ]
    rows = [(f"quant.{i}", name, value, f"{value:.4g}") for i, (name, value) in enumerate(layers)]
    return (
        "<h2>Per-layer quantization error</h2>\n"
        + _plot(plots.quant_error(layers), "plot-quant-error", "per-layer quantization error")
        + _figures("quant-error", rows)
    )


def live_bytes(model: bytes) -> tuple[list[int], list[str], int | None]:
    """Activation bytes live at each op of the model (from tensor lifetimes), the ops' names and the peak op."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import activation_peak, lifetimes, tensor_bytes

    info = read_model(model)
    live = [0] * len(info.operators)
    for index, (start, end) in lifetimes(info).items():
        for op in range(start, end + 1):
            live[op] += tensor_bytes(info.tensors[index])
    _, at = activation_peak(info)
    return live, [op.op_name for op in info.operators], at


def _memory(manifest: dict[str, Any], model: bytes | None) -> str:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import peak_memory
    from edgepack.report import plots

    if model is None:
        return '<h2>Activation memory</h2>\n<p class="note">The bundle\'s model file is not here.</p>'
    live, names, at = live_bytes(model)
    peak = peak_memory(read_model(model))
    where = (
        f"op {at} {names[at]}" + (f" (layer {peak.layer})" if peak.layer else "") if at is not None else "before any op"
    )
    rows = [
        ("memory.peak_bytes", "activation peak", peak.bytes, f"{peak.bytes:,} B"),
        ("memory.peak_op", "where", "" if at is None else names[at], where),
    ]
    arena = (manifest.get("memory") or {}).get("arena") or {}
    if arena.get("how") == "measured":
        rows.append(
            (
                "memory.arena",
                "TFLM arena (measured)",
                arena.get("need"),
                f"{arena.get('need', 0):,} B ({arena.get('runtime')})",
            )
        )
    boards = ""
    if manifest.get("memory"):  # the largest tensors at the peak, the arena, each board's flash and RAM
        from edgepack.records import board_fits
        from edgepack.summary.mcu import memory_table

        boards = table_html(memory_table(manifest["memory"], board_fits(manifest.get("fits"))), "memory-detail")
    return (
        "<h2>Activation memory</h2>\n"
        + _plot(plots.activation_memory(live, names, at), "plot-memory", "activation memory across ops")
        + _figures("memory", rows)
        + boards
    )


def _throughput(run: dict[str, Any]) -> str:
    """The throughput grid per device (threads x batch), the best cell named; the devices that time none."""
    from edgepack.records import device_runs
    from edgepack.summary.throughput import throughput_tables

    tables = throughput_tables(device_runs(run.get("validation")))
    if not tables:
        return ""
    from edgepack.table import plain

    return "<h2>Throughput</h2>\n" + "".join(
        f"<h3>{escape(plain(table.title))}</h3>\n" + table_html(table, f"throughput-{index}")
        for index, table in enumerate(tables)
    )


def _ethos_u(run: dict[str, Any]) -> str:
    """Vela's estimate per Ethos-U device, and its per-layer figures (nothing was run: an estimate)."""
    from edgepack.records import device_runs
    from edgepack.summary.mcu import ethos_u_table

    validation = device_runs(run.get("validation"))  # measurements.json's dicts, read as the records
    table = ethos_u_table(validation)
    if table is None:
        return ""
    parts = [
        '<h2>Ethos-U estimates (Vela)</h2>\n<p class="note">Vela\'s performance estimate for each '
        "accelerator and system configuration: nothing was run.</p>",
        table_html(table, "ethos-u"),
    ]
    for device, rec in validation.items():
        layers = (rec.estimate or {}).get("layers") or []
        if not layers:
            continue
        body = "".join(
            f"<tr><td>{escape(str(row['op']))}</td><td>{escape(str(row['target']))}</td>"
            f'<td class="right">{row["cycles"]:,}</td><td class="right">{row["macs"]:,}</td>'
            f"<td>{escape(str(row['name']))}</td></tr>"
            for row in layers
        )
        parts.append(
            f'<h3>{escape(device)}: per layer</h3>\n<table id="ethos-u-layers-{escape(device)}"><thead><tr>'
            "<th>op</th><th>target</th><th>cycles</th><th>MACs</th><th>name</th></tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )
    return "\n".join(parts)


def _search(run: dict[str, Any], metric: str) -> str:
    from edgepack.report import plots
    from edgepack.summary.figures import METRIC_NAMES
    from edgepack.summary.search import search_table

    search = run.get("search")
    if not search:
        return ""
    name = METRIC_NAMES.get(metric, metric)
    return (
        "<h2>Search</h2>\n"
        + (f"<p>{escape(search['chosen'])} kept: {escape(search['why'])}</p>\n" if search.get("why") else "")
        + _plot(
            plots.pareto(search["candidates"], name, metric == "accuracy"), "plot-pareto", "mode search Pareto front"
        )
        + table_html(search_table(search), "search")
    )


def _compression(manifest: dict[str, Any]) -> str:
    from edgepack.summary.search import compression_table

    record = manifest.get("compression")
    if not record:
        return ""
    return (
        "<h2>TFLite Micro look-up-table compression</h2>\n"
        "<p>The shipped model runs in TensorFlow Lite Micro only (its TFLM_DECODE op); the task's metric is the "
        "uncompressed model's, whose weight values it decodes to.</p>\n"
        + table_html(compression_table(record), "compression")
    )


def _granularity(manifest: dict[str, Any]) -> str:
    from edgepack.summary.search import granularity_table

    choice = manifest.get("dense_granularity")
    if not choice:
        return ""
    return (
        "<h2>Dense layers: per channel or per tensor</h2>\n"
        f"<p>{escape(choice['chosen'])} kept: {escape(choice['why'])}</p>\n"
        + table_html(granularity_table(choice), "granularity")
    )


def _tuned(manifest: dict[str, Any], metric: str) -> str:
    from edgepack.summary.search import tune_summary, tune_table

    optimization = manifest.get("optimization") or {}
    parts = []
    for key, heading in (("sparsity_search", "Sparsity search"), ("rank_search", "Rank search")):
        search = optimization.get(key)
        if search:
            parts.append(
                f"<h2>{heading}</h2>\n<p>{escape(tune_summary(search))}</p>\n"
                + table_html(tune_table(search, metric), key.removesuffix("_search"))
            )
    return "".join(parts)


def _baseline(comparison: Any) -> str:
    from edgepack.summary.gate import compare_table

    return (
        f"<h2>Against the baseline</h2>\n<p>{escape(comparison.old)} (old) against this bundle (new).</p>\n"
        + table_html(compare_table(comparison, title=""), "baseline")
    )
