"""Convert a Keras 2 model to TFLite: int8 (int8 or float I/O), int16x8, dynamic range, float16, float32."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.errors import StageError
from edgepack.models.tf import load
from edgepack.recipe.schema import ConvertSettings
from edgepack.reporting import Reporter

CALIBRATED_MODES = {"int8", "int16x8"}


def convert(model: Any, settings: ConvertSettings, calibration: np.ndarray, reporter: Reporter) -> bytes:
    """The `.tflite` flatbuffer of `model` in the recipe's mode, calibrated on `calibration`."""
    tf = load().tf
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
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
    if mode not in CALIBRATED_MODES:
        return _run(converter, mode)
    with reporter.task(f"convert {mode}: calibrate", len(calibration)) as task:
        converter.representative_dataset = _representative(calibration, task)
        return _run(converter, mode)


def _representative(calibration: np.ndarray, task: Any) -> Any:
    def generate() -> Any:
        for sample in calibration:
            task.advance(1)
            yield [sample[None, ...].astype(np.float32)]

    return generate


def _run(converter: Any, mode: str) -> bytes:
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(
            f"TFLite conversion to {mode} failed: {first}",
            context=f"convert.mode = '{mode}'",
            hint="an op without an integer kernel needs convert.mode = 'dynamic' or 'float16'",
            code="convert-failed",
        ) from exc
