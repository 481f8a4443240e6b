"""`edgepack inspect MODEL`: what any `.tflite` holds and computes (without TensorFlow), or what a saved Keras
model is (as `edgepack init` reads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.table import Column, Span, Table


def register(app: typer.Typer) -> None:
    """Add the inspect command to the top-level app."""

    @app.command()
    @boundary
    def inspect(
        model: Path = typer.Argument(
            ..., help="A .tflite file (edgepack's or anyone's), or a saved Keras model (.keras, .h5, a SavedModel)."
        ),
        ops: bool = typer.Option(True, "--ops/--no-ops", help="List every operator (default) or only the totals."),
        runtime: bool = typer.Option(
            True, "--runtime/--no-runtime", help="Load it in LiteRT to count XNNPACK partitions (a child process)."
        ),
        imports: list[str] = typer.Option(
            [],
            "--import",
            show_default=False,
            help="A Keras model: a module registering its custom Keras 3 layers (repeatable).",
        ),
    ) -> None:
        """Inputs, outputs, op histogram, per-op MACs and parameters, peak activation memory, float ops.

        Of a .tflite also: the ops TFLite's GPU delegate would leave to the CPU, with its reasons, and the share
        of ops and MACs it takes (its own rules, read offline: no GPU needed).

        A saved Keras model instead: what `edgepack init` reads (inputs, outputs, parameters, who saved it,
        whether tf_keras can rebuild it for [[optimize]] stages, a normalizing first layer)."""
        from edgepack.inspect import inspect_model, is_tflite

        report = inspect_model(model, runtime, tuple(imports))
        output.result(report, *(_tables(report, ops) if is_tflite(model) else _keras_tables(report)))


def _keras_tables(report: dict[str, Any]) -> list[Table]:
    """A saved Keras model's report as people read it: what it is, and its inputs and outputs."""
    summary = Table.of(report["model"], ["what", Column("value", "right")], show_header=False)
    summary.add_row("format", report["format"])
    summary.add_row("saved by", report["saved_by"])
    summary.add_row("parameters", f"{report['params']:,}")
    rebuild = report["tf_keras_rebuild"]
    if rebuild is not None:
        summary.add_row(
            "tf_keras rebuild (for [[optimize]])", "possible" if rebuild["possible"] else Span(rebuild["why"], "warn")
        )
    summary.add_row("first layer normalizes the input", report["normalizer"] or "no")
    io = Table.of("inputs and outputs", ["", "name", "shape", "dtype"])
    for kind in ("inputs", "outputs"):
        for t in report[kind]:
            io.add_row(kind[:-1], t["name"], "x".join("?" if d is None else str(d) for d in t["shape"]), t["dtype"])
    return [summary, io]


def _tables(report: dict[str, Any], ops: bool) -> list[Table]:
    """The report as people read it: the totals, inputs and outputs, the op histogram, every operator (`ops`)."""
    from edgepack.summary.figures import size

    summary = Table.of(report["model"], ["what", Column("value", "right")], show_header=False)
    summary.add_row("file size", size(report["size_bytes"]))
    summary.add_row("operators", f"{report['ops']:,}")
    summary.add_row("MACs", _count(report["macs"]))
    summary.add_row("parameters", f"{report['params']:,} ({size(report['weight_bytes'])} of constants)")
    peak = report["activation_memory"]
    where = f" (at op {peak['at_op']}, {peak['at']})" if peak["at_op"] is not None else ""
    summary.add_row("peak activation memory", f"{size(peak['peak_bytes'])}{where}")
    summary.add_row("compute", report["compute"])
    if report["compute"] == "integer":
        floats = report["float_ops"]
        summary.add_row(
            "float ops in the integer model",
            ", ".join(f"{f['index']} {f['op']}" for f in floats[:8]) + (" ..." if len(floats) > 8 else "")
            if floats
            else "none",
        )
    if "xnnpack" in report:
        xnn = report["xnnpack"]
        summary.add_row(
            "XNNPACK partitions (this machine)",
            str(xnn["partitions"]) if xnn["partitions"] is not None else Span(str(xnn["error"]), "warn"),
        )
    gpu = report["gpu_delegate"]
    summary.add_row("GPU delegate", gpu["summary"] if gpu["compatible"] else Span(gpu["summary"], "warn"))
    tables = [summary]

    io = Table.of("inputs and outputs", ["", "name", "shape", "dtype", "quantization"])
    for kind in ("inputs", "outputs"):
        for t in report[kind]:
            io.add_row(kind[:-1], t["name"], "x".join(map(str, t["shape"])) or "scalar", t["dtype"], _quant(t))
    tables.append(io)

    histogram = Table.of(
        "op histogram", [Column(c, "left" if c == "op" else "right") for c in ("op", "count", "MACs", "share of MACs")]
    )
    per_op: dict[str, int] = {}
    for op in report["operators"]:
        per_op[op["op"]] = per_op.get(op["op"], 0) + op["macs"]
    for name, count in report["histogram"].items():
        share = per_op[name] / report["macs"] if report["macs"] else 0.0
        histogram.add_row(name, str(count), _count(per_op[name]), f"{100 * share:.1f} %")
    tables.append(histogram)

    if gpu["refused"]:
        refused = Table.of(
            "GPU delegate: ops it leaves to the CPU",
            [Column("#", "right"), "op", "layer", Column("MACs", "right"), "why (the delegate's words)"],
        )
        for r in gpu["refused"]:
            refused.add_row(
                str(r["index"]), r["op"], r["layer"] or "", _count(r["macs"]) if r["macs"] else "", r["reason"]
            )
        tables.append(refused)

    if ops:
        headers = ("#", "op", "inputs", "outputs", "params", "MACs", "options")
        table = Table.of("operators", [Column(c, "right" if c in ("#", "params", "MACs") else "left") for c in headers])
        for op in report["operators"]:
            floated = op["float"] and report["compute"] == "integer"
            table.add_row(
                str(op["index"]),
                [op["op"], " ", Span("(float)", "warn")] if floated else op["op"],
                _tensors([t for t in op["inputs"] if not t["constant"]]),
                _tensors(op["outputs"]),
                f"{op['params']:,}" if op["params"] else "",
                _count(op["macs"]) if op["macs"] else "",
                ", ".join(f"{k} {v}" for k, v in op["options"].items()),
            )
        tables.append(table)
    return tables


def _tensors(tensors: list[dict[str, Any]]) -> str:
    return ", ".join(f"{'x'.join(map(str, t['shape'])) or 'scalar'} {t['dtype']}" for t in tensors)


def _quant(t: dict[str, Any]) -> str:
    q = t["quantization"]
    if q is None:
        return "-"
    if "scale" in q:
        return f"scale {q['scale']:.6g}, zero point {q['zero_point']}"
    return f"{q['scales']} scales along axis {q['axis']}"


def _count(n: int) -> str:
    """1234567 -> '1.23 M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)
