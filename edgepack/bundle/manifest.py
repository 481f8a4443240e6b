"""The manifest: what the bundle holds, how it was made, and what was measured."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack import tasks
from edgepack.errors import BundleError

if TYPE_CHECKING:
    from edgepack.bundle.formats_model import Formats
    from edgepack.bundle.shipped import Shipped
    from edgepack.datasets import Dataset
    from edgepack.recipe import LoadedRecipe
    from edgepack.records import ConvertRecord, DeviceRun, EvaluateRecord, Fit, OptimizeRecord, TrainRecord

SCHEMA_VERSION = 3  # 3: task, model source, the task's metrics and fidelity; 2: measurements.json split out
READABLE_VERSIONS = (2, 3)  # what `verify` and `gate` read
MANIFEST = "manifest.json"
MEASUREMENTS = "measurements.json"
REPORT = "report.html"  # evidence of a run, like measurements.json: not an artifact, not in the zip
MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
TOOLCHAIN = (
    "edgepack",
    "tensorflow",
    "tf-keras",
    "keras",
    "tensorflow-model-optimization",
    "ai-edge-litert",
    "numpy",
    "litert-quantizer",  # weights = "int4": it makes the shipped kernels
)
# ... and what shapes the bundle but no stage: the c-array's arena is measured with tflite-micro, the
# ethos-u format is compiled by Vela
BUNDLE_TOOLCHAIN = (*TOOLCHAIN, "tflite-micro", "ethos-u-vela")


def toolchain_versions(packages: tuple[str, ...] = TOOLCHAIN) -> dict[str, str]:
    """Installed versions of the packages that shape the artifacts (read without importing them)."""
    versions = {}
    for dist in packages:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size in bytes of a file."""
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def read_manifest(bundle: Path) -> dict[str, Any]:
    """The manifest of a bundle (its directory, manifest.json or .zip); a clear error when it is missing or not JSON."""
    path = bundle / MANIFEST if bundle.is_dir() else bundle
    if bundle.suffix.lower() == ".zip" and bundle.is_file():
        from edgepack.bundle.archive import read_archive

        return manifest_from(read_archive(bundle), bundle)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"no manifest at {path}", hint="give a bundle directory written by `edgepack run`") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a readable manifest: {exc}") from exc
    return _checked(data, path)


def read_measurements(bundle: Path) -> dict[str, Any] | None:
    """The bundle's measurements.json, or None when it has none. A bundle directory has it beside the
    manifest; the .zip edgepack writes leaves it out (it changes every run), a .zip made otherwise may
    hold it; a path to a .json file is read as it is."""
    if bundle.is_file() and bundle.suffix.lower() == ".zip":
        from edgepack.bundle.archive import read_archive

        data = read_archive(bundle).get(MEASUREMENTS)
        return None if data is None else _parsed(data, bundle / MEASUREMENTS)
    if bundle.is_dir():
        path = bundle / MEASUREMENTS
    elif bundle.name == MANIFEST:
        path = bundle.with_name(MEASUREMENTS)
    elif bundle.name == MEASUREMENTS or bundle.suffix.lower() == ".json" and not bundle.name.endswith(MANIFEST):
        path = bundle
    else:
        return None
    if not path.is_file():
        return None
    try:
        return _parsed(path.read_bytes(), path)
    except OSError as exc:
        raise BundleError(f"{path}: cannot be read: {exc}") from exc


def _parsed(data: bytes, path: Path) -> dict[str, Any]:
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"{path}: not readable JSON: {exc}", hint="re-create the bundle with `edgepack bundle`"
        ) from exc
    return _checked(parsed, path)


def manifest_from(files: dict[str, bytes], bundle: Path) -> dict[str, Any]:
    """The manifest among a bundle archive's files (as `read_archive` returns them)."""
    if MANIFEST not in files:
        raise BundleError(f"{bundle}: the archive has no {MANIFEST}", hint="give the .zip `edgepack run --zip` wrote")
    try:
        data = json.loads(files[MANIFEST].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{bundle}: its {MANIFEST} is not readable JSON: {exc}") from exc
    return _checked(data, bundle)


def _checked(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("schema_version") not in READABLE_VERSIONS:
        raise BundleError(
            f"{path}: unsupported manifest (schema_version {data.get('schema_version')!r})"
            if isinstance(data, dict)
            else f"{path}: the manifest is not a JSON object",
            hint=f"this edgepack reads schema_version {' and '.join(map(str, READABLE_VERSIONS))}",
        )
    return data


@dataclass(frozen=True)
class BuildInputs:
    """What the build section is made of: the recipe as loaded, its data and fingerprints, the shipped model, the
    records of the stages (the pipeline's train, optimize, convert and evaluate records), the converted file,
    the shipped model's tensor records, the stages' ids and the run's reports (each None or empty without it)."""

    loaded: LoadedRecipe
    data: Dataset
    fingerprints: dict[str, str]  # sha256 of the train, calibration and test data
    shipped: Shipped
    trained: TrainRecord
    optimized: OptimizeRecord
    converted: ConvertRecord
    evaluated: EvaluateRecord
    converted_file: Path  # the converted model (its digest and size)
    inputs: list[dict[str, Any]]  # the shipped model's tensors in the file's order, each with its `keras_index`
    outputs: list[dict[str, Any]]
    stages: dict[str, str]  # stage name -> id
    tune_report: dict[str, dict[str, Any]]  # "auto" optimize value: `sparsity_search` / `rank_search`
    granularity: dict[str, Any] | None  # dense_granularity = "auto": both candidates, the pick
    compression: dict[str, Any] | None  # compression = "lut": the tensors, sizes, TFLM's arena
    measured_arena: tuple[Any, str] | None  # TFLM's arena of the microcontroller model, when this run measured it
    fits: dict[str, Fit]  # board -> how the model fits it


def build_manifest(built: BuildInputs, formats: Formats | None = None) -> dict[str, Any]:
    """The build section of a finished run's bundle (`manifest.json`, but the artifacts, which the writer lists
    as written): what the artifacts are and how they were made. Nothing in it depends on when or where the run
    happened, so the same recipe, data, seed and toolchain give the same bytes. Measurements live in
    `measurements.json`."""
    from edgepack.bundle import manifest_model as m
    from edgepack.bundle.record_model import only

    loaded, data, shipped = built.loaded, built.data, built.shipped
    recipe = loaded.recipe
    trained, optimized, conversion, evaluated = built.trained, built.optimized, built.converted, built.evaluated
    converted_digest, converted_size = file_digest(built.converted_file)
    norm = data.normalization
    classifier = tasks.get(evaluated.task).class_scores
    accuracy = m.Accuracy(
        float=evaluated.float, optimized=evaluated.optimized, tflite=evaluated.tflite, drop=evaluated.drop
    )
    build = m.Build(
        schema_version=SCHEMA_VERSION,
        name=recipe.name,
        version=recipe.version,
        description=recipe.description,
        task=m.Task.model_validate(recipe.task.model_dump(mode="json")),
        model=m.ModelFile(
            file=MODEL_FILE,
            sha256=hashlib.sha256(shipped.data).hexdigest(),
            size_bytes=len(shipped.data),
            converted_sha256=converted_digest,
            converted_size_bytes=converted_size,
            gzip_bytes=conversion.gzip_bytes,
            mode=conversion.mode,
            io=conversion.io,
            weights=sorted({k["dtype"] for k in conversion.weights.values()}),  # the kernels' dtypes (int4, int8...)
            metadata=m.Metadata.model_validate(shipped.record),
        ),
        source=m.Source.model_validate(trained.source),
        inputs=[m.Tensor.model_validate(t) for t in built.inputs],  # in the file's order; keras_index: the Keras one
        outputs=[m.Tensor.model_validate(t) for t in built.outputs],
        labels=list(data.labels),
        labels_file=LABELS_FILE if data.labels and classifier else None,
        normalization=m.Normalization(
            mean=norm.mean,
            std=norm.std,
            formula="(x - mean) / std",
            input_layout="NHWC" if data.image else "as stored",
            input_shape=list(data.input_shape) if len(data.train_inputs) == 1 else [list(s) for s in data.input_shape],
            resize=list(recipe.dataset.resize) if recipe.dataset.resize else None,
            resize_method="bilinear" if recipe.dataset.resize else None,
        ),
        recipe=m.RecipeRef(
            sha256=loaded.sha256, source=loaded.path.name if loaded.path else None, resolved=recipe.resolved()
        ),
        toolchain=toolchain_versions(BUNDLE_TOOLCHAIN),
        data=m.Data(
            train=m.Split(fingerprint=built.fingerprints["train"], samples=data.train_samples, left_out=data.left_out),
            calibration=conversion.calibration,
            test=m.Split(fingerprint=built.fingerprints["test"], samples=data.test_samples),
        ),
        stages=dict(built.stages),
        optimization=m.Optimization(
            params_float=trained.params,
            stages=optimized.stages,
            tflite_weights=conversion.weights,
            **built.tune_report,  # final_sparsity / rank = "auto": `sparsity_search` / `rank_search`
        ),
        quantization_error=conversion.quant_error,
        fallback=conversion.fallback,
        dense_granularity=built.granularity,
        compression=built.compression,
        metrics=m.Metrics(
            task=evaluated.task,
            metric=evaluated.metric,
            **only(accuracy=accuracy if classifier else None),  # classifiers only
            float=evaluated.metrics["float"],
            optimized=evaluated.metrics["optimized"],
            tflite=evaluated.metrics["tflite"],
            drop=evaluated.drop,
            fidelity=evaluated.fidelity,
            test_samples=evaluated.test_samples,
            size_bytes=len(shipped.data),
        ),
        memory=m.Memory.model_validate(memory_record(shipped.data, built.measured_arena)),
        **only(fits={board: fit.to_dict() for board, fit in built.fits.items()} or None),
        **only(formats=formats),
    )
    return build.dump()


def flash_size(manifest: dict[str, Any]) -> int | None:
    """The bytes a bundle's model takes in a board's flash (what its c-array embeds): the LUT-compressed model
    with `compression = "lut"`, else the converted one without metadata (None when the manifest lists neither)."""
    compression = manifest.get("compression")
    if compression:
        return int(compression["size_bytes"])
    size = (manifest.get("model") or {}).get("converted_size_bytes")
    return None if size is None else int(size)


def memory_record(flatbuffer: bytes, measured: tuple[Any, str] | None = None) -> dict[str, Any]:
    """Where the model's activation memory peaks (the op, its layer, the largest tensors live there) and,
    when this run measured it, the arena TFLM needs."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import peak_memory

    record = peak_memory(read_model(flatbuffer)).to_dict()
    if measured is not None:
        arena, why = measured
        record["arena"] = (
            {"how": "measured", **arena.to_dict()} if arena is not None else {"how": "not measured", "why": why}
        )
    return record


def run_measurements(
    gate: list[Any], shipped: Shipped, validation: dict[str, DeviceRun], search: dict[str, Any] | None
) -> dict[str, Any]:
    """The run section (`measurements.json`): what this run measured (the devices' `validation`, the `search`'s
    figures, the `gate`'s budget results), where and when. It changes from run to run (latencies, the host, the
    time), so it is kept out of the manifest and the zip."""
    import datetime
    import platform

    from edgepack.bundle.measurements_model import Budget, Gate, MeasurementsV3
    from edgepack.records import device_dicts

    return MeasurementsV3(
        schema_version=SCHEMA_VERSION,
        model_sha256=hashlib.sha256(shipped.data).hexdigest(),
        measured_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        host={
            "node": platform.node(),
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        edgepack=toolchain_versions()["edgepack"],
        validation=device_dicts(validation),
        search=search,
        gate=Gate(passed=all(r.passed for r in gate), results=[Budget.model_validate(r.to_dict()) for r in gate]),
    ).dump()
