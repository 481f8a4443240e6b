"""A bundle read for comparison: its manifest, measurements.json and model, as one typed record of figures.

The figures are the ones the bundle records (size, the task's metric, latency percentiles, the TFLM
arena, the per-layer quantization error); MACs, the op histogram and the activation peak are read
from its `model.tflite` (without TensorFlow) when the manifest does not carry them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepack.bundle.manifest import MODEL_FILE, read_manifest, read_measurements
from edgepack.errors import BundleError

LOWER_IS_BETTER = frozenset({"rmse", "mae"})  # every other headline metric (accuracy, AUC, SQNR) is higher-better
LATENCY_KEYS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")


@dataclass(frozen=True)
class BundleFigures:
    """What one bundle records, in the units it records them (bytes, fractions, ms)."""

    source: str
    name: str
    version: str | None
    model_sha256: str
    size_bytes: int | None  # the converted model
    shipped_bytes: int  # the model with its TFLite metadata: what ships (and what max_size gates)
    gzip_bytes: int | None
    metric: str  # the task's headline metric
    metric_float: float | None
    metric_tflite: float | None
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # device -> recorded percentiles
    emulated: tuple[str, ...] = ()
    arena_bytes: int | None = None
    arena_source: str | None = None  # where the arena figure comes from
    activation_peak_bytes: int | None = None
    macs: int | None = None
    op_histogram: dict[str, int] = field(default_factory=dict)
    quant_error: dict[str, float] = field(default_factory=dict)  # layer -> RMSE over the quantization step
    manifest: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    run: dict[str, Any] | None = field(default=None, repr=False, compare=False)  # measurements.json
    model: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger headline metric is a better model."""
        return self.metric not in LOWER_IS_BETTER


def read_figures(bundle: Path, measurements: Path | None = None) -> BundleFigures:
    """The figures of a bundle directory, its `.zip` (latencies only with `measurements`) or its
    manifest.json (measurements.json and model.tflite beside it, when there)."""
    if not bundle.exists():
        raise BundleError(f"{bundle}: no bundle here", hint="give a bundle directory, its manifest.json or BUNDLE.zip")
    manifest = read_manifest(bundle)
    run = read_measurements(measurements or bundle)
    if measurements is not None and run is None:
        raise BundleError(f"{measurements}: no measurements file here", hint="give a bundle's measurements.json")
    given = manifest.get("model")
    model_meta: dict[str, Any] = given if isinstance(given, dict) else {}
    if run is not None and run.get("model_sha256") != model_meta.get("sha256"):
        raise BundleError(
            f"{measurements or bundle}: measurements.json measured another model (its model_sha256 is "
            "not the manifest's)",
            code="bundle-modified",
            hint="give the measurements.json written with this bundle",
        )
    try:
        return figures_of(str(bundle), manifest, run, bundle_model(bundle, manifest))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"{bundle}: the manifest lacks or garbles a figure: {exc!r}",
            hint="re-create the bundle with `edgepack bundle`",
        ) from exc


def figures_of(source: str, manifest: dict[str, Any], run: dict[str, Any] | None, model: bytes | None) -> BundleFigures:
    """The figures of a bundle in memory: its manifest, measurements.json (None: none) and model file (None: none)."""
    metrics = manifest.get("metrics") or {}
    metric = metrics.get("metric", "accuracy")
    graph = _graph(model)
    memory = manifest.get("memory") or {}
    validation = (run or {}).get("validation") or {}
    arena, where = arena_figure(manifest, validation)
    return BundleFigures(
        source=source,
        name=str(manifest.get("name", "bundle")),
        version=manifest.get("version"),
        model_sha256=str(manifest["model"]["sha256"]),
        size_bytes=manifest["model"].get("converted_size_bytes"),
        shipped_bytes=int(manifest["model"]["size_bytes"]),
        gzip_bytes=manifest["model"].get("gzip_bytes"),
        metric=metric,
        metric_float=(metrics.get("float") or {}).get(metric, (metrics.get("accuracy") or {}).get("float")),
        metric_tflite=(metrics.get("tflite") or {}).get(metric, (metrics.get("accuracy") or {}).get("tflite")),
        latency_ms={
            device: {k: float(rec["latency_ms"][k]) for k in LATENCY_KEYS if rec["latency_ms"].get(k) is not None}
            for device, rec in validation.items()
            if rec.get("latency_ms")
        },
        emulated=tuple(sorted(d for d, rec in validation.items() if rec.get("emulated"))),
        arena_bytes=arena,
        arena_source=where,
        activation_peak_bytes=memory.get("activation_peak_bytes", graph.get("activation_peak_bytes")),
        macs=graph.get("macs"),
        op_histogram=dict(graph.get("histogram") or {}),
        quant_error=quant_errors(manifest.get("quantization_error")),
        manifest=manifest,
        run=run,
        model=model,
    )


def arena_figure(manifest: dict[str, Any], validation: dict[str, Any]) -> tuple[int | None, str | None]:
    """The TFLM arena a bundle records, and where: the manifest's memory record, the c-array's, a tflm device's."""
    arena = (manifest.get("memory") or {}).get("arena") or {}
    if arena.get("how") == "measured" and arena.get("need") is not None:
        return int(arena["need"]), f"measured by {arena.get('runtime', 'TFLM')}"
    c_arena = ((manifest.get("formats") or {}).get("c-array") or {}).get("arena") or {}
    if c_arena.get("how") == "measured" and c_arena.get("need_bytes") is not None:
        return int(c_arena["need_bytes"]), "measured for the c-array"
    for device, rec in sorted(validation.items()):
        if (rec.get("arena") or {}).get("bytes") is not None:
            return int(rec["arena"]["bytes"]), f"measured on '{device}'"
    return None, None


def quant_errors(report: dict[str, Any] | None) -> dict[str, float]:
    """Per layer (else tensor) its output's RMSE over the quantization step, from the manifest's record (the
    worst of a layer's ops)."""
    if not report or not report.get("measured"):
        return {}
    rows: dict[str, float] = {}
    for row in report.get("layers") or []:
        if row.get("rmse_over_scale") is not None:
            key, value = row.get("layer") or row["tensor"], float(row["rmse_over_scale"])
            rows[key] = max(value, rows.get(key, value))  # a layer of several ops: its worst
    return rows


def _graph(model: bytes | None) -> dict[str, Any]:
    if model is None:
        return {}
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import analyze

    report = analyze(read_model(model))
    return {
        "macs": report.total_macs,
        "histogram": report.histogram,
        "activation_peak_bytes": report.activation_peak_bytes,
    }


def bundle_model(bundle: Path, manifest: dict[str, Any]) -> bytes | None:
    """The bundle's model file, when it is there and is the one its manifest names (by sha256)."""
    name = (manifest.get("model") or {}).get("file") or MODEL_FILE
    if bundle.is_file() and bundle.suffix.lower() == ".zip":
        from edgepack.bundle.archive import read_archive

        data = read_archive(bundle).get(name)
    else:
        path = (bundle if bundle.is_dir() else bundle.parent) / name  # a manifest.json: the model beside it
        data = path.read_bytes() if path.is_file() else None
    if data is not None and hashlib.sha256(data).hexdigest() != manifest["model"].get("sha256"):
        raise BundleError(
            f"{bundle}: {name} is not the model its manifest names (sha256 differs)",
            code="bundle-modified",
            hint="check the bundle with `edgepack verify`",
        )
    return data
