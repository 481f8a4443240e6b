"""Keras 3 models rebuilt in tf_keras: saved with Keras 3, loaded, bridged, proven equal; refusals; formats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepack.errors import ModelError
from edgepack.models.tf import load


@pytest.fixture(scope="module")
def keras() -> Any:
    """Keras 3, imported after tf_keras was selected for TensorFlow."""
    from edgepack.models.keras3 import keras3_module

    return keras3_module()


@pytest.fixture(scope="module")
def tk() -> Any:
    return load().keras


def randomize(model: Any, seed: int = 0) -> None:
    """Give every float weight non-trivial values (variances positive), so that a wrong copy shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "layers"):
            randomize(layer, seed + 1)
            continue
        values = []
        for var, value in zip(layer.weights, layer.get_weights()):
            if value.dtype.kind != "f":
                values.append(value)
            elif "variance" in var.name:
                values.append(rng.uniform(0.5, 2.0, value.shape).astype(value.dtype))
            else:
                values.append(rng.normal(0.0, 0.5, value.shape).astype(value.dtype))
        layer.set_weights(values)


def roundtrip(model: Any, tmp_path: Path, suffix: str = ".keras") -> Any:
    """Save `model` with Keras 3 and load it back through `load_keras3`."""
    from edgepack.models.keras3 import load_keras3

    path = tmp_path / f"{model.name}{suffix}"
    model.save(path)
    return load_keras3(path, where="model.path")


def bridged(model: Any, tmp_path: Path, x: Any, suffix: str = ".keras") -> tuple[Any, Any, Any]:
    """(loaded Keras 3 model, tf_keras rebuild, proof), with names and weights checked."""
    from edgepack.models.keras3 import bridge, prove_bridge

    loaded = roundtrip(model, tmp_path, suffix)
    tf_model = bridge(loaded)
    proof = prove_bridge(loaded, tf_model, x)
    assert proof.max_abs_diff <= 1e-5, proof
    assert proof.samples == len(x[0] if isinstance(x, list) else x)
    assert_same_structure(loaded, tf_model)
    return loaded, tf_model, proof


def assert_same_structure(k3: Any, tf_model: Any) -> None:
    assert type(tf_model).__module__.startswith("tf_keras.")
    assert tf_model.name == k3.name
    assert sorted(layer.name for layer in tf_model.layers) == sorted(layer.name for layer in k3.layers)
    assert [t.name for t in tf_model.inputs] == [t.name for t in k3.inputs]
    if type(k3).__name__ == "Functional":
        assert list(tf_model.output_names) == list(k3.output_names)
    assert k3.weights
    assert len(tf_model.weights) == len(k3.weights)
    assert len(tf_model.trainable_weights) == len(k3.trainable_weights)
    assert tf_model.count_params() == k3.count_params()


def images(shape: tuple[int, ...], n: int = 8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The models, one group of layers each
# ---------------------------------------------------------------------------------------------


def cnn(keras: Any) -> Any:
    """Conv/BN/ReLU6/DepthwiseConv/residual Add/pooling/Dropout/Dense: the TFMOT-friendly CNN."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 3), name="image")
    h = layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    h = layers.BatchNormalization(name="conv_bn")(h)
    h = layers.ReLU(6.0, name="conv_relu")(h)
    d = layers.DepthwiseConv2D(3, padding="same", name="dw")(h)
    d = layers.BatchNormalization(name="dw_bn")(d)
    d = layers.ReLU(6.0, name="dw_relu")(d)
    d = layers.Conv2D(8, 1, name="project")(d)
    d = layers.BatchNormalization(name="project_bn")(d)
    h = layers.Add(name="add")([h, d])
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    h = layers.Dropout(0.2, name="drop")(h)
    outputs = layers.Dense(4, activation="softmax", name="logits")(h)
    return keras.Model(inputs, outputs, name="cnn")


def activations_net(keras: Any) -> Any:
    """SeparableConv, fused relu6/silu, ReLU's arguments, LeakyReLU/PReLU/ELU/Softmax, LayerNorm, noise."""
    layers = keras.layers
    inputs = keras.Input((6, 6, 2), name="x")
    h = layers.SeparableConv2D(4, 3, padding="same", activation="relu6", name="sep")(inputs)
    h = layers.Activation("relu6", name="act_relu6")(h)
    h = layers.ReLU(max_value=5.0, negative_slope=0.1, threshold=0.3, name="relu_args")(h)
    h = layers.LeakyReLU(negative_slope=0.2, name="leaky")(h)
    h = layers.PReLU(shared_axes=[1, 2], name="prelu")(h)
    h = layers.ELU(alpha=0.7, name="elu")(h)
    h = layers.Conv2D(4, 1, activation="silu", name="conv_silu")(h)
    h = layers.AveragePooling2D(2, name="avgpool")(h)
    h = layers.GaussianNoise(0.1, name="noise")(h)
    h = layers.SpatialDropout2D(0.2, name="sdrop")(h)
    h = layers.LayerNormalization(name="ln")(h)
    h = layers.GlobalMaxPooling2D(keepdims=True, name="gmp")(h)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dense(6, activation="gelu", name="fc_gelu")(h)
    outputs = layers.Softmax(name="softmax")(h)
    return keras.Model(inputs, outputs, name="activations_net")


def every_activation(keras: Any, names: list[str]) -> Any:
    """One Activation layer per activation name tf_keras computes the same way, side by side."""
    inputs = keras.Input((5,), name="x")
    h = keras.layers.Dense(6, name="fc")(inputs)
    branches = [keras.layers.Activation(name, name=f"act_{name}")(h) for name in names]
    outputs = keras.layers.Concatenate(name="all")(branches)
    return keras.Model(inputs, outputs, name="every_activation")


def conv1d_net(keras: Any) -> Any:
    layers = keras.layers
    inputs = keras.Input((12, 3), name="signal")
    h = layers.Conv1D(4, 3, padding="causal", dilation_rate=2, name="c1")(inputs)
    h = layers.MaxPooling1D(2, name="mp1")(h)
    h = layers.Conv1D(4, 3, padding="same", activation="tanh", name="c2")(h)
    h = layers.AveragePooling1D(2, name="ap1")(h)
    h = layers.ZeroPadding1D(1, name="zp1")(h)
    h = layers.Cropping1D((1, 0), name="crop1")(h)
    h = layers.UpSampling1D(2, name="up1")(h)
    h = layers.SpatialDropout1D(0.1, name="sdrop1")(h)
    pooled = [layers.GlobalAveragePooling1D(name="gap1")(h), layers.GlobalMaxPooling1D(name="gmp1")(h)]
    h = layers.Concatenate(name="cat")(pooled)
    outputs = layers.Dense(2, name="out")(h)
    return keras.Model(inputs, outputs, name="conv1d_net")


def resize_net(keras: Any) -> Any:
    """Padding, cropping, upsampling (nearest, bilinear), Conv2DTranspose, Permute, Reshape."""
    layers = keras.layers
    inputs = keras.Input((4, 4, 3), name="x")
    h = layers.ZeroPadding2D(((1, 0), (0, 1)), name="zp")(inputs)
    h = layers.Conv2D(4, 2, name="conv")(h)
    h = layers.Cropping2D(((1, 0), (0, 1)), name="crop")(h)
    h = layers.UpSampling2D(2, interpolation="bilinear", name="up_bilinear")(h)
    h = layers.Conv2DTranspose(3, 3, strides=2, padding="same", name="deconv")(h)
    h = layers.UpSampling2D((1, 2), name="up_nearest")(h)
    h = layers.Permute((3, 1, 2), name="permute")(h)
    h = layers.Reshape((-1,), name="reshape")(h)
    outputs = layers.Dense(2, name="out")(h)
    return keras.Model(inputs, outputs, name="resize_net")


def front_end(keras: Any, data: np.ndarray) -> Any:
    """Rescaling, an adapted Normalization (weights), a configured inverting one, Identity."""
    layers = keras.layers
    adapted = layers.Normalization(name="norm_adapted")
    adapted.adapt(data * 0.5 - 0.25)
    inputs = keras.Input((6,), name="raw")
    h = layers.Rescaling(0.5, offset=-0.25, name="rescale")(inputs)
    h = adapted(h)
    h = layers.Dense(3, name="fc")(h)
    h = layers.Normalization(mean=[1.0, -2.0, 0.5], variance=[4.0, 0.25, 1.0], invert=True, name="denorm")(h)
    outputs = layers.Identity(name="identity")(h)
    return keras.Model(inputs, outputs, name="front_end")


def embedding_lstm(keras: Any) -> Any:
    inputs = keras.Input((7,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(20, 4, mask_zero=True, name="emb")(inputs)
    h = keras.layers.LSTM(5, return_sequences=True, name="lstm_seq")(h)
    h = keras.layers.LSTM(3, name="lstm_last")(h)
    outputs = keras.layers.Dense(2, name="out")(h)
    return keras.Model(inputs, outputs, name="embedding_lstm")


def embedding_gru(keras: Any) -> Any:
    inputs = keras.Input((7,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(20, 4, name="emb")(inputs)
    h = keras.layers.GRU(4, return_sequences=True, name="gru_seq")(h)
    h = keras.layers.GRU(3, reset_after=False, name="gru_v1")(h)
    outputs = keras.layers.Dense(2, name="out")(h)
    return keras.Model(inputs, outputs, name="embedding_gru")


def two_in_two_out(keras: Any) -> Any:
    """Two inputs, a shared layer, every merge layer, two named outputs."""
    layers = keras.layers
    a = keras.Input((6,), name="left")
    b = keras.Input((6,), name="right")
    shared = layers.Dense(5, activation="tanh", name="shared")
    sa, sb = shared(a), shared(b)
    merged = [
        layers.Multiply(name="mul")([sa, sb]),
        layers.Subtract(name="sub")([sa, sb]),
        layers.Average(name="avg")([sa, sb]),
        layers.Maximum(name="max")([sa, sb]),
        layers.Minimum(name="min")([sa, sb]),
        layers.Add(name="sum")([sa, sb]),
    ]
    h = layers.Concatenate(name="cat")(merged)
    score = layers.Dense(1, name="score")(h)
    label = layers.Dense(3, activation="softmax", name="label")(h)
    return keras.Model([a, b], [score, label], name="two_in_two_out")


def sequential(keras: Any) -> Any:
    return keras.Sequential(
        [
            keras.Input((10,), name="features"),
            keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3), name="fc1"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dropout(0.3, name="drop"),
            keras.layers.Dense(4, kernel_constraint=keras.constraints.MaxNorm(2.0), name="fc2"),
        ],
        name="seq",
    )


def nested(keras: Any) -> Any:
    """A functional model holding a Sequential block and a functional block as layers."""
    block_in = keras.Input((4, 4, 6), name="block_in")
    block_out = keras.layers.Add(name="block_add")([block_in, keras.layers.Conv2D(6, 1, name="block_conv")(block_in)])
    block = keras.Model(block_in, block_out, name="residual_block")
    stem = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.Conv2D(6, 3, padding="same", name="stem_conv"),
            keras.layers.BatchNormalization(name="stem_bn"),
            keras.layers.ReLU(name="stem_relu"),
        ],
        name="stem",
    )
    stem.get_layer("stem_bn").trainable = False  # frozen: must stay frozen
    inputs = keras.Input((4, 4, 3), name="image")
    h = block(stem(inputs))
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = keras.layers.Dense(3, name="head")(h)
    return keras.Model(inputs, outputs, name="nested")


# ---------------------------------------------------------------------------------------------
# Bridges proven equal
# ---------------------------------------------------------------------------------------------


def test_cnn_is_bridged_with_every_weight(keras: Any, tmp_path: Path) -> None:
    model = cnn(keras)
    randomize(model)
    loaded, tf_model, proof = bridged(model, tmp_path, images((8, 8, 3), 16))
    assert proof.outputs == [proof.max_abs_diff]
    assert proof.to_dict()["samples"] == 16
    bn = tf_model.get_layer("dw_bn")
    np.testing.assert_array_equal(bn.moving_variance.numpy(), np.asarray(loaded.get_layer("dw_bn").moving_variance))
    assert type(tf_model.get_layer("dw")).__name__ == "DepthwiseConv2D"


def test_activations_and_separable_conv_are_bridged(keras: Any, tmp_path: Path) -> None:
    _, tf_model, _ = bridged(_randomized(activations_net(keras)), tmp_path, images((6, 6, 2)) * 3)
    assert tf_model.get_layer("leaky").alpha == pytest.approx(0.2)
    assert tf_model.get_layer("conv_silu").get_config()["activation"] == "swish"
    relu = tf_model.get_layer("relu_args")
    assert (float(relu.max_value), float(relu.negative_slope), float(relu.threshold)) == pytest.approx((5.0, 0.1, 0.3))


def test_every_shared_activation_computes_the_same(keras: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import RENAMED_ACTIVATIONS, SAME_ACTIVATIONS

    names = sorted(SAME_ACTIVATIONS | set(RENAMED_ACTIVATIONS))
    assert len(names) >= 15
    _, tf_model, _ = bridged(_randomized(every_activation(keras, names)), tmp_path, images((5,), 32) * 4)
    assert tf_model.get_layer("act_relu6").get_config()["activation"] == "relu6"


def test_conv1d_net_is_bridged(keras: Any, tmp_path: Path) -> None:
    _, tf_model, _ = bridged(_randomized(conv1d_net(keras)), tmp_path, images((12, 3)))
    assert tf_model.get_layer("c1").padding == "causal"


def test_resize_net_is_bridged(keras: Any, tmp_path: Path) -> None:
    _, tf_model, _ = bridged(_randomized(resize_net(keras)), tmp_path, images((4, 4, 3)))
    assert tf_model.get_layer("up_bilinear").interpolation == "bilinear"
    assert tf_model.output_shape == (None, 2)


def test_rescaling_and_normalization_front_end(keras: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import bridge, prove_bridge

    data = np.random.default_rng(3).normal(2.0, 3.0, size=(64, 6)).astype(np.float32)
    model = front_end(keras, data)
    statistics = np.asarray(model.get_layer("norm_adapted").mean).ravel()
    assert np.abs(statistics).max() > 0.1  # adapted, not the initial zeros
    loaded, tf_model, _ = bridged(model, tmp_path, data[:16])
    adapted = tf_model.get_layer("norm_adapted")
    np.testing.assert_allclose(adapted.mean.numpy().ravel(), statistics, rtol=1e-6)
    assert tf_model.get_layer("denorm").invert is True
    # weights set without Keras 3's finalize_state(): the bridge copies what the layer computes with
    randomize(model)
    assert prove_bridge(model, bridge(model), data[:16]).max_abs_diff <= 1e-5


@pytest.mark.parametrize("builder", [embedding_lstm, embedding_gru])
def test_embedding_recurrent_models_are_bridged(keras: Any, tmp_path: Path, builder: Callable[[Any], Any]) -> None:
    tokens = np.random.default_rng(4).integers(1, 20, size=(12, 7))
    tokens[::2, 3:] = 0  # padding, which the mask must hide in both
    _, tf_model, _ = bridged(_randomized(builder(keras)), tmp_path, tokens)
    recurrent = [layer for layer in tf_model.layers if type(layer).__name__ in ("LSTM", "GRU")]
    assert len(recurrent) == 2
    if builder is embedding_gru:
        assert [layer.reset_after for layer in recurrent] == [True, False]
        return
    # Keras 3 records the Embedding's mask as a not_equal op; in tf_keras it must flow implicitly
    assert tf_model.get_layer("emb").mask_zero is True
    for name in ("lstm_seq", "lstm_last"):
        assert getattr(tf_model.get_layer(name).input, "_keras_mask", None) is not None, name
    padded = tokens[::2]
    pre_padded = np.roll(padded, 4, axis=1)  # masked steps are skipped: where the padding is does not matter
    assert (pre_padded[:, :4] == 0).all() and (pre_padded[:, 4:] == padded[:, :3]).all()
    np.testing.assert_allclose(tf_model(padded).numpy(), tf_model(pre_padded).numpy(), atol=1e-6)


def test_two_inputs_two_outputs_and_a_shared_layer(keras: Any, tmp_path: Path) -> None:
    x = [images((6,), 10, seed=5), images((6,), 10, seed=6)]
    _, tf_model, proof = bridged(_randomized(two_in_two_out(keras)), tmp_path, x)
    assert len(proof.outputs) == 2
    assert list(tf_model.output_names) == ["score", "label"]
    assert len(tf_model.get_layer("shared")._inbound_nodes) == 2


def test_dict_inputs_and_outputs(keras: Any) -> None:
    from edgepack.models.keras3 import bridge, prove_bridge

    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    total = keras.layers.Add(name="total")([a, b])
    model = _randomized(
        keras.Model(
            {"a": a, "b": b},
            {"sum": keras.layers.Dense(2, name="fc")(total), "copy": keras.layers.Dense(1, name="copy")(a)},
        )
    )
    tf_model = bridge(model)
    proof = prove_bridge(model, tf_model, [images((3,), seed=9), images((3,), seed=10)])
    assert len(proof.outputs) == 2 and proof.max_abs_diff <= 1e-5
    assert sorted(tf_model.output_names) == ["copy", "fc"]


def test_sequential_model_saved_as_h5(keras: Any, tmp_path: Path) -> None:
    _, tf_model, _ = bridged(_randomized(sequential(keras)), tmp_path, images((10,)), suffix=".h5")
    assert type(tf_model).__name__ == "Sequential"
    assert [layer.name for layer in tf_model.layers] == ["fc1", "bn", "drop", "fc2"]
    assert tf_model.get_layer("fc1").kernel_regularizer.get_config()["l2"] == pytest.approx(1e-3)
    assert tf_model.get_layer("fc2").kernel_constraint.get_config()["max_value"] == pytest.approx(2.0)


def test_nested_sequential_and_functional_blocks(keras: Any, tmp_path: Path) -> None:
    _, tf_model, _ = bridged(_randomized(nested(keras)), tmp_path, images((4, 4, 3)))
    stem = tf_model.get_layer("stem")
    assert type(stem).__name__ == "Sequential"
    assert [layer.name for layer in stem.layers] == ["stem_conv", "stem_bn", "stem_relu"]
    assert stem.get_layer("stem_bn").trainable is False and stem.get_layer("stem_conv").trainable is True
    assert tf_model.get_layer("residual_block").get_layer("block_conv").kernel.shape == (1, 1, 6, 6)


def test_a_recorded_training_flag_is_left_to_the_outer_call_as_in_keras3(keras: Any) -> None:
    from edgepack.models.keras3 import bridge

    inputs = keras.Input((200,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5, name="drop")(inputs, training=False))
    tf_model = bridge(model)
    ones = np.ones((1, 200), dtype=np.float32)
    keras3_zeros = float(np.mean(np.asarray(model(ones, training=True)) == 0))
    assert 0.2 < keras3_zeros < 0.8  # Keras 3: the outer training=True overrides the recorded False
    assert 0.2 < float(np.mean(tf_model(ones, training=True).numpy() == 0)) < 0.8
    np.testing.assert_array_equal(tf_model(ones).numpy(), ones)


@pytest.mark.parametrize("builder", [cnn, nested, sequential])
def test_bridged_models_survive_the_stage_h5_format(keras: Any, tmp_path: Path, builder: Callable[[Any], Any]) -> None:
    from edgepack.models.keras3 import bridge, prove_bridge
    from edgepack.models.source import load_model, save_model

    model = _randomized(builder(keras))
    save_model(bridge(model), tmp_path / "stage.h5")
    reloaded = load_model(tmp_path / "stage.h5")
    shape = tuple(model.inputs[0].shape[1:])
    assert prove_bridge(model, reloaded, images(shape)).max_abs_diff <= 1e-5


def test_tfmot_accepts_the_bridged_cnn_and_it_trains(keras: Any, tk: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import bridge

    tfmot = load().tfmot
    tf_model = bridge(_randomized(cnn(keras)))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(tk.models.clone_model(tf_model))
    quantized = tfmot.quantization.keras.quantize_model(tk.models.clone_model(tf_model))
    assert any(type(layer).__name__ == "PruneLowMagnitude" for layer in pruned.layers)
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in quantized.layers)
    x, y = images((8, 8, 3), 8), np.arange(8) % 4
    before = [w.copy() for w in tf_model.get_layer("logits").get_weights()]
    tf_model.compile(optimizer=tk.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    history = tf_model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(before[0], tf_model.get_layer("logits").get_weights()[0])


def _randomized(model: Any) -> Any:
    randomize(model)
    return model


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

CUSTOM_LAYERS = """
import keras


@keras.saving.register_keras_serializable(package="edgepack_test")
class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.factor
"""


def test_a_custom_layer_is_refused_by_name_and_class(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgepack.models.keras3 import UnbridgeableLayer, bridge, load_keras3

    (tmp_path / "k3_custom_layers.py").write_text(CUSTOM_LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    custom = importlib.import_module("k3_custom_layers")
    inputs = keras.Input((3,), name="x")
    outputs = keras.layers.Dense(2, name="fc")(custom.Scale(name="my_scale")(inputs))
    keras.Model(inputs, outputs, name="custom").save(tmp_path / "custom.keras")
    loaded = load_keras3(tmp_path / "custom.keras", where="model.path", imports=["k3_custom_layers"])
    with pytest.raises(UnbridgeableLayer) as caught:
        bridge(loaded)
    assert (caught.value.layer, caught.value.layer_class) == ("my_scale", "Scale")
    assert caught.value.code == "keras3-unbridgeable"
    assert "my_scale" in caught.value.message and "Scale" in caught.value.message


def test_an_unknown_class_fails_to_load_with_a_hint(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgepack.models.keras3 import load_keras3

    (tmp_path / "k3_custom_gone.py").write_text(CUSTOM_LAYERS.replace("edgepack_test", "edgepack_gone"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    custom = importlib.import_module("k3_custom_gone")
    inputs = keras.Input((3,))
    keras.Model(inputs, custom.Scale(name="s")(inputs)).save(tmp_path / "gone.keras")
    keras.saving.get_custom_objects().pop("edgepack_gone>Scale")
    with pytest.raises(ModelError) as caught:
        load_keras3(tmp_path / "gone.keras", where="model.path")
    assert caught.value.code == "model-unloadable"
    assert "Scale" in caught.value.message and "gone.keras" in caught.value.message
    assert "model.imports" in (caught.value.hint or "")


def test_a_lambda_layer_is_refused_at_load_in_safe_mode(keras: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import load_keras3

    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)).save(tmp_path / "lam.keras")
    with pytest.raises(ModelError) as caught:
        load_keras3(tmp_path / "lam.keras", where="model.path")
    assert caught.value.code == "model-unloadable"
    assert "Lambda" in caught.value.message and "safe mode" in (caught.value.hint or "")


def _refused_models(keras: Any) -> list[tuple[str, Callable[[], Any], str, str]]:
    """(id, model builder, refused layer, word the reason must contain)."""
    layers = keras.layers

    def single(layer: Any, shape: tuple[int, ...] = (4, 4, 3)) -> Any:
        inputs = keras.Input(shape)
        return keras.Model(inputs, layer(inputs))

    def ops_model() -> Any:
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(2, name="fc")(keras.ops.add(inputs, 1.0)))

    def int8_model() -> Any:
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="q")])
        model.quantize("int8")
        return model

    return [
        ("rms_scaling", lambda: single(layers.LayerNormalization(rms_scaling=True, name="ln")), "ln", "rms_scaling"),
        ("synchronized", lambda: single(layers.BatchNormalization(synchronized=True, name="bn")), "bn", "synchronized"),
        ("lora", lambda: single(layers.Dense(2, lora_rank=2, name="lora_fc"), (4,)), "lora_fc", "lora_rank"),
        (
            "mixed_float16",
            lambda: single(layers.Dense(2, dtype="mixed_float16", name="half"), (4,)),
            "half",
            "mixed_float16",
        ),
        ("int8", int8_model, "q", "float32"),
        ("hard_sigmoid", lambda: single(layers.Activation("hard_sigmoid", name="hs"), (4,)), "hs", "hard_sigmoid"),
        (
            "fused_hard_silu",
            lambda: single(layers.Dense(2, activation="hard_silu", name="hsd"), (4,)),
            "hsd",
            "hard_silu",
        ),
        ("keras_ops", ops_model, "add", "keras.ops"),
        ("not_in_registry", lambda: single(layers.Conv3D(2, 1, name="c3d"), (2, 2, 2, 1)), "c3d", "Conv3D"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_keras3_only_arguments_and_classes_are_refused(keras: Any, case: int) -> None:
    from edgepack.models.keras3 import UnbridgeableLayer, bridge

    cases = _refused_models(keras)
    assert len(cases) == 9
    _, build, layer, word = cases[case]
    with pytest.raises(UnbridgeableLayer) as caught:
        bridge(build())
    assert caught.value.layer == layer
    assert word in caught.value.reason, caught.value.reason


def test_every_refusal_is_listed_before_anything_is_built(keras: Any) -> None:
    from edgepack.models.keras3 import UnbridgeableLayer, bridge

    inputs = keras.Input((4,))
    h = keras.layers.LayerNormalization(rms_scaling=True, name="first_bad")(inputs)
    outputs = keras.layers.Activation("celu", name="second_bad")(h)
    with pytest.raises(UnbridgeableLayer) as caught:
        bridge(keras.Model(inputs, outputs))
    assert caught.value.layer == "first_bad"
    assert "second_bad" in (caught.value.context or "")


def test_a_wrong_bridge_is_caught_and_the_layer_named(keras: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import bridge, prove_bridge

    loaded = roundtrip(_randomized(cnn(keras)), tmp_path)
    tf_model = bridge(loaded)
    project = tf_model.get_layer("project")
    kernel, bias = project.get_weights()
    project.set_weights([kernel * 1.5, bias])
    with pytest.raises(ModelError) as caught:
        prove_bridge(loaded, tf_model, images((8, 8, 3), 8))
    assert caught.value.code == "keras3-bridge-mismatch"
    assert "'project'" in caught.value.message
    assert "first differing layer" in caught.value.message


def test_a_wrong_layer_inside_a_nested_model_is_named_with_its_path(keras: Any) -> None:
    from edgepack.models.keras3 import bridge, prove_bridge

    model = _randomized(nested(keras))
    tf_model = bridge(model)
    bn = tf_model.get_layer("stem").get_layer("stem_bn")
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma, beta, mean + 1.0, variance])
    with pytest.raises(ModelError, match="'stem/stem_bn'"):
        prove_bridge(model, tf_model, images((4, 4, 3)))


def test_a_tf_keras_model_is_not_a_keras3_model(keras: Any, tk: Any) -> None:
    from edgepack.models.keras3 import bridge, is_keras3_model

    tf_model = tk.Sequential([tk.Input((3,)), tk.layers.Dense(2)])
    assert is_keras3_model(sequential(keras)) is True
    assert is_keras3_model(tf_model) is False
    assert is_keras3_model("model.keras") is False
    with pytest.raises(ModelError, match="takes a Keras 3 model"):
        bridge(tf_model)


# ---------------------------------------------------------------------------------------------
# What saved a file
# ---------------------------------------------------------------------------------------------


def test_saved_format_of_every_container(keras: Any, tk: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import SavedFormat, saved_format

    k3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    k2 = tk.Sequential([tk.Input((3,)), tk.layers.Dense(2)])
    k3.save(tmp_path / "k3.keras")
    k3.save(tmp_path / "k3.h5")
    k2.save(tmp_path / "k2.keras")
    k2.save(tmp_path / "k2.h5")
    k2.save(tmp_path / "k2_savedmodel", save_format="tf")
    load().tf.saved_model.save(load().tf.Module(), str(tmp_path / "plain_savedmodel"))
    assert saved_format(tmp_path / "k3.keras") == SavedFormat(3, "keras", keras.__version__)
    assert saved_format(tmp_path / "k3.h5") == SavedFormat(3, "h5", keras.__version__)
    assert saved_format(tmp_path / "k2.keras") == SavedFormat(2, "keras", tk.__version__)
    assert saved_format(tmp_path / "k2.h5") == SavedFormat(2, "h5", tk.__version__)
    assert saved_format(tmp_path / "k2_savedmodel") == SavedFormat(2, "savedmodel", tk.__version__)
    assert saved_format(tmp_path / "plain_savedmodel") == SavedFormat(None, "savedmodel", None)


def test_load_keras3_refuses_a_keras2_file(tk: Any, tmp_path: Path) -> None:
    from edgepack.models.keras3 import load_keras3

    tk.Sequential([tk.Input((3,)), tk.layers.Dense(2)]).save(tmp_path / "k2.keras")
    with pytest.raises(ModelError, match="not Keras 3") as caught:
        load_keras3(tmp_path / "k2.keras", where="model.path")
    assert caught.value.context == "model.path"
