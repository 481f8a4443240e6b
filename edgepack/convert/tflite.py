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


def quantization_error(saved_model: Path, settings: ConvertSettings, calibration: np.ndarray,
                       samples: np.ndarray) -> list[dict[str, Any]]:
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

    tf = load().tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not settings.per_channel:
        converter._experimental_disable_per_channel = True
    converter.representative_dataset = _representative(calibration, lambda n: None)
    debug = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_representative(samples, lambda n: None),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            layer_debug_metrics={"mean_abs_error": lambda diff: float(np.mean(np.abs(diff)))}))
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


def _representative(calibration: np.ndarray, progress: Callable[[int], None]) -> Any:
    def generate() -> Any:
        for index, sample in enumerate(calibration):
            progress(index + 1)
            yield [sample[None, ...].astype(np.float32)]

    return generate
