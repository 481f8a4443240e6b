"""Reading real converted `.tflite` models without TensorFlow: kernels, layers, sparsity, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flatbuffers
import numpy as np
import pytest

from edgepack.errors import ModelError

if TYPE_CHECKING:  # the module reads models with LiteRT's schema: imported where used, not at collection
    from edgepack.analyze.weights import WeightStat

KERNEL_LAYERS = ["conv1", "dw", "conv2", "conv3", "fc", "logits"]
FIVE_VALUES = np.array([-1.0, -0.5, 0.25, 0.5, 1.0], dtype=np.float32)


def _build(keras: Any) -> Any:
    """digits_cnn (width 4, 8x8x1 input, 10 classes) with a depthwise convolution after conv1."""
    inputs = keras.Input(shape=(8, 8, 1), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(16, activation="relu", name="fc")(h)
    logits = keras.layers.Dense(10, name="logits")(h)
    return keras.Model(inputs, keras.layers.Softmax(name="probs")(logits), name="digits_cnn")


def _signed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of magnitude 0.5..1: no quantization rounds them to zero, per channel or not."""
    return rng.uniform(0.5, 1.0, shape) * rng.choice([-1.0, 1.0], shape)


def _set_kernel(model: Any, layer: str, kernel: np.ndarray) -> None:
    weights = model.get_layer(layer).get_weights()
    model.get_layer(layer).set_weights([kernel.astype(np.float32), *weights[1:]])


def _shape_weights(model: Any) -> None:
    """fc: 75 % zeros (96 of 128 per unit); conv3: 2:4 along input channels; logits: 5 values;
    dw: channel c holds c + 1 distinct values."""
    rng = np.random.default_rng(0)
    fc = _signed(rng, (128, 16))
    for unit in range(16):
        fc[rng.choice(128, size=96, replace=False), unit] = 0.0
    _set_kernel(model, "fc", fc)
    conv3 = _signed(rng, (3, 3, 8, 8))  # Keras layout [h, w, in, out]
    for h, w, group, out in np.ndindex(3, 3, 2, 8):
        conv3[h, w, 4 * group + rng.choice(4, size=2, replace=False), out] = 0.0
    _set_kernel(model, "conv3", conv3)
    logits = np.stack([rng.permutation(np.resize(FIVE_VALUES, 16)) for _ in range(10)], axis=1)
    _set_kernel(model, "logits", logits)
    dw = np.zeros((3, 3, 4, 1))
    for channel in range(4):
        dw[:, :, channel, 0] = ((10 * channel + 1 + np.arange(9) % (channel + 1)) / 100).reshape(3, 3)
    _set_kernel(model, "dw", dw)


def _convert(tf: Any, model: Any, mode: str, buffer_offsets: bool = False) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        rng = np.random.default_rng(1)
        samples = rng.uniform(0.0, 1.0, (8, 1, 8, 8, 1)).astype(np.float32)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([sample] for sample in samples)
    if buffer_offsets:  # what the converter does for models over 2 GB: data after the flatbuffer
        converter._experimental_use_buffer_offset = True
    return bytes(converter.convert())


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """One dense float32 conversion, then the shaped model in every mode, and its QAT version."""
    from edgepack.models.tf import load

    mods = load()
    mods.keras.utils.set_random_seed(0)
    model = _build(mods.keras)
    out = {"dense": _convert(mods.tf, model, "float32")}
    _shape_weights(model)
    for mode in ("float32", "float16", "dynamic", "int8"):
        out[mode] = _convert(mods.tf, model, mode)
    out["offsets"] = _convert(mods.tf, model, "float32", buffer_offsets=True)
    out["qat"] = _convert(mods.tf, mods.tfmot.quantization.keras.quantize_model(model), "int8")
    out["shared"] = _convert(mods.tf, _identical_kernels(mods.keras), "float32")
    return out


def _identical_kernels(keras: Any) -> Any:
    """Dense layers a and b with equal kernels, which the converter merges into one constant."""
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(4, name="a"),
            keras.layers.Dense(4, name="b"),
            keras.layers.Dense(4, name="c"),
        ]
    )
    for layer in ("a", "b"):
        _set_kernel(model, layer, np.eye(4))
    return model


def _by_layer(data: bytes) -> dict[str | None, WeightStat]:
    from edgepack.analyze.weights import weight_stats

    stats = weight_stats(data, ["image", *KERNEL_LAYERS, "pool", "flatten", "probs"])
    assert len(stats) == len({s.layer for s in stats}), [s.layer for s in stats]
    return {s.layer: s for s in stats}


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8", "qat"])
def test_every_kernel_is_found_and_mapped_to_its_layer(models: dict[str, bytes], mode: str) -> None:
    stats = _by_layer(models[mode])
    assert list(stats) == KERNEL_LAYERS  # execution order, no kernel missing or unmapped
    ops = {layer: s.op for layer, s in stats.items()}
    assert ops == {
        "conv1": "CONV_2D",
        "dw": "DEPTHWISE_CONV_2D",
        "conv2": "CONV_2D",
        "conv3": "CONV_2D",
        "fc": "FULLY_CONNECTED",
        "logits": "FULLY_CONNECTED",
    }
    shapes = {layer: s.shape for layer, s in stats.items()}  # TFLite layouts
    assert shapes == {
        "conv1": (4, 3, 3, 1),
        "dw": (1, 3, 3, 4),
        "conv2": (8, 3, 3, 4),
        "conv3": (8, 3, 3, 8),
        "fc": (16, 128),
        "logits": (10, 16),
    }
    assert all(s.size == int(np.prod(s.shape)) for s in stats.values())


def test_kernel_dtypes_follow_the_conversion_mode(models: dict[str, bytes]) -> None:
    dtypes = {
        mode: {s.dtype for s in _by_layer(models[mode]).values()} for mode in ("float32", "float16", "int8", "qat")
    }
    assert dtypes == {"float32": {"float32"}, "float16": {"float16"}, "int8": {"int8"}, "qat": {"int8"}}
    dynamic = _by_layer(models["dynamic"])  # dynamic range quantizes only kernels of >= 1024 values
    assert dynamic["fc"].dtype == "int8"
    assert {dynamic[layer].dtype for layer in KERNEL_LAYERS if layer != "fc"} == {"float32"}


def test_a_kernel_shared_by_two_layers_is_reported_for_each(models: dict[str, bytes]) -> None:
    from edgepack.analyze.weights import weight_stats

    stats = weight_stats(models["shared"], ["a", "b", "c"])
    assert [s.layer for s in stats] == ["a", "b", "c"]
    assert stats[0].tensor == stats[1].tensor != stats[2].tensor  # one constant, renamed
    assert stats[0].sparsity == pytest.approx(0.75) and stats[0].max_nonzeros_per_4 == 1


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
def test_sparsity_is_the_fraction_of_zeros_set_in_keras(models: dict[str, bytes], mode: str) -> None:
    stats = _by_layer(models[mode])
    assert stats["fc"].sparsity == pytest.approx(0.75)
    assert stats["conv3"].sparsity == pytest.approx(0.5)
    assert stats["logits"].sparsity == 0.0


def test_sparsity_counts_the_zero_point_of_asymmetric_weights(models: dict[str, bytes]) -> None:
    """The int8 model rewritten the old uint8 way (value + 128, zero point 128) keeps its zeros."""
    from ai_edge_litert import schema_py_generated as schema

    def to_uint8(model: Any) -> None:
        graph = model.subgraphs[0]
        fc = next(t for t in graph.tensors if t.name.decode() == "digits_cnn/fc/MatMul")
        data = model.buffers[fc.buffer].data
        model.buffers[fc.buffer].data = (data.view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        fc.type = schema.TensorType.UINT8
        fc.quantization.zeroPoint = [128] * len(fc.quantization.scale)

    stats = _by_layer(_rewrite(models["int8"], to_uint8))
    assert stats["fc"].dtype == "uint8"
    assert stats["fc"].sparsity == pytest.approx(0.75)
    assert stats["fc"].max_nonzeros_per_4 == _by_layer(models["int8"])["fc"].max_nonzeros_per_4


def test_int4_kernels_are_unpacked_low_nibble_first(models: dict[str, bytes]) -> None:
    """The int8 fc kernel rewritten as packed INT4 (two values a byte, low nibble first)."""
    from ai_edge_litert import schema_py_generated as schema

    from edgepack.analyze.flatbuffer import read_model

    expected: dict[str, np.ndarray] = {}

    def to_int4(model: Any) -> None:
        fc = next(t for t in model.subgraphs[0].tensors if t.name.decode() == "digits_cnn/fc/MatMul")
        values = model.buffers[fc.buffer].data.view(np.int8) // 16  # -8..7, zeros stay zeros
        nibbles = (values & 0xF).astype(np.uint8)
        model.buffers[fc.buffer].data = nibbles[0::2] | (nibbles[1::2] << 4)
        fc.type = schema.TensorType.INT4
        expected["fc"] = values.reshape(16, 128)

    data = _rewrite(models["int8"], to_int4)
    fc = next(t for t in read_model(data).tensors if t.name == "digits_cnn/fc/MatMul")
    assert fc.dtype == "int4" and fc.data is not None
    np.testing.assert_array_equal(fc.data, expected["fc"])
    stats = _by_layer(data)
    assert stats["fc"].dtype == "int4" and stats["fc"].sparsity == pytest.approx(0.75)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_two_of_four_pattern_and_dense_kernels(models: dict[str, bytes], mode: str) -> None:
    stats = _by_layer(models[mode])
    assert stats["conv3"].max_nonzeros_per_4 == 2  # 2:4 along the input channels
    assert stats["conv1"].max_nonzeros_per_4 is None  # one input channel: no group of 4
    dense = _by_layer(models["dense"])
    assert dense["conv2"].max_nonzeros_per_4 == 4
    assert dense["conv3"].max_nonzeros_per_4 == 4


def test_distinct_values_whole_and_per_output_channel(models: dict[str, bytes]) -> None:
    for mode in ("float32", "float16"):
        stats = _by_layer(models[mode])
        assert stats["logits"].unique_values == 5
        assert stats["logits"].unique_per_channel_max == 5
        assert stats["dw"].unique_values == 1 + 2 + 3 + 4
        assert stats["dw"].unique_per_channel_max == 4  # depthwise: output channels are the last axis
    int8 = _by_layer(models["int8"])
    assert int8["logits"].unique_per_channel_max <= 5  # per-channel quantization keeps clusters
    assert int8["dw"].unique_per_channel_max == 4
    assert _by_layer(models["dense"])["fc"].unique_values == 16 * 128


def test_to_dict_is_json_ready(models: dict[str, bytes]) -> None:
    record = json.loads(json.dumps(_by_layer(models["int8"])["fc"].to_dict()))
    assert record == {
        "tensor": "digits_cnn/fc/MatMul",
        "layer": "fc",
        "op": "FULLY_CONNECTED",
        "shape": [16, 128],
        "dtype": "int8",
        "size": 2048,
        "sparsity": 0.75,
        "unique_values": record["unique_values"],
        "unique_per_channel_max": record["unique_per_channel_max"],
        "max_nonzeros_per_4": 4,
    }


def test_mostly_zero_model_gzips_smaller(models: dict[str, bytes]) -> None:
    from edgepack.analyze.weights import gzip_size

    assert gzip_size(models["float32"]) < 0.8 * gzip_size(models["dense"])
    assert gzip_size(models["dense"]) == gzip_size(models["dense"])  # deterministic
    assert gzip_size(models["dense"]) < len(models["dense"])


def test_buffers_stored_after_the_flatbuffer_read_like_inline_ones(models: dict[str, bytes]) -> None:
    from ai_edge_litert import schema_py_generated as schema

    from edgepack.analyze.weights import weight_stats

    data = models["offsets"]
    root = schema.Model.GetRootAs(data, 0)
    if not any(root.Buffers(i).Offset() > 1 for i in range(root.BuffersLength())):
        pytest.skip("this TensorFlow ignores _experimental_use_buffer_offset")
    assert weight_stats(data, KERNEL_LAYERS) == weight_stats(models["float32"], KERNEL_LAYERS)


def test_read_model_structure(models: dict[str, bytes]) -> None:
    from edgepack.analyze.flatbuffer import read_model

    info = read_model(models["int8"])
    ops = [op.op_name for op in info.operators]
    assert ops == [
        "QUANTIZE",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "CONV_2D",
        "MAX_POOL_2D",
        "CONV_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
        "SOFTMAX",
        "DEQUANTIZE",
    ]
    (inp,), (out,) = info.inputs, info.outputs
    assert info.tensors[inp].shape == (1, 8, 8, 1) and info.tensors[inp].dtype == "float32"
    assert info.tensors[out].shape == (1, 10) and info.tensors[inp].data is None
    conv2 = info.tensors[info.operators[3].inputs[1]]
    assert conv2.dtype == "int8" and conv2.data is not None and conv2.data.shape == (8, 3, 3, 4)
    assert len(conv2.scales) == 8 and conv2.zero_points == (0,) * 8 and conv2.quantized_dimension == 0
    assert info.operators[1].options["strideW"] == 1
    assert all(info.producers()[o] is op for op in info.operators for o in op.outputs)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("digits_cnn/conv1/Conv2D", "conv1"),
        ("digits_cnn/conv1/Relu;digits_cnn/conv1/Conv2D", "conv1"),
        ("digits_cnn/quant_fc/MatMul;digits_cnn/quant_fc/LastValueQuant/FakeQuantWithMinMaxVars", "fc"),
        ("digits_cnn/prune_low_magnitude_conv2/Conv2D", "conv2"),
        ("digits_cnn/cluster_fc/Gather;", "fc"),
        ("sequential/conv2d_1/Conv2D", "conv2d_1"),
        ("model/block/block_conv/Conv2D", "block_conv"),
        ("digits_cnn/fc2/MatMul", None),
        ("arith.constant", None),
    ],
)
def test_match_layer(name: str, expected: str | None) -> None:
    from edgepack.analyze.weights import match_layer

    layers = ["conv1", "conv2", "fc", "conv2d", "conv2d_1", "block", "block_conv"]
    assert match_layer(name, layers) == expected


def test_match_layer_keeps_wrapped_names_it_is_given() -> None:
    from edgepack.analyze.weights import match_layer

    assert match_layer("digits_cnn/quant_conv1/Conv2D", ["quant_conv1"]) == "quant_conv1"


def _rewrite(data: bytes, edit: Callable[[Any], None]) -> bytes:
    """`data` unpacked with the schema's object API, edited, and packed again."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    edit(model)
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _bad_buffer(model: Any) -> None:
    model.subgraphs[0].tensors[1].buffer = 10_000


def _bad_tensor(model: Any) -> None:
    op = model.subgraphs[0].operators[0]
    op.inputs = [10_000, *op.inputs[1:]]


MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "three bytes": lambda d: b"TFL",
    "text": lambda d: b"this is a model card, not a model\n" * 20,
    "random": lambda d: np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "random with identifier": lambda d: d[:4] + b"TFL3" + np.random.default_rng(3).bytes(4096),
    "identifier changed": lambda d: d[:4] + b"TFL2" + d[8:],
    "root past the end": lambda d: b"\xff\xff\x00\x00TFL3" + bytes(64),
    "cut after header": lambda d: d[:8],
    "cut at 64 bytes": lambda d: d[:64],
    "cut at a quarter": lambda d: d[: len(d) // 4],
    "cut at half": lambda d: d[: len(d) // 2],
    "cut at three quarters": lambda d: d[: 3 * len(d) // 4],
    "last byte missing": lambda d: d[:-1],
    "buffer index out of range": lambda d: _rewrite(d, _bad_buffer),
    "tensor index out of range": lambda d: _rewrite(d, _bad_tensor),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_models_raise_model_error(models: dict[str, bytes], case: str) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.weights import weight_stats

    data = MALFORMED[case](models["float32"])
    with pytest.raises(ModelError, match="not a valid TFLite model"):
        read_model(data)
    with pytest.raises(ModelError, match="not a valid TFLite model"):
        weight_stats(data)


def test_unedited_rewrite_still_reads(models: dict[str, bytes]) -> None:
    """The object-API round trip behind the edited cases keeps a model valid by itself."""
    from edgepack.analyze.weights import weight_stats

    data = _rewrite(models["float32"], lambda model: None)
    assert weight_stats(data, KERNEL_LAYERS) == weight_stats(models["float32"], KERNEL_LAYERS)


def test_importing_weights_does_not_import_tensorflow() -> None:
    code = "import sys, edgepack.analyze.weights; assert 'tensorflow' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
