"""Convert an exported SavedModel to TFLite: int8 (int8 or float I/O), int16x8, dynamic range, float16, float32.

This module runs inside the conversion worker process (see `edgepack.convert.isolated`): the
converter can crash natively (a GRU graph in full int8 segfaults it), and that must not take
edgepack down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgepack.models.tf import load
from edgepack.recipe.schema import ConvertSettings

CALIBRATED_MODES = {"int8", "int16x8"}


def convert(saved_model: Path, settings: ConvertSettings, calibration: np.ndarray,
            progress: Callable[[int], None] = lambda n: None) -> bytes:
    """The `.tflite` flatbuffer of the SavedModel in the recipe's mode, calibrated on `calibration`.

    Raises whatever the converter raises; the worker turns it into a report.
    """
    tf = load().tf
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
    if not settings.per_channel:
        # The converter's only switch for per-tensor weights (experimental, no public equivalent).
        converter._experimental_disable_per_channel = True
    if mode in CALIBRATED_MODES:
        converter.representative_dataset = _representative(calibration, progress)
    return bytes(converter.convert())


def _int8_converter(saved_model: Path, settings: ConvertSettings, calibration: np.ndarray) -> Any:
    tf = load().tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not settings.per_channel:
        converter._experimental_disable_per_channel = True
    converter.representative_dataset = _representative(calibration, lambda n: None)
    return converter


def _debugger(saved_model: Path, settings: ConvertSettings, calibration: np.ndarray, samples: np.ndarray) -> Any:
    tf = load().tf
    return tf.lite.experimental.QuantizationDebugger(
        converter=_int8_converter(saved_model, settings, calibration),
        debug_dataset=_representative(samples, lambda n: None),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            layer_debug_metrics={"mean_abs_error": lambda diff: float(np.mean(np.abs(diff)))}))


def quantization_error(saved_model: Path, settings: ConvertSettings, calibration: np.ndarray,
                       samples: np.ndarray, debugger: Any = None) -> list[dict[str, Any]]:
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

    debug = debugger or _debugger(saved_model, settings, calibration, samples)
    debug.run()
    dump = io.StringIO()
    debug.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale, mse = float(row["scale"]), float(row["mean_squared_error"])
        rows.append({"op": row["op_name"], "tensor": row["tensor_name"], "tensor_index": int(row["tensor_idx"]),
                     "rmse_over_scale": float(np.sqrt(mse) / scale) if scale > 0 else None,
                     "mean_abs_error": float(row["mean_abs_error"]), "max_abs_error": float(row["max_abs_error"]),
                     "mean_squared_error": mse, "stddev": float(row["stddev"]), "scale": scale,
                     "elements": int(float(row["num_elements"]))})
    return rows


def selective(saved_model: Path, settings: ConvertSettings, calibration: np.ndarray, samples: np.ndarray,
              test: tuple[np.ndarray, np.ndarray], float_accuracy: float, layers: list[str],
              log: Callable[[str], None] = lambda line: None) -> tuple[bytes, list[dict[str, Any]], dict[str, Any]]:
    """int8 with some ops kept in float: the recipe's `keep_float` ones, then, with `fallback`, the
    ones int8 hurts most until the accuracy criterion holds on the test split.

    Returns the model (the smallest fallback that meets the criterion, else the most accurate
    attempt), the error rows, and the report: criterion, accuracy of each attempt, the ops kept in
    float, sizes and latencies of plain int8 and the result.
    """
    import fnmatch

    from tensorflow.lite.python import convert as lite_convert

    from edgepack.analyze.weights import match_layer

    tf = load().tf
    debug = _debugger(saved_model, settings, calibration, samples)
    rows = quantization_error(saved_model, settings, calibration, samples, debug)
    for row in rows:
        row["layer"] = match_layer(row["tensor"], layers)
    io_type = tf.int8 if settings.integer_io else tf.float32

    def build(float_tensors: list[str]) -> bytes:
        return bytes(lite_convert.mlir_quantize(
            debug.calibrated_model, disable_per_channel=not settings.per_channel, fully_quantize=settings.integer_io,
            input_data_type=io_type, output_data_type=io_type, denylisted_nodes=float_tensors or None))

    def forced(row: dict[str, Any]) -> bool:
        return any(pattern == row["op"] or fnmatch.fnmatchcase(row["layer"] or "", pattern)
                   for pattern in settings.keep_float)

    kept = [row["tensor"] for row in rows if forced(row)]
    allowed = settings.fallback.allowed_drop(float_accuracy) if settings.fallback else None
    attempts: dict[int, dict[str, Any]] = {}
    ranked = sorted((r for r in rows if r["tensor"] not in kept and r["op"] not in ("QUANTIZE", "DEQUANTIZE")),
                    key=lambda r: -(r["rmse_over_scale"] or 0.0))

    def attempt(count: int) -> dict[str, Any]:
        if count not in attempts:
            chosen = kept + [r["tensor"] for r in ranked[:count]]
            model = build(chosen)
            accuracy = _accuracy(model, *test)
            attempts[count] = {"extra_float_ops": count, "float_tensors": chosen, "accuracy": accuracy,
                               "drop": round(float_accuracy - accuracy, 6), "size_bytes": len(model), "model": model,
                               "met": allowed is None or float_accuracy - accuracy <= allowed + 1e-9}
            log(f"fallback: {len(chosen)} op(s) in float -> accuracy {accuracy:.4f}")
        return attempts[count]

    best = attempt(0)
    plain_model = best["model"] if not kept else build([])  # built, and measured, once
    plain = best["accuracy"] if not kept else _accuracy(plain_model, *test)
    if allowed is not None and not best["met"]:
        limit = min(settings.fallback.max_ops if settings.fallback else 0, len(ranked))
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
        best = (min(met, key=lambda a: a["extra_float_ops"]) if met
                else max(attempts.values(), key=lambda a: a["accuracy"]))  # the best attempt, marked as failing
    by_tensor = {r["tensor"]: r for r in rows}
    report = {
        "criterion": None if settings.fallback is None else {
            "max_drop": settings.fallback.max_drop, "max_relative_drop": settings.fallback.max_relative_drop,
            "allowed_drop": allowed, "max_ops": settings.fallback.max_ops},
        "float_accuracy": float_accuracy, "plain_int8_accuracy": plain,
        "plain_int8_size_bytes": len(plain_model),
        "accuracy": best["accuracy"], "met": best["met"], "size_bytes": best["size_bytes"],
        "kept_float": [{"tensor": t, "op": by_tensor[t]["op"], "layer": by_tensor[t]["layer"],
                        "forced": t in kept} for t in best["float_tensors"]],
        "attempts": [{k: v for k, v in a.items() if k not in ("model", "float_tensors")}
                     for _, a in sorted(attempts.items())],
        "host_latency_ms": {"plain_int8": _median_latency_ms(plain_model), "result": _median_latency_ms(best["model"])},
    }
    return best["model"], rows, report


def _median_latency_ms(model: bytes, runs: int = 50, warmup: int = 5) -> float:
    """Median invoke time on this machine, 1 thread: what keeping ops in float costs, roughly."""
    import time

    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    times = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        interp.invoke()
        if index >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _accuracy(model: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a single-input classifier flatbuffer with LiteRT (as the evaluate stage measures)."""
    import tempfile

    from edgepack.litert import tflite_accuracy
    from edgepack.reporting import NullReporter

    with tempfile.TemporaryDirectory(prefix="edgepack-fallback-") as tmp:
        path = Path(tmp) / "candidate.tflite"
        path.write_bytes(model)
        return tflite_accuracy(path, x, y, NullReporter(), "fallback")


def _representative(calibration: np.ndarray, progress: Callable[[int], None]) -> Any:
    def generate() -> Any:
        for index, sample in enumerate(calibration):
            progress(index + 1)
            yield [sample[None, ...].astype(np.float32)]

    return generate
