"""The bundle: the shipped model, labels, the formats (android, c-array, ethos-u, zip), manifest.json (the
build section, signed with a key) and measurements.json (the run section), written atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgepack.bundle.c_array import MeasuredArena
    from edgepack.bundle.figures import BundleFigures
    from edgepack.bundle.formats_model import AndroidFormat, CArrayFormat, EthosUFormat
    from edgepack.bundle.shipped import Shipped
    from edgepack.devices.profiles import EthosUDevice
    from edgepack.devices.toolchains.tflm_arena import Arena
    from edgepack.pipeline.inputs import RunInputs
    from edgepack.pipeline.shipment import Shipment
    from edgepack.recipe.schema import Recipe

Files = dict[str, "str | bytes"]


def write(
    inputs: RunInputs,
    target: Path,
    shipped: Shipped,
    manifest: dict[str, Any],
    measurements: dict[str, Any],
    extra: Files,
    make_zip: bool | None,
    sign_key: Path | None,
    baseline: BundleFigures | None,
) -> list[Path]:
    """Write the bundle to `target`: the shipped model, labels, the formats' files (`extra`), the manifest, the
    measurements, report.html (compared with `baseline` when set), the zip; returns the paths written."""
    from edgepack.bundle.writer import write_bundle

    settings = inputs.recipe.bundle
    do_zip = (settings.zip or "zip" in settings.formats) if make_zip is None else make_zip
    labels = inputs.data.labels if inputs.task.class_scores else []  # labels.txt names a classifier's scores
    report = html_report(baseline, target, manifest, measurements, shipped.data)
    return write_bundle(target, shipped.data, labels, manifest, do_zip, extra, measurements, sign_key, report)


def formats(inputs: RunInputs, shipment: Shipment, devices: Callable[[], list[Any]]) -> tuple[Files, dict[str, Any]]:
    """The recipe's formats' files and their manifest entries, in the order the formats are made; `devices`
    gives the recipe's devices (an ethos-u one is the profile the ethos-u format compiles for)."""
    wanted = inputs.recipe.bundle.formats
    extra: Files = {}
    entries: dict[str, Any] = {}
    vectors: dict[str, Any] = {}  # golden.npz's arrays, for the formats that carry them
    if "android" in wanted or "c-array" in wanted:
        vectors = golden_vectors(inputs, shipment.litert_path(), shipment.input_names)
    if "android" in wanted:
        files, entries["android"] = android(inputs, shipment.shipped(), shipment.converted, vectors)
        extra.update(files)
    if "c-array" in wanted:
        micro = shipment.micro_path().read_bytes()  # without metadata; LUT-compressed with compression = "lut"
        files, entries["c-array"] = c_array(inputs, micro, shipment.micro_arena(), vectors)
        extra.update(files)
    if "ethos-u" in wanted:
        device = ethos_u_profile(inputs.recipe, devices())
        files, entries["ethos-u"] = ethos_u(inputs, device, shipment.shipped_path())
        extra.update(files)
    return extra, entries


def golden(inputs: RunInputs, litert: Path, input_names: Callable[[], list[str] | None]) -> Files:
    """golden.npz (`validate.golden`): the first test samples with host LiteRT's outputs of the shipped model
    (`litert`: the file LiteRT runs) and each output's tolerance; none when the model does not take the samples."""
    from edgepack.validate.golden import GOLDEN_FILE, npz_bytes

    arrays = golden_vectors(inputs, litert, input_names)
    return {GOLDEN_FILE: npz_bytes(arrays)} if arrays else {}


def golden_vectors(inputs: RunInputs, litert: Path, input_names: Callable[[], list[str] | None]) -> dict[str, Any]:
    """golden.npz's arrays (`golden`), the same for the same model (the c-array and android formats carry them
    too); empty when the model does not take the samples."""
    from edgepack.validate.golden import GOLDEN_SAMPLES, golden_arrays
    from edgepack.validate.samples import ordered_samples

    samples = ordered_samples(inputs.data.test_inputs, inputs.reporter, litert, input_names, GOLDEN_SAMPLES)
    return {} if samples is None else golden_arrays(litert, samples)


def android(
    inputs: RunInputs, shipped: Shipped, converted: Path, golden: dict[str, Any] | None = None
) -> tuple[Files, AndroidFormat]:
    """The android format's files and its manifest entry (the tensors read from the `converted` file), with the
    `golden` vectors (golden.npz's arrays) and the instrumentation test that runs them when given."""
    from edgepack.bundle.android import android_files
    from edgepack.bundle.android_test import unsupported_arrays
    from edgepack.bundle.formats_model import AndroidFormat
    from edgepack.litert import model_tensors

    data = inputs.data
    if golden and unsupported_arrays(golden):
        inputs.reporter.note(
            f"bundle android: no golden-vector test: it does not read {', '.join(unsupported_arrays(golden))}"
        )
        golden = None
    tensors = model_tensors(converted)
    files = android_files(inputs.recipe.name, shipped, data.labels, tensors, inputs.task, data.image, golden)
    return dict(files), AndroidFormat(files=sorted(files), metadata=shipped.record["embedded"])


def c_array(
    inputs: RunInputs, micro: bytes, arena: tuple[Arena | None, str], golden: dict[str, Any] | None = None
) -> tuple[Files, CArrayFormat]:
    """The c-array format's files and its manifest entry: the microcontroller model `micro` (the converted one
    without metadata, TFLM ignores it; LUT-compressed with compression = "lut"), TFLM's measured `arena`, and
    the `golden` vectors (golden.npz's arrays) as C with `model_selftest()` (`bundle.golden_c`) when given."""
    from edgepack.bundle.c_array import c_sources
    from edgepack.bundle.formats_model import CArrayArena, CArrayFormat
    from edgepack.bundle.golden_c import golden_c_files, unsupported_outputs

    measured, why = with_margin(inputs.recipe, arena)
    sources = c_sources(micro, measured=measured)
    files: Files = {"c/model_data.h": sources.header, "c/model_data.cc": sources.source}
    if golden:
        unread = unsupported_outputs(golden)
        if unread:
            inputs.reporter.note(
                f"bundle c-array: no C golden vectors: the comparison does not read {', '.join(unread)}"
            )
        else:
            files.update(golden_c_files(golden))
    if sources.unsupported_ops:
        inputs.reporter.note(
            f"bundle c-array: TFLite Micro has no resolver method for "
            f"{', '.join(sources.unsupported_ops)}; register them yourself (model_data.h says)"
        )
    if measured is None:
        inputs.reporter.note(f"bundle c-array: the arena is an estimate ({sources.arena_bytes:,} B): {why}")
    entry = (
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
        model_sha256=hashlib.sha256(micro).hexdigest(),
        arena_bytes=sources.arena_bytes,
        arena=entry,
        activation_peak_bytes=sources.activation_peak_bytes,
        resolver_ops=list(sources.resolver_calls),
        unsupported_ops=list(sources.unsupported_ops),
    )


DEFAULT_ETHOS_U = "ethos-u55-128"


def ethos_u_profile(recipe: Recipe, devices: list[Any]) -> EthosUDevice:
    """The ethos-u profile the format compiles for: `bundle.ethos_u`, else the first ethos-u device of `devices`
    (those the recipe validates on), else ethos-u55-128."""
    from edgepack.devices.profiles import EthosUDevice, load_device
    from edgepack.errors import RecipeError

    name = recipe.bundle.ethos_u
    if name is None:
        name = next((d.name for d in devices if isinstance(d, EthosUDevice)), DEFAULT_ETHOS_U)
    device = load_device(name)
    if not isinstance(device, EthosUDevice):
        raise RecipeError(
            f"bundle.ethos_u = '{name}': a {device.kind} device, not an ethos-u profile",
            context=f"recipe '{recipe.name}'",
            code="recipe-invalid",
            hint="name an ethos-u profile (`edgepack devices list`: ethos-u55-128, ethos-u85-256)",
        )
    return device


def ethos_u(inputs: RunInputs, device: EthosUDevice, model: Path) -> tuple[Files, EthosUFormat]:
    """The ethos-u format's files and manifest entry: the shipped `model` file compiled by Vela for the profile
    (the validation's compile when it is of this model for this profile, else compiled now, once)."""
    from edgepack.bundle.ethos_u import ethos_u_files
    from edgepack.devices.drivers.ethos_u import check_integer, refuse_all_cpu
    from edgepack.devices.toolchains.vela import compile_model, reusable
    from edgepack.devices.toolchains.vela_report import read_estimate

    label = f"bundle ethos-u ({device.name})"
    folder = inputs.root / "validate" / "ethos-u" / device.name
    check_integer(model, device, label)
    run = reusable(device, model, folder)
    reused = run is not None
    if run is None:
        with inputs.reporter.task(f"{label}: Vela compile", 1) as task:
            run = compile_model(device, model, folder, label)
            task.advance(1)
    estimate = read_estimate(run, label)
    refuse_all_cpu(estimate, device, model, label)
    return ethos_u_files(run, estimate, device, reused)


def with_margin(recipe: Recipe, arena: tuple[Arena | None, str]) -> tuple[MeasuredArena | None, str]:
    """TFLM's measured `arena` for the model the c-array embeds with the recipe's margin, or None and why."""
    from edgepack.bundle.c_array import MeasuredArena
    from edgepack.recipe.base import parse_size

    measured, why = arena
    if measured is None:
        return None, why
    return MeasuredArena(
        measured.need,
        measured.non_persistent,
        measured.persistent,
        measured.runtime,
        parse_size(recipe.bundle.arena_margin),
    ), ""


def html_report(
    baseline: BundleFigures | None, target: Path, manifest: dict[str, Any], measurements: dict[str, Any], model: bytes
) -> str:
    """report.html: the run's figures as a page (with the comparison against `[budgets] baseline`, when set)."""
    from edgepack.report import render

    comparison = None
    if baseline is not None:
        from edgepack.bundle.figures import figures_of
        from edgepack.gate.compare import compare

        comparison = compare(baseline, figures_of(str(target), manifest, measurements, model))
    return render(manifest, measurements, model, comparison)
