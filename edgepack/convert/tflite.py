"""Convert an exported SavedModel to TFLite: int8 (int8 or float I/O), int16x8, dynamic range, float16, float32.

This module runs inside the conversion worker process (see `edgepack.convert.isolated`): the
converter can crash natively (a GRU graph in full int8 segfaults it), and that must not take
edgepack down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.convert.compat import mlir_quantize_granularity, set_granularity
from edgepack.evaluate.judge import Judge
from edgepack.models.tf import load
from edgepack.recipe.convert import ConvertSettings

CALIBRATED_MODES = {"int8", "int16x8"}


Calibration = np.ndarray | list[np.ndarray]  # one array, or one per model input (then keyed by `input_names`)


def convert(
    saved_model: Path,
    settings: ConvertSettings,
    calibration: Calibration,
    progress: Callable[[int], None] = lambda n: None,
    input_names: list[str] | None = None,
) -> bytes:
    """The `.tflite` flatbuffer of the SavedModel in the recipe's mode, calibrated on `calibration`.

    Raises whatever the converter raises; the worker turns it into a report.
    """
    if settings.dense_granularity == "auto":
        raise ValueError("dense_granularity 'auto' is resolved before conversion: convert each candidate")
    tf = load().tf
    if settings.weights == "int4":
        return _int4(tf, saved_model, calibration, progress, input_names)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    mode = settings.mode
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if settings.integer_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    set_granularity(converter, settings.per_channel, settings.dense_per_tensor)
    if mode in CALIBRATED_MODES:
        converter.representative_dataset = _representative(calibration, progress, input_names)
    return bytes(converter.convert())


def _int4(
    tf: Any,
    saved_model: Path,
    calibration: Calibration,
    progress: Callable[[int], None],
    input_names: list[str] | None,
) -> bytes:
    """float32 by TFLite's converter, then int4 weights and int8 activations by litert-quantizer."""
    from edgepack.convert.int4 import quantize_w4a8, signature_inputs

    float_model = bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert())
    arrays = calibration if isinstance(calibration, list) else [calibration]
    names = input_names if len(arrays) > 1 and input_names else signature_inputs(float_model)
    progress(len(arrays[0]))
    return quantize_w4a8(float_model, arrays, names)


def _int8_converter(
    saved_model: Path, settings: ConvertSettings, calibration: Calibration, input_names: list[str] | None = None
) -> Any:
    tf = load().tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    set_granularity(converter, settings.per_channel, settings.dense_per_tensor)
    converter.representative_dataset = _representative(calibration, lambda n: None, input_names)
    return converter


def _debugger(
    saved_model: Path,
    settings: ConvertSettings,
    calibration: Calibration,
    samples: Calibration,
    input_names: list[str] | None = None,
) -> Any:
    tf = load().tf
    holder: dict[str, Any] = {}
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=_int8_converter(saved_model, settings, calibration, input_names),
        debug_dataset=_representative(samples, lambda n: None, input_names, _debugger_order(holder, input_names)),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            layer_debug_metrics={"mean_abs_error": lambda diff: float(np.mean(np.abs(diff)))}
        ),
    )
    holder["debugger"] = debugger
    return debugger


def quantization_error(
    saved_model: Path,
    settings: ConvertSettings,
    calibration: Calibration,
    samples: Calibration,
    debugger: Any = None,
    input_names: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Per quantized op of the int8 model: float-vs-int8 error of its output on `samples`.

    TFLite's quantization debugger converts the model again with a NumericVerify op after each
    quantized op, which compares the int8 output (dequantized) with the float one. Each row: the
    op, its output tensor's name, the error statistics the debugger gives (mean and max absolute
    error, mean squared error, stddev) and `rmse_over_scale`, the RMSE in units of the output's
    quantization step (about 0.29 for rounding noise alone; larger means the layer loses more).
    Only for post-training quantization: a QAT model's quantization is learned, and the debugger
    finds nothing to verify in it.
    """
    import csv
    import io

    debug = debugger or _debugger(saved_model, settings, calibration, samples, input_names)
    debug.run()
    dump = io.StringIO()
    debug.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale, mse = float(row["scale"]), float(row["mean_squared_error"])
        rows.append(
            {
                "op": row["op_name"],
                "tensor": row["tensor_name"],
                "tensor_index": int(row["tensor_idx"]),
                "rmse_over_scale": float(np.sqrt(mse) / scale) if scale > 0 else None,
                "mean_abs_error": float(row["mean_abs_error"]),
                "max_abs_error": float(row["max_abs_error"]),
                "mean_squared_error": mse,
                "stddev": float(row["stddev"]),
                "scale": scale,
                "elements": int(float(row["num_elements"])),
            }
        )
    return rows


def selective(
    saved_model: Path,
    settings: ConvertSettings,
    calibration: Calibration,
    samples: Calibration,
    judge: Judge,
    layers: list[str],
    log: Callable[[str], None] = lambda line: None,
    input_names: list[str] | None = None,
) -> tuple[bytes, list[dict[str, Any]], dict[str, Any]]:
    """int8 with some ops kept in float: the recipe's `keep_float` ones, then, with `fallback`, the
    ones int8 hurts most until the criterion holds on the test split (the task's metric against the
    float model's, or the worst output's SQNR).

    Returns the model (the smallest fallback that meets the criterion, else the best attempt), the
    error rows, and the report: criterion, the figures of each attempt, the ops kept in float,
    sizes and latencies of plain int8 and the result.
    """
    import fnmatch

    from tensorflow.lite.python import convert as lite_convert

    from edgepack.analyze.weights import match_layer
    from edgepack.evaluate.judge import allowed_drop, meets

    tf = load().tf
    debug = _debugger(saved_model, settings, calibration, samples, input_names)
    rows = quantization_error(saved_model, settings, calibration, samples, debug)
    for row in rows:
        row["layer"] = match_layer(row["tensor"], layers)
    io_type = tf.int8 if settings.integer_io else tf.float32
    granularity = mlir_quantize_granularity(settings.per_channel, settings.dense_per_tensor)

    def build(float_tensors: list[str]) -> bytes:
        return bytes(
            lite_convert.mlir_quantize(
                debug.calibrated_model,
                **granularity,
                fully_quantize=settings.integer_io,
                input_data_type=io_type,
                output_data_type=io_type,
                denylisted_nodes=float_tensors or None,
            )
        )

    def forced(row: dict[str, Any]) -> bool:
        return any(
            pattern == row["op"] or fnmatch.fnmatchcase(row["layer"] or "", pattern) for pattern in settings.keep_float
        )

    kept = [row["tensor"] for row in rows if forced(row)]
    criterion = settings.fallback
    allowed = allowed_drop(criterion, judge.reference_value) if criterion else None
    attempts: dict[int, dict[str, Any]] = {}
    ranked = sorted(
        (r for r in rows if r["tensor"] not in kept and r["op"] not in ("QUANTIZE", "DEQUANTIZE")),
        key=lambda r: -(r["rmse_over_scale"] or 0.0),
    )

    def attempt(count: int) -> dict[str, Any]:
        if count not in attempts:
            chosen = kept + [r["tensor"] for r in ranked[:count]]
            model = build(chosen)
            verdict = judge.judge(model)
            attempts[count] = {
                "extra_float_ops": count,
                "float_tensors": chosen,
                "value": verdict.value,
                "drop": verdict.drop,
                "worst_sqnr_db": verdict.worst_sqnr_db,
                "size_bytes": len(model),
                "model": model,
                "met": criterion is None or meets(criterion, allowed, verdict),
            }
            log(f"fallback: {len(chosen)} op(s) in float -> {judge_metric(judge)} {verdict.value}")
        return attempts[count]

    best = attempt(0)
    plain_model = best["model"] if not kept else build([])  # built, and judged, once
    plain = best if not kept else {"value": judge.judge(plain_model).value}
    if criterion is not None and not best["met"]:
        limit = min(criterion.max_ops, len(ranked))
        low, high, count = 0, None, 1  # low: a size known to miss; high: the smallest known to hold
        while count < limit:  # groups of 1, 2, 4... ops
            if attempt(count)["met"]:
                high = count
                break
            low, count = count, count * 2
        if high is None and limit > low and attempt(limit)["met"]:
            high = limit
        while high is not None and high - low > 1:  # the smallest size between the last miss and the first hit
            middle = (low + high) // 2
            if attempt(middle)["met"]:
                high = middle
            else:
                low = middle
        met = [a for a in attempts.values() if a["met"]]
        best = (
            min(met, key=lambda a: a["extra_float_ops"])
            if met
            else max(attempts.values(), key=lambda a: _goodness(a, criterion))
        )  # the best attempt, failing
    by_tensor = {r["tensor"]: r for r in rows}
    report = {
        "criterion": None
        if criterion is None
        else {**criterion.describe(), "allowed_drop": allowed, "max_ops": criterion.max_ops},
        "metric": judge_metric(judge),
        "float_value": judge.reference_value,
        "plain_int8_value": plain["value"],
        "plain_int8_size_bytes": len(plain_model),
        "value": best["value"],
        "drop": best["drop"],
        "worst_sqnr_db": best["worst_sqnr_db"],
        "met": best["met"],
        "size_bytes": best["size_bytes"],
        "kept_float": [
            {"tensor": t, "op": by_tensor[t]["op"], "layer": by_tensor[t]["layer"], "forced": t in kept}
            for t in best["float_tensors"]
        ],
        "attempts": [
            {k: v for k, v in a.items() if k not in ("model", "float_tensors")} for _, a in sorted(attempts.items())
        ],
        "host_latency_ms": {"plain_int8": _median_latency_ms(plain_model), "result": _median_latency_ms(best["model"])},
    }
    return best["model"], rows, report


def judge_metric(judge: Judge) -> str:
    """The name of the figure a judge's verdicts hold in `value`."""
    from edgepack import tasks

    return tasks.get(judge.task).metric


def _goodness(attempt: dict[str, Any], criterion: Any) -> float:
    """Higher is better: less worse than float, or (SQNR criteria) a higher worst SQNR."""
    if criterion.min_sqnr_db is not None:
        return float("inf") if attempt["worst_sqnr_db"] is None else float(attempt["worst_sqnr_db"])
    return -float(attempt["drop"]) if attempt["drop"] is not None else float("-inf")


def _median_latency_ms(model: bytes, runs: int = 50, warmup: int = 5) -> float:
    """Median invoke time on this machine, 1 thread: what keeping ops in float costs, roughly."""
    import time

    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    for detail in interp.get_input_details():  # zeros, not whatever memory holds (token ids index tables)
        interp.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
    times = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        interp.invoke()
        if index >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _representative(
    calibration: Calibration,
    progress: Callable[[int], None],
    input_names: list[str] | None = None,
    order: Callable[[], list[int]] | None = None,
) -> Any:
    """The converter's representative dataset: one sample per step, as a list (one input) or keyed by
    the signature's input names (several: the converter's own input order is not the Keras one).
    Float samples are float32, integer ones (token ids) int32. With `order` (the debugger, which
    feeds a list in its model's input order), a list in that order of the Keras inputs."""
    arrays = calibration if isinstance(calibration, list) else [calibration]

    def generate() -> Any:
        for index in range(len(arrays[0])):
            progress(index + 1)
            samples = [
                a[index][None, ...].astype(np.int32 if np.issubdtype(a.dtype, np.integer) else np.float32)
                for a in arrays
            ]
            if order is not None:
                yield [samples[i] for i in order()]
            elif len(samples) > 1 and input_names:
                yield dict(zip(input_names, samples))
            else:
                yield samples

    return generate


def _debugger_order(debugger: dict[str, Any], input_names: list[str] | None) -> Callable[[], list[int]] | None:
    """For several inputs: which Keras input each of the debugger's model inputs is, read from its
    calibrated model's signature once it exists (the debugger feeds its dataset's list in that order)."""
    if not input_names or len(input_names) < 2:
        return None

    def order() -> list[int]:
        if "order" not in debugger:
            interp = debugger["debugger"]._quant_interpreter
            signature = next(iter(interp._get_full_signature_list().values()))["inputs"]
            by_tensor = {index: name for name, index in signature.items()}
            debugger["order"] = [input_names.index(by_tensor[d["index"]]) for d in interp.get_input_details()]
        return debugger["order"]

    return order
