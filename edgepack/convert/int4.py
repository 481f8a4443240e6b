"""4-bit weights (`weights = "int4"`): a float32 `.tflite` quantized by litert-quantizer.

FULLY_CONNECTED and CONV_2D kernels become int4 (symmetric, per channel, two values a byte), every
other quantizable op int8, activations and model I/O int8: a full-integer model LiteRT runs. The
calibration is the global min/max of each tensor over the samples, as TFLite's converter does (the
library's default moving average of per-sample ranges clips more and costs about 18 dB of SQNR).
Runs inside the conversion worker, like `edgepack.convert.tflite`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SIGNATURE = "serving_default"
INT4_OPS = ("FULLY_CONNECTED", "CONV_2D")  # the ops that take int4 weights in static mode
INSTALL_HINT = "pip install 'edgepack[int4]'"


def quantize_w4a8(float_tflite: bytes, calibration: list[np.ndarray], input_names: list[str]) -> bytes:
    """The int4-weight, int8-activation model of `float_tflite`, calibrated on one array per input
    (`input_names[i]` is the signature's name of `calibration[i]`)."""
    quantizer, recipe_manager, calibrator, qsv_utils = _modules()
    manager = _recipe(recipe_manager)
    data = {SIGNATURE: _samples(calibration, input_names)}
    cal = calibrator.Calibrator(float_tflite, qsv_update_func=qsv_utils.min_max_update)
    cal.calibrate(data, manager)
    result = quantizer.Quantizer(float_tflite, manager.get_quantization_recipe())
    return bytes(result.quantize(cal.get_model_qsvs(), enable_progress_report=False).quantized_model)


def signature_inputs(float_tflite: bytes) -> list[str]:
    """The serving signature's input names, in its own order."""
    from ai_edge_litert.interpreter import Interpreter

    return list(Interpreter(model_content=float_tflite).get_signature_list()[SIGNATURE]["inputs"])


def check_int4(recipe: str, devices: list[Any]) -> None:
    """Before training: litert-quantizer is installed and no device is TFLite Micro or an Ethos-U NPU
    (a profile of kind tflm / ethos-u under another name than the schema refuses)."""
    import importlib.util

    from edgepack.errors import RecipeError
    from edgepack.recipe.schema import INT4_REFUSED

    micro = [d.name for d in devices if d.kind in ("tflm", "ethos-u")]
    if micro:
        raise RecipeError(
            f"int4 kernels (convert.weights or convert.search.modes) with validate.devices {micro}: {INT4_REFUSED}",
            context=f"recipe '{recipe}'",
            hint="use int8 weights for microcontrollers, or validate on LiteRT devices (host, android...)",
            code="recipe-invalid",
        )
    if importlib.util.find_spec("litert_quantizer") is None:
        raise RecipeError(
            "int4 kernels (convert.weights = 'int4', or 'int4' in convert.search.modes) need litert-quantizer, which is not installed",
            context=f"recipe '{recipe}'",
            hint=INSTALL_HINT,
            code="recipe-invalid",
        )


def _modules() -> tuple[Any, Any, Any, Any]:
    try:
        from litert_quantizer import calibrator, quantizer, recipe_manager
        from litert_quantizer.utils import qsv_utils
    except ImportError as exc:
        raise RuntimeError(
            f"convert.weights = 'int4' needs litert-quantizer, which is not installed: {INSTALL_HINT}"
        ) from exc
    return quantizer, recipe_manager, calibrator, qsv_utils


def _recipe(recipe_manager: Any) -> Any:
    """Every supported op int8 (weights and activations), then FULLY_CONNECTED and CONV_2D weights
    int4 per channel (later entries win)."""
    from litert_quantizer import qtyping

    manager = recipe_manager.RecipeManager()
    op_name = qtyping.TFLOperationName
    manager.add_static_config(".*", op_name.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
    for op in INT4_OPS:
        manager.add_static_config(
            ".*",
            getattr(op_name, op),
            activation_num_bits=8,
            weight_num_bits=4,
            weight_granularity=qtyping.QuantGranularity.CHANNELWISE,
        )
    return manager


def _samples(calibration: list[np.ndarray], input_names: list[str]) -> list[dict[str, np.ndarray]]:
    """One `{input name: batch of one}` a sample; float samples float32, integer ones int32."""

    def cast(a: np.ndarray) -> np.ndarray:
        return a.astype(np.int32 if np.issubdtype(a.dtype, np.integer) else np.float32)

    return [
        {name: cast(a[index][None, ...]) for name, a in zip(input_names, calibration, strict=True)}
        for index in range(len(calibration[0]))
    ]
