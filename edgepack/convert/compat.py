"""The converter's private switches edgepack relies on, in one place, each checked before use.

TensorFlow has no public API for weight granularity: per-tensor weights everywhere
(`_experimental_disable_per_channel`) and per-tensor Dense layers with per-channel convolutions
(`_experimental_disable_per_channel_quantization_for_dense_layers`) are private attributes of the
converter, and the same two are keyword arguments of `mlir_quantize` (the selective int8 path). A
TensorFlow that renames one must fail here, loudly and by name, never convert per channel silently.
"""

from __future__ import annotations

import inspect
from typing import Any

from edgepack.errors import StageError

PER_TENSOR_ATTR = "_experimental_disable_per_channel"
DENSE_PER_TENSOR_ATTR = "_experimental_disable_per_channel_quantization_for_dense_layers"
# mlir_quantize's keyword for each converter attribute
MLIR_KEYWORDS = {PER_TENSOR_ATTR: "disable_per_channel", DENSE_PER_TENSOR_ATTR: "disable_per_channel_for_dense_layers"}


def _missing(what: str, where: str) -> StageError:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("tensorflow")
    except PackageNotFoundError:
        installed = "not installed"
    return StageError(
        f"this TensorFlow ({installed}) has no {what} in {where}: the converter's private "
        "weight-granularity switch was renamed or removed",
        code="converter-incompatible",
        hint="install a TensorFlow edgepack supports (pip install 'tensorflow>=2.16,<2.22'), or remove "
        "convert.per_channel / convert.dense_granularity from the recipe",
    )


def set_granularity(converter: Any, per_channel: bool, dense_per_tensor: bool) -> None:
    """Set the weight granularity on a `TFLiteConverter`: everything per tensor (`per_channel` False),
    or Dense layers per tensor with convolutions per channel (`dense_per_tensor`)."""
    for attr, wanted in ((PER_TENSOR_ATTR, not per_channel), (DENSE_PER_TENSOR_ATTR, dense_per_tensor)):
        if not hasattr(converter, attr):
            if not wanted:
                continue  # the default: nothing to switch
            raise _missing(f"attribute {attr}", type(converter).__name__)
        setattr(converter, attr, wanted)


def mlir_quantize_granularity(per_channel: bool, dense_per_tensor: bool) -> dict[str, bool]:
    """The keyword arguments of `mlir_quantize` for the same granularity (the selective int8 path)."""
    from tensorflow.lite.python import convert as lite_convert

    accepted = inspect.signature(lite_convert.mlir_quantize).parameters
    wanted = {PER_TENSOR_ATTR: not per_channel, DENSE_PER_TENSOR_ATTR: dense_per_tensor}
    keywords = {}
    for attr, value in wanted.items():
        keyword = MLIR_KEYWORDS[attr]
        if keyword not in accepted:
            if value:
                raise _missing(f"keyword {keyword}", "tensorflow.lite.python.convert.mlir_quantize")
            continue
        keywords[keyword] = value
    return keywords


def problems() -> list[str]:
    """Which of the switches this TensorFlow lacks (empty when all are there): what the compatibility test asserts."""
    from tensorflow.lite.python import convert as lite_convert

    from edgepack.models.tf import load

    tf = load().tf
    module = tf.Module()
    module.identity = tf.function(lambda x: x, input_signature=[tf.TensorSpec([1], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.identity.get_concrete_function()], module)
    missing = [f"TFLiteConverter.{attr}" for attr in MLIR_KEYWORDS if not hasattr(converter, attr)]
    accepted = inspect.signature(lite_convert.mlir_quantize).parameters
    missing += [f"mlir_quantize({kw}=)" for kw in MLIR_KEYWORDS.values() if kw not in accepted]
    return missing
