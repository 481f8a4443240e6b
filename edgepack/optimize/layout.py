"""TFMOT's default 8-bit QAT scheme, with the weights of a layer that feeds a ReLU layer kept quantized.

TFMOT's `LayerReLUQuantize` transform (tfmot 0.8.1) matches a ReLU layer after an Add, Conv2D,
DepthwiseConv2D or Dense layer and gives that layer a `NoOpQuantizeConfig`, so that no fake-quant
sits between it and the ReLU (the converter fuses the two). For Add that is right; for a layer
with weights it also turns off the *weight* fake-quant, so QAT never trains the kernel the int8
model ships, and the converter quantizes it afterwards on its own. TFMOT's Conv2D + BN + ReLU
transform does it correctly: the layer keeps its weight quantizer and only its output quantizer is
removed (a `NoOpActivation`). This module applies that treatment to the plain Conv/Dense -> ReLU
case, which is what a model has after its BatchNormalization layers are folded (see `fold.py`).
"""

from __future__ import annotations

from typing import Any

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")


def default_scheme(per_channel: bool) -> Any:
    """`Default8BitQuantizeScheme` whose layout keeps the weight quantizer before a ReLU layer."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_layout_transform as layout,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_scheme,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_transforms as transforms,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (
        model_transformer,
    )

    def keep_weights(cls: type) -> type:
        class KeepWeights(cls):
            def replacement(self, match_layer: Any) -> Any:
                node = match_layer.input_layers[0]
                config = node.layer["config"]
                if node.layer["class_name"] in WEIGHTED and config.get("activation") == "linear":
                    config["activation"] = transforms.quantize_utils.serialize_activation(
                        transforms.quantize_aware_activation.NoOpActivation(), use_legacy_format=True
                    )
                    return match_layer
                return super().replacement(match_layer)

        KeepWeights.__name__ = cls.__name__
        return KeepWeights

    fixed = {
        transforms.LayerReLUQuantize: keep_weights(transforms.LayerReLUQuantize),
        transforms.LayerReluActivationQuantize: keep_weights(transforms.LayerReluActivationQuantize),
    }

    class Layout(layout.Default8BitQuantizeLayoutTransform):
        def apply(self, model: Any, layer_quantize_map: dict[str, Any]) -> Any:
            original = model_transformer.ModelTransformer

            class Transformer(original):  # type: ignore[misc, valid-type]
                def __init__(self, model: Any, chain: list[Any], *args: Any, **kwargs: Any) -> None:
                    chain = [fixed[type(t)]() if type(t) in fixed else t for t in chain]
                    super().__init__(model, chain, *args, **kwargs)

            layout.model_transformer.ModelTransformer = Transformer
            try:
                return super().apply(model, layer_quantize_map)
            finally:
                layout.model_transformer.ModelTransformer = original

    class Scheme(default_8bit_quantize_scheme.Default8BitQuantizeScheme):
        def get_layout_transformer(self) -> Any:
            return Layout()

    return Scheme(disable_per_axis=not per_channel)
