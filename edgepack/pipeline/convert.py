"""The convert stage: the optimized model's SavedModel to `.tflite` in a worker process, calibrated;
its kernels as they shipped, calibration quality, the per-layer error and the fallback's report.
A `.tflite` given with `--model` stands in for it (`given_stage`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.bundle.manifest import MODEL_FILE
from edgepack.pipeline.cache import StageOutput
from edgepack.pipeline.inputs import RunInputs
from edgepack.records import ConvertRecord, OptimizeRecord, TrainRecord

if TYPE_CHECKING:
    from edgepack.pipeline.plan import Plan
    from edgepack.recipe.schema import Recipe

QUANT_ERROR_FILE = "quant_error.json"
FALLBACK_FILE = "fallback.json"


def convert_stage(
    p: RunInputs,
    settings: Any,
    optimized: StageOutput[OptimizeRecord],
    trained: StageOutput[TrainRecord],
    name: str = "convert",
) -> StageOutput[ConvertRecord]:
    """Convert `optimized` (the run's optimize stage, or a try of an "auto" value) in `settings`' mode (the
    recipe's, or a search candidate's) as stage `name`; `trained` gives the float figure a fallback's
    criterion compares with."""
    calibration_seed = p.recipe.seed if settings.calibration_seed is None else settings.calibration_seed
    inputs = {"optimize": optimized.id, "calibration": p.fingerprints["calibration"]}
    if settings.fallback:  # the fallback judges attempts on the test split
        inputs["test"] = p.fingerprints["test"]
    stage_id = p.cache.stage_id("convert", stage_config(settings), inputs)

    def body(out: Path) -> ConvertRecord:
        from edgepack.analyze.weights import gzip_size
        from edgepack.convert.isolated import convert_isolated
        from edgepack.datasets import calibration_quality
        from edgepack.pipeline.evaluate import judge

        why_not = error_report_skipped(p, settings)
        error_file = out / QUANT_ERROR_FILE
        selective = None
        if settings.keep_float or settings.fallback:
            selective = {
                "judge": judge(p, optimized, trained),
                "layers": optimized.record.layers,
                "report_out": out / FALLBACK_FILE,
            }
        failed = convert_isolated(
            optimized.dir / optimized.record.saved_model,
            settings,
            p.calibration,
            out / MODEL_FILE,
            p.reporter,
            error_out=None if why_not else error_file,
            selective=selective,
            input_names=optimized.record.inputs,
        )
        flatbuffer = (out / MODEL_FILE).read_bytes()
        fallback = json.loads((out / FALLBACK_FILE).read_text()) if selective else None
        classes = p.task.class_scores
        y_cal = p.data.y_train[p.calibration_indices] if classes else None
        quality = calibration_quality(p.calibration, y_cal, p.data.x_test, p.data.y_test, list(p.data.labels), classes)
        missing = quality.get("missing_classes") or []
        if missing and settings.mode in ("int8", "int16x8"):
            p.reporter.note(
                f"convert: the {len(p.calibration_indices)} calibration samples miss {len(missing)} "
                f"class(es) of the test split ({', '.join(missing[:5])}); raise convert.calibration_samples"
            )
        return ConvertRecord(
            model_file=MODEL_FILE,
            mode=settings.mode,
            io=settings.io,
            sha256=hashlib.sha256(flatbuffer).hexdigest(),
            size_bytes=len(flatbuffer),
            gzip_bytes=gzip_size(flatbuffer),
            weights=tflite_weights(flatbuffer, optimized.record.layers),
            calibration={
                "samples": int(len(p.calibration_indices)),
                "seed": calibration_seed,
                "fingerprint": p.fingerprints["calibration"],
                **quality,
            },
            quant_error=quantization_error_record(error_file, optimized.record.layers, why_not or failed),
            fallback=fallback,
        )

    return p.cache.run(name, stage_id, ConvertRecord, body)


def stage_config(settings: Any) -> dict[str, Any]:
    """The conversion's settings as its stage id hashes them: all but `compression`, which changes nothing
    converted (the compressed model is made in memory from this stage's file, not cached)."""
    return dict(settings.model_dump(mode="json", exclude={"compression"}))


@dataclass(frozen=True)
class GivenFile:
    """The plan's given `.tflite`, read and checked on its own (before any data is loaded)."""

    path: Path
    data: bytes
    model: Any  # analyze.flatbuffer's Model
    mode: str  # what its compute is: int8, int16x8, dynamic, float16, float32


def read_given(recipe: Recipe, plan: Plan) -> GivenFile:
    """Read the plan's given file: a `.tflite` (not LUT-compressed already; full-integer int8 when the recipe
    compresses what it ships), else a `ModelError` naming the file. Needs no data: a bad file is said first."""
    from edgepack.analyze.flatbuffer import read_model_file
    from edgepack.analyze.graph import analyze

    path = plan.given
    assert path is not None
    data, model = read_model_file(path)
    check_not_compressed(recipe, path, data)
    compute = analyze(model).compute
    mode = {
        "integer": "int8",
        "integer (int16 activations)": "int16x8",
        "dynamic range": "dynamic",
        "float16 weights": "float16",
    }.get(compute, "float32")
    check_compressible(recipe, plan, path, mode, compute)
    return GivenFile(path, data, model, mode)


def given_stage(
    p: RunInputs, given: GivenFile, input_names: Callable[[], list[str] | None]
) -> StageOutput[ConvertRecord]:
    """The plan's `given` file as the convert stage's output (nothing converted); bundled like a model made
    here, it must fit the recipe's data and task. `input_names` gives the Keras model's input names (which
    tell several inputs apart)."""
    from edgepack.analyze.weights import gzip_size

    path, data, model, mode = given.path, given.data, given.model, given.mode
    if not p.plan.as_given:  # bundled like a model made here: it must fit the recipe's data and task
        check_given_fits(p, path, model, input_names)
    dtypes = [model.tensors[i].dtype for i in model.inputs]
    record = ConvertRecord(
        model_file=path.name,
        mode=mode,
        io="int8" if dtypes and all(d == "int8" for d in dtypes) else "float32",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        gzip_bytes=gzip_size(data),
        weights=tflite_weights(data, []),
        calibration=None,
        quant_error={"measured": False, "why": "a model given with --model (not converted here)"},
        fallback=None,
        given=str(path.resolve()),
    )
    return StageOutput("convert", "given-" + record.sha256[:16], path.parent, record)


def check_not_compressed(recipe: Recipe, path: Path, data: bytes) -> None:
    """A given model must not be LUT-compressed already: LiteRT, which judges and measures it, cannot run
    TFLM's TFLM_DECODE op (exit 2, naming the file to give instead)."""
    from edgepack.convert.lut import DECODE_OP, is_compressed
    from edgepack.errors import ModelError

    if is_compressed(data):
        raise ModelError(
            f"{path}: it is LUT-compressed already (TFLite Micro's {DECODE_OP} custom op), which LiteRT cannot "
            "run, so it cannot be evaluated, validated or bundled here",
            context=f"recipe '{recipe.name}'",
            hint='give the uncompressed int8 .tflite, with [convert] compression = "lut" in the recipe: the '
            "bundle ships it compressed",
            code="model-compressed",
        )


def check_compressible(recipe: Recipe, plan: Plan, path: Path, mode: str, compute: str) -> None:
    """With `compression = "lut"`, a model given to `bundle --model` must be full-integer int8 (exit 2)."""
    from edgepack.errors import ModelError
    from edgepack.pipeline.compress import applies

    if applies(recipe, plan) and mode != "int8":
        raise ModelError(
            f"{path}: its compute is {compute}, not full-integer int8: convert.compression = 'lut' compresses "
            "int8 weights for TFLite Micro's int8 kernels",
            context=f"recipe '{recipe.name}'",
            hint="give a full-integer int8 .tflite (int8 weights and activations), or remove convert.compression",
            code="model-not-int8",
        )


def check_given_fits(p: RunInputs, path: Path, model: Any, input_names: Callable[[], list[str] | None]) -> None:
    """A given model must take the recipe's samples and give outputs its task can judge, its tensors
    mapped to the Keras model's through its signature (exit 2 if not)."""
    from edgepack.errors import BadInputError, ModelError
    from edgepack.litert import interpreter, io_order
    from edgepack.tasks.base import shape_text

    shapes = [tuple(int(d) for d in x.shape[1:]) for x in p.data.test_inputs]
    inputs = [tuple(model.tensors[i].shape) for i in model.inputs]
    if len(inputs) != len(shapes) or sorted(tuple(s[1:]) for s in inputs) != sorted(shapes):
        raise ModelError(
            f"{path}: its input{'s are' if len(inputs) != 1 else ' is'} "
            f"{', '.join(shape_text(s) for s in inputs)}; the recipe's samples are "
            f"{', '.join(shape_text(s) for s in shapes)}",
            context=f"recipe '{p.recipe.name}'",
            hint="give the model this recipe's data is shaped for (dataset.resize, channels)",
            code="model-mismatch",
        )
    try:  # several inputs are told apart by the recipe model's input names (it is trained first, then)
        names = input_names() if len(inputs) > 1 else None
        ordered_in, ordered_out = io_order(interpreter(path), names, shapes)
    except BadInputError as exc:
        raise ModelError(
            f"{path}: {exc.message}", context=f"recipe '{p.recipe.name}'", hint=exc.hint, code="model-mismatch"
        ) from exc
    problem = p.task.output_problem(
        [tuple(d["shape"]) for d in ordered_in], [tuple(d["shape"]) for d in ordered_out], p.data
    )
    if problem:
        raise ModelError(
            f"{path}: {problem}",
            context=f"recipe '{p.recipe.name}'",
            hint="give a model whose outputs fit the recipe's task and data",
            code="model-mismatch",
        )


def error_report_skipped(p: RunInputs, settings: Any = None) -> str | None:
    """Why the per-layer quantization error is not measured for this conversion, or None."""
    settings = settings or p.recipe.convert
    if not settings.error_report:
        return "convert.error_report = false"
    if settings.mode != "int8":
        return f"mode {settings.mode}: the report compares int8 with float"
    if settings.weights == "int4":
        return "weights int4: TFLite's debugger measures its own int8 conversion, not litert-quantizer's int4 model"
    if any(stage.kind == "qat" for stage in p.recipe.optimize):
        return "a QAT model's quantization is learned; TFLite's debugger measures post-training quantization"
    return None


def quantization_error_record(path: Path, layers: list[str], why_not: str | None) -> dict[str, Any]:
    """The worker's per-op error rows with their Keras layer, worst first (by RMSE over the step)."""
    from edgepack.analyze.weights import match_layer

    if why_not or not path.is_file():
        return {"measured": False, "why": why_not or "the debugger wrote no report"}
    rows = json.loads(path.read_text())
    for row in rows:
        row["layer"] = match_layer(row["tensor"], layers)
    rows.sort(key=lambda r: -(r["rmse_over_scale"] or 0.0))
    path.write_text(json.dumps(rows, indent=1))  # the file as the record: Keras layers, worst first
    return {"measured": True, "metric": "rmse_over_scale", "file": QUANT_ERROR_FILE, "layers": rows}


def tflite_weights(flatbuffer: bytes, layers: list[str]) -> dict[str, dict[str, Any]]:
    """Per kernel of the `.tflite`, keyed by its Keras layer: sparsity, distinct values, 2:4 check."""
    from edgepack.analyze.weights import weight_stats

    result: dict[str, dict[str, Any]] = {}
    for stat in weight_stats(flatbuffer, layers):
        key = stat.layer or stat.tensor
        if key not in result:
            result[key] = {
                "op": stat.op,
                "shape": list(stat.shape),
                "dtype": stat.dtype,
                "sparsity": round(stat.sparsity, 4),
                "unique_values": stat.unique_values,
                "unique_per_channel_max": stat.unique_per_channel_max,
                "max_nonzeros_per_4": stat.max_nonzeros_per_4,
            }
    return result
