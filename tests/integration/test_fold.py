"""Per-tensor QAT: BatchNormalization folding, the weight quantizer before a ReLU layer, the int8 file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO

from edgepack.datasets import load_dataset
from edgepack.recipe.schema import DigitsDataset


def randomize_bn(model: Any, seed: int = 0) -> None:
    """Give every BatchNormalization non-trivial statistics, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.2, 3.0, gamma.shape),
                    rng.normal(0, 1, beta.shape),
                    rng.normal(0, 1, mean.shape),
                    rng.uniform(0.1, 4.0, var.shape),
                ]
            )


def functional_model() -> Any:
    from edgepack.models.tf import load

    keras = load().keras
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    h = layers.BatchNormalization(name="conv_bn")(h)
    h = layers.ReLU(6.0, name="conv_relu")(h)
    d = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="dw")(h)
    d = layers.BatchNormalization(name="dw_bn")(d)
    p = layers.Conv2D(6, 1, name="project")(d)
    p = layers.BatchNormalization(name="project_bn")(p)
    h = layers.Add(name="add")([h, p])
    act = layers.Conv2D(4, 1, activation="relu", name="act_conv")(h)  # has an activation: not folded
    act = layers.BatchNormalization(name="act_bn")(act)
    shared = layers.Conv2D(4, 1, name="shared_conv")(h)  # also feeds `concat`: not folded
    shared_bn = layers.BatchNormalization(name="shared_bn")(shared)
    h = layers.Concatenate(name="concat")([act, shared_bn, shared])
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    h = layers.Dense(5, name="fc")(h)
    outputs = layers.BatchNormalization(name="fc_bn")(h)
    return keras.Model(inputs, outputs)


def test_folding_keeps_the_outputs_and_removes_the_foldable_bn() -> None:
    from edgepack.optimize.fold import Fold, fold_batchnorm

    model = functional_model()
    randomize_bn(model)
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype(np.float32)
    folded, folds = fold_batchnorm(model, "optimize[0] qat")
    assert folds == [Fold("conv", "conv_bn"), Fold("dw", "dw_bn"), Fold("project", "project_bn"), Fold("fc", "fc_bn")]
    left = [layer.name for layer in folded.layers if type(layer).__name__ == "BatchNormalization"]
    assert left == ["act_bn", "shared_bn"]
    assert folded.get_layer("dw").use_bias and folded.get_layer("conv_relu").input.name.startswith("conv")
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


def test_folding_a_sequential_model() -> None:
    from edgepack.models.tf import load
    from edgepack.optimize.fold import fold_batchnorm

    keras = load().keras
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(3, 3, name="c"),
            keras.layers.BatchNormalization(name="c_bn"),
            keras.layers.ReLU(name="r"),
            keras.layers.Flatten(name="f"),
            keras.layers.Dense(4, name="d"),
            keras.layers.BatchNormalization(name="d_bn"),
        ]
    )
    randomize_bn(model)
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 1)).astype(np.float32)
    folded, folds = fold_batchnorm(model, "optimize[0] qat")
    assert [f.bn for f in folds] == ["c_bn", "d_bn"]
    assert [layer.name for layer in folded.layers] == ["c", "r", "f", "d"]
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("per_channel", [True, False])
def test_a_conv_before_a_relu_layer_keeps_its_weight_quantizer(per_channel: bool) -> None:
    # TFMOT's own layout gives such a conv a NoOpQuantizeConfig: no weight fake-quant at all.
    from edgepack.models.tf import load
    from edgepack.optimize.qat import scheme_for

    keras, quant = load().keras, load().tfmot.quantization.keras
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.ReLU(6.0, name="relu")(h)
    h = keras.layers.DepthwiseConv2D(3, name="dw")(h)
    h = keras.layers.ReLU(name="dw_relu")(h)
    outputs = keras.layers.Dense(3, name="fc")(keras.layers.Flatten(name="flat")(h))
    model = keras.Model(inputs, outputs)
    _, scheme = scheme_for(pruned=False, clustered=False, per_channel=per_channel)
    with quant.quantize_scope():
        wrapped = quant.quantize_apply(quant.quantize_annotate_model(model), scheme)
    # Per axis, TFMOT ranges run along the kernel's last axis: Conv2D filters, depthwise multiplier.
    for name, kernel, axis in (("conv", "kernel", (4,)), ("dw", "depthwise_kernel", (1,))):
        layer = wrapped.get_layer(f"quant_{name}")
        ranges = {w.name.split("/")[-1].split(":")[0]: tuple(w.shape) for w in layer.weights}
        assert ranges.get(f"{kernel}_min") == (axis if per_channel else ()), ranges
        assert "post_activation_min" not in ranges  # no fake-quant between the layer and its ReLU
    assert "output_min" in {w.name.split("/")[-1].split(":")[0] for w in wrapped.get_layer("quant_relu").weights}


def test_per_tensor_qat_ships_one_scale_per_kernel_and_matches_keras(tmp_path: Path) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.convert.tflite import convert
    from edgepack.litert import interpreter
    from edgepack.models.source import export_saved_model
    from edgepack.models.tf import load, seed_everything
    from edgepack.optimize.qat import qat
    from edgepack.progress import NullReporter
    from edgepack.recipe.convert import ConvertSettings
    from edgepack.recipe.optimize import QatStage

    data = load_dataset(DigitsDataset(kind="digits", normalization={"mean": 8.0, "std": 8.0}, limit=600), 0, REPO)
    keras = load().keras
    seed_everything(0)
    inputs = keras.Input(data.input_shape)
    h = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(6.0, name="relu")(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)
    h = keras.layers.BatchNormalization(name="dw_bn")(h)
    h = keras.layers.ReLU(6.0, name="dw_relu")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    outputs = keras.layers.Dense(data.num_classes, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=32, verbose=0)

    stage = QatStage(kind="qat", epochs=1, learning_rate=1e-3)
    wrapped, record = qat(model, stage, data, NullReporter(), "optimize[0] qat", per_channel=False)
    assert record["folded_batchnorm"] == {"bn": "conv", "dw_bn": "dw"}
    export_saved_model(wrapped, tmp_path / "saved")
    flatbuffer = convert(
        tmp_path / "saved", ConvertSettings(mode="int8", io="float32", per_channel=False), data.x_train[:100]
    )
    info = read_model(flatbuffer)
    kernels = [t for t in info.tensors if t.data is not None and t.dtype == "int8"]
    assert len(kernels) == 3 and all(len(t.scales) == 1 for t in kernels)
    (tmp_path / "m.tflite").write_bytes(flatbuffer)
    interp = interpreter(tmp_path / "m.tflite")
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    tflite = []
    for sample in data.x_test:
        interp.set_tensor(inp, sample[None])
        interp.invoke()
        tflite.append(interp.get_tensor(out)[0])
    tflite = np.array(tflite)
    agree = np.mean(tflite.argmax(-1) == wrapped.predict(data.x_test, verbose=0).argmax(-1))
    assert agree >= 0.95, f"int8 and QAT model agree on only {agree:.0%} of the test images"
