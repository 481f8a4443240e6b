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


def _representative(calibration: np.ndarray, progress: Callable[[int], None]) -> Any:
    def generate() -> Any:
        for index, sample in enumerate(calibration):
            progress(index + 1)
            yield [sample[None, ...].astype(np.float32)]

    return generate
