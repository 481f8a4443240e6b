"""The bundle: the shipped model, labels, the formats (android, c-array, ethos-u, zip), manifest.json (the
build section, signed with a key) and measurements.json (the run section), written atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.native import captured_native_logs

if TYPE_CHECKING:
    from edgepack.bundle.formats_model import CArrayFormat, EthosUFormat
    from edgepack.pipeline.run import Pipeline


def bundle(
    p: Pipeline, out: Path | None = None, make_zip: bool | None = None, sign_key: Path | None = None
) -> list[Path]:
    """Gate (unless done), then write the bundle; returns the paths written."""
    from edgepack.bundle.formats_model import AndroidFormat, Formats
    from edgepack.bundle.manifest import build_manifest, run_measurements
    from edgepack.bundle.writer import write_bundle

    if not p.gated:
        p.devices()  # a device mistake is said before the training (`edgepack bundle` gates first)
    gate = p.result.gate if p.gated else p.gate()
    p.reporter.stage("bundle", "writing")
    shipped = p.shipped()
    settings = p.recipe.bundle
    extra: dict[str, str | bytes] = {}
    formats: dict[str, Any] = {}  # the formats' manifest entries, in the order the recipe's formats are made
    if "android" in settings.formats:
        from edgepack.bundle.android import android_files
        from edgepack.litert import model_tensors

        files = android_files(
            p.recipe.name, shipped, p.data.labels, model_tensors(p.tflite_path), p.task.kind, p.data.image
        )
        extra.update(files)
        formats["android"] = AndroidFormat(files=sorted(files), metadata=shipped.record["embedded"])
    if "c-array" in settings.formats:
        files, formats["c-array"] = c_array(p)
        extra.update(files)
    if "ethos-u" in settings.formats:
        files, formats["ethos-u"] = ethos_u(p)
        extra.update(files)
    with captured_native_logs(p.quiet_native):
        manifest = build_manifest(p, shipped, Formats.model_validate(formats))
    measurements = run_measurements(p, gate, shipped)
    target = out or p.default_bundle_dir()
    do_zip = (settings.zip or "zip" in settings.formats) if make_zip is None else make_zip
    labels = p.data.labels if p.task.class_scores else []  # labels.txt names a classifier's scores
    report = html_report(p, target, manifest, measurements, shipped.data)
    p.result.bundle = write_bundle(
        target, shipped.data, labels, manifest, do_zip, extra, measurements, sign_key, report
    )
    return p.result.bundle


def c_array(p: Pipeline) -> tuple[dict[str, str | bytes], CArrayFormat]:
    """The c-array format's files and its manifest entry (the converted model: TFLM ignores metadata)."""
    from edgepack.bundle.c_array import c_sources
    from edgepack.bundle.formats_model import CArrayArena, CArrayFormat

    converted = p.micro_path().read_bytes()  # without metadata; LUT-compressed with compression = "lut"
    measured, why = measure_arena(p)
    sources = c_sources(converted, measured=measured)
    files: dict[str, str | bytes] = {"c/model_data.h": sources.header, "c/model_data.cc": sources.source}
    if sources.unsupported_ops:
        p.reporter.note(
            f"bundle c-array: TFLite Micro has no resolver method for "
            f"{', '.join(sources.unsupported_ops)}; register them yourself (model_data.h says)"
        )
    if measured is None:
        p.reporter.note(f"bundle c-array: the arena is an estimate ({sources.arena_bytes:,} B): {why}")
    arena = (
        CArrayArena(how="estimate", why=why, estimate_bytes=sources.arena_estimate)
        if measured is None
        else CArrayArena(
            how="measured",
            need_bytes=measured.need,
            margin_bytes=measured.margin,
            non_persistent_bytes=measured.non_persistent,
            persistent_bytes=measured.persistent,
            runtime=measured.runtime,
            estimate_bytes=sources.arena_estimate,
        )
    )
    return files, CArrayFormat(
        files=sorted(files),
        model_sha256=hashlib.sha256(converted).hexdigest(),
        arena_bytes=sources.arena_bytes,
        arena=arena,
        activation_peak_bytes=sources.activation_peak_bytes,
        resolver_ops=list(sources.resolver_calls),
        unsupported_ops=list(sources.unsupported_ops),
    )


DEFAULT_ETHOS_U = "ethos-u55-128"


def ethos_u_profile(p: Pipeline) -> Any:
    """The ethos-u profile the format compiles for: `bundle.ethos_u`, else the first ethos-u device the recipe
    validates on, else ethos-u55-128."""
    from edgepack.devices.profiles import EthosUDevice, load_device
    from edgepack.errors import RecipeError

    name = p.recipe.bundle.ethos_u
    if name is None:
        name = next((d.name for d in p.devices() if isinstance(d, EthosUDevice)), DEFAULT_ETHOS_U)
    device = load_device(name)
    if not isinstance(device, EthosUDevice):
        raise RecipeError(
            f"bundle.ethos_u = '{name}': a {device.kind} device, not an ethos-u profile",
            context=f"recipe '{p.recipe.name}'",
            code="recipe-invalid",
            hint="name an ethos-u profile (`edgepack devices list`: ethos-u55-128, ethos-u85-256)",
        )
    return device


def ethos_u(p: Pipeline) -> tuple[dict[str, str | bytes], EthosUFormat]:
    """The ethos-u format's files and manifest entry: the shipped model compiled by Vela for the profile (the
    validation's compile when it is of this model for this profile, else compiled now, once)."""
    from edgepack.bundle.ethos_u import ethos_u_files
    from edgepack.devices.drivers.ethos_u import check_integer, refuse_all_cpu
    from edgepack.devices.toolchains.vela import compile_model, reusable
    from edgepack.devices.toolchains.vela_report import read_estimate

    device = ethos_u_profile(p)
    model, label = p.shipped_path(), f"bundle ethos-u ({device.name})"
    folder = p.root / "validate" / "ethos-u" / device.name
    check_integer(model, device, label)
    run = reusable(device, model, folder)
    reused = run is not None
    if run is None:
        with p.reporter.task(f"{label}: Vela compile", 1) as task:
            run = compile_model(device, model, folder, label)
            task.advance(1)
    estimate = read_estimate(run, label)
    refuse_all_cpu(estimate, device, model, label)
    return ethos_u_files(run, estimate, device, reused)


def measure_arena(p: Pipeline) -> tuple[Any, str]:
    """The arena TFLM's interpreter needs for the converted model (what the c-array embeds) with the recipe's
    margin, or None and why."""
    from edgepack.bundle.c_array import MeasuredArena
    from edgepack.pipeline.fits import arena
    from edgepack.recipe.base import parse_size

    measured, why = arena(p)
    if measured is None:
        return None, why
    return MeasuredArena(
        measured.need,
        measured.non_persistent,
        measured.persistent,
        measured.runtime,
        parse_size(p.recipe.bundle.arena_margin),
    ), ""


def html_report(p: Pipeline, target: Path, manifest: dict[str, Any], measurements: dict[str, Any], model: bytes) -> str:
    """report.html: the run's figures as a page (with the comparison against `[budgets] baseline`, when set)."""
    from edgepack.report import render

    comparison = None
    if p.baseline is not None:
        from edgepack.bundle.figures import figures_of
        from edgepack.gate.compare import compare

        comparison = compare(p.baseline, figures_of(str(target), manifest, measurements, model))
    return render(manifest, measurements, model, comparison)
