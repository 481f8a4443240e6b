"""`[convert] compression = "lut"`: a 16-cluster Dense autoencoder shipped with TensorFlow Lite Micro's
look-up-table compression, proven end to end: the flash it needs, parity in TFLM's interpreter, the arena
TFLM measured, the c-array carrying the compressed bytes; and the rule that a per-channel tensor must get
one table per channel (one table for the whole tensor decodes to wrong values without an error)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import dense_ae_recipe, invoke

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tflite_micro") is None,
        reason="tflite-micro has wheels for Linux x86-64 only; not installed here",
    ),
]

RECIPE = """
[train]
epochs = 3
batch_size = 32
learning_rate = 0.003

[[optimize]]
kind = "cluster"
clusters = 16
epochs = 1
learning_rate = 0.0005

[convert]
mode = "int8"
io = "int8"
calibration_samples = 64
error_report = false
dense_granularity = "{granularity}"
compression = "lut"

[validate]
devices = ["tflm"]

[budgets]
fits = ["pico"]

[bundle]
formats = ["c-array"]
arena_margin = "512 B"
"""
BUILDER = "edgepack.models.zoo:dense_autoencoder"  # plain Dense layers: a BN folded into a kernel spreads its values

# The model in TFLM on seeded int8 inputs (outputs to an .npy), or only whether it allocates and invokes in
# a given arena (a child process: TFLM's interpreter may abort its process).
TFLM = textwrap.dedent("""
    import sys, numpy as np
    from tflite_micro.python.tflite_micro import runtime
    model, arena, out = open(sys.argv[1], "rb").read(), int(sys.argv[2]), sys.argv[3]
    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
    except Exception:
        sys.exit(7)
    shape = interpreter.get_input_details(0)["shape"]
    rng, outputs = np.random.default_rng(0), []
    for _ in range(8):
        interpreter.set_input(rng.integers(-128, 128, size=shape, dtype=np.int8), 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).copy())
    np.save(out, np.stack(outputs))
""")


def tflm(model: Path, arena: int, folder: Path) -> np.ndarray | None:
    """The model's TFLM outputs with `arena` bytes, None when it does not allocate in them."""
    out = folder / f"{model.stem}-{arena}.npy"
    proc = subprocess.run(
        [sys.executable, "-c", TFLM, str(model), str(arena), str(out)], capture_output=True, text=True, timeout=300
    )
    if proc.returncode == 7:
        return None
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.asarray(np.load(out))


def _recipe(folder: Path, granularity: str) -> Path:
    path = dense_ae_recipe(
        folder, "ae-lut", "{ hidden = [128, 128, 128], bottleneck = 8 }", RECIPE.format(granularity=granularity),
        f"ae-lut-{granularity}.toml",
    )  # fmt: skip
    text = path.read_text()
    assert "models.dense_models:dense_bn_autoencoder" in text
    path.write_text(text.replace("models.dense_models:dense_bn_autoencoder", BUILDER))
    return path


@pytest.fixture(scope="module")
def lut_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The recipe run once (Dense per tensor): its JSON report, manifest and bundle."""
    folder = tmp_path_factory.mktemp("lut")
    result = invoke("--json", "run", str(_recipe(folder, "per-tensor")), "--workdir", str(folder / "work"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    bundle = Path(report["bundle"][0])
    manifest = json.loads((bundle / "manifest.json").read_text())
    converted = Path(report["stages"]["convert"]["dir"]) / report["stages"]["convert"]["model_file"]
    return {"folder": folder, "report": report, "manifest": manifest, "bundle": bundle, "converted": converted}


def test_flash_need_is_at_most_0_6x_the_int8_files(lut_run: dict[str, Any]) -> None:
    manifest, shipped = lut_run["manifest"], (lut_run["bundle"] / "model.tflite").read_bytes()
    int8 = lut_run["converted"].read_bytes()
    fit = lut_run["report"]["fits"]["pico"]
    assert (
        fit["model_bytes"] == len(shipped) == manifest["compression"]["size_bytes"] == manifest["model"]["size_bytes"]
    )
    assert fit["model_bytes"] <= 0.6 * len(int8), (fit["model_bytes"], len(int8))
    assert fit["flash_need"] == fit["model_bytes"] + fit["runtime_flash_bytes"] and fit["fits"]
    compression = manifest["compression"]
    assert compression["size_before_bytes"] == len(int8) == manifest["model"]["converted_size_bytes"]
    kernels = [t for t in compression["tensors"] if t["values"] == 16]
    assert kernels and all(t["bits"] == 4 and t["mode"] == "per-tensor" for t in kernels)  # 16 clusters: 4 bits
    assert manifest["model"]["metadata"] == {"embedded": False, "why": manifest["model"]["metadata"]["why"]}
    assert "TensorFlow Lite Micro" in manifest["model"]["metadata"]["why"]


def test_the_shipped_file_is_tflms_alone_and_the_metric_is_the_uncompressed_models(lut_run: dict[str, Any]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edgepack.convert.lut import is_compressed

    shipped = (lut_run["bundle"] / "model.tflite").read_bytes()
    assert is_compressed(shipped) and not is_compressed(lut_run["converted"].read_bytes())
    with pytest.raises(RuntimeError, match="TFLM_DECODE"):  # why the recipe refuses LiteRT devices
        Interpreter(model_content=shipped).allocate_tensors()
    evaluate = lut_run["report"]["stages"]["evaluate"]
    assert evaluate["metrics"]["tflite"]["rmse"] is not None  # judged in LiteRT, on the int8 file


def test_tflm_parity_within_one_step_and_the_arena_measured(lut_run: dict[str, Any]) -> None:
    record = lut_run["report"]["validation"]["tflm"]
    assert record["parity"]["ok"] and record["parity"]["tolerance_steps"] == 1
    need = record["arena"]["bytes"]
    manifest = lut_run["manifest"]
    assert manifest["memory"]["arena"]["need"] == need == manifest["compression"]["arena"]["bytes"]
    model, folder = lut_run["bundle"] / "model.tflite", lut_run["folder"]
    assert tflm(model, need, folder) is not None and tflm(model, need - 16, folder) is None  # TFLM's own figure
    arena = manifest["compression"]["arena"]
    largest = max(t["bytes_before"] for t in manifest["compression"]["tensors"])
    assert arena["decoded_bytes"] == need - arena["uncompressed_model_bytes"] >= largest  # it says what it holds


def test_tflm_outputs_of_the_compressed_model_are_the_uncompressed_ones(lut_run: dict[str, Any]) -> None:
    folder, arena = lut_run["folder"], 1 << 20
    compressed = tflm(lut_run["bundle"] / "model.tflite", arena, folder)
    plain = tflm(lut_run["converted"], arena, folder)
    assert compressed is not None and plain is not None and np.array_equal(compressed, plain)


def test_the_c_array_header_carries_the_compressed_model(lut_run: dict[str, Any]) -> None:
    bundle, manifest = lut_run["bundle"], lut_run["manifest"]
    shipped = (bundle / "model.tflite").read_bytes()
    source, header = (bundle / "c" / "model_data.cc").read_text(), (bundle / "c" / "model_data.h").read_text()
    body = source[source.index("{") + 1 : source.index("};")]
    assert bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body)) == shipped
    assert f"g_model_data_len = {len(shipped)};" in source
    assert "resolver.AddDecode();" in header and "LUT-compressed" in header
    need = manifest["memory"]["arena"]["need"]
    assert f"kModelDataArenaSize = {need + 512};" in header
    entry = manifest["formats"]["c-array"]
    assert entry["model_sha256"] == manifest["model"]["sha256"] and "AddDecode" in entry["resolver_ops"]


def test_the_manifest_validates_and_the_summary_names_the_compression(lut_run: dict[str, Any]) -> None:
    from edgepack.bundle.schema import manifest_schema, schema_problems

    assert schema_problems(lut_run["manifest"], manifest_schema()) == []
    schema = manifest_schema()  # the key is in the published schema, described by the Compression record
    assert {"$ref": "#/$defs/Compression"} in schema["properties"]["compression"]["anyOf"]
    assert schema["$defs"]["Compression"]["required"]
    html = (lut_run["bundle"] / "report.html").read_text()
    assert "look-up-table compression" in html
    result = invoke("gate", str(lut_run["bundle"]))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def per_channel(lut_run: dict[str, Any]) -> Path:
    """The same optimized model converted with Dense layers per channel (train and optimize cached)."""
    folder = lut_run["folder"]
    result = invoke("--json", "convert", str(_recipe(folder, "per-channel")), "--workdir", str(folder / "work"))
    assert result.exit_code == 0, result.output
    stage = json.loads(result.stdout)["convert"]
    return Path(stage["dir"]) / stage["model_file"]


def test_per_channel_tensors_get_one_table_per_channel(per_channel: Path, lut_run: dict[str, Any]) -> None:
    from tflite_micro.tensorflow.lite.micro import compression as tc
    from tflite_micro.tensorflow.lite.micro.compression import spec

    from edgepack.analyze.flatbuffer import read_model
    from edgepack.convert.lut import compress

    data, folder, arena = per_channel.read_bytes(), lut_run["folder"], 1 << 20
    result = compress(data)
    assert {t["mode"] for t in result.tensors} == {"per-channel"}
    ours = folder / "per-channel-lut.tflite"
    ours.write_bytes(result.data)
    plain = tflm(per_channel, arena, folder)
    decoded = tflm(ours, arena, folder)
    assert plain is not None and decoded is not None and np.array_equal(decoded, plain)
    # The same tensors with one table each, wide enough to hold every value (a lossless encoding): wrong outputs.
    builder = tc.SpecBuilder()
    for tensor in read_model(data).tensors:
        if tensor.dtype == "int8" and tensor.data is not None and len(tensor.scales) > 1:
            bits = max(1, int(np.ceil(np.log2(len(np.unique(tensor.data))))))
            builder.add_tensor(subgraph=0, tensor=tensor.index).with_lut(index_bitwidth=bits, mode=spec.PerTensor())
    wrong = folder / "per-tensor-tables.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the compressor warns where a small tensor grows: not the point here
        wrong.write_bytes(bytes(tc.compress(data, builder.build())))
    outputs = tflm(wrong, arena, folder)
    assert outputs is not None and not np.array_equal(outputs, plain)


def _dense_int8(
    folder: Path, name: str, widths: list[int], levels: list[int], shape: tuple[int, ...] | None = None
) -> bytes:
    """An int8 model of Dense layers (`widths`, input `widths[0]`, or `shape` flattened) whose kernels take
    `levels[i]` values each (seeded), converted by the real TFLite converter."""
    from conftest import fast_tflite

    from edgepack.models.tf import load

    keras, rng = load().keras, np.random.default_rng(0)
    head = [keras.layers.Input((widths[0],))] if shape is None else [keras.layers.Input(shape), keras.layers.Flatten()]
    model = keras.Sequential(head + [keras.layers.Dense(w) for w in widths[1:]])
    for layer, count in zip([layer for layer in model.layers if layer.weights], levels):
        kernel, bias = layer.get_weights()
        values = np.linspace(-0.5, 0.5, count, dtype=np.float32)
        layer.set_weights([rng.choice(values, size=kernel.shape), bias])
    return fast_tflite(model, folder / f"{name}.tflite", int8=True, samples=4).read_bytes()


def _named_as_the_converter_does(data: bytes) -> bytes:
    """The model with its int8 constants renamed `arith.constant`, `arith.constant1` ... as edgepack's
    conversions name them: `arith.constant1` is a prefix of `arith.constant11`."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from edgepack.convert.lut import plan

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    for number, item in enumerate(plan(data)):
        model.subgraphs[0].tensors[item.index].name = f"arith.constant{number or ''}".encode()
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_bytes_after_are_each_tensors_own_read_from_the_file(tmp_path: Path) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.convert.lut import DECODE_OP, compress

    widths = [64, 96, 48, 80, 64, 112, 56, 72, 88, 64, 104, 48, 96]  # 12 kernels, all of different sizes
    data = _named_as_the_converter_does(_dense_int8(tmp_path, "twelve", widths, [2, 4, 8, 16] * 3))
    result = compress(data)
    info = read_model(result.data)
    names = {t.name: t.index for t in info.tensors}
    pairs = {op.inputs[k]: op.inputs[k + 1] for op in info.operators if op.custom_code == DECODE_OP
             for k in range(0, len(op.inputs), 2)}  # fmt: skip
    assert len(result.tensors) == len(pairs) == 12 and "arith.constant11" in names
    for record in result.tensors:
        encoded = names[record["name"]]  # the encoded tensor keeps the original's name and index
        assert encoded == record["index"] and encoded in pairs
        own = sum(np.asarray(info.tensors[i].data).nbytes for i in (encoded, pairs[encoded]))
        assert record["bytes_after"] == own, record
        elements, bits, tables = record["bytes_before"], record["bits"], record["tables"]
        assert own == -(-elements * bits // 8) + 2**bits * tables + 16  # the plan's estimate is the file's
    assert len({t["bytes_after"] for t in result.tensors}) > 6  # a wrong tensor's figure would show
    assert result.record()["tensor_bytes_after"] == sum(t["bytes_after"] for t in result.tensors)


def test_a_compressed_model_no_smaller_than_the_int8_one_is_refused(tmp_path: Path) -> None:
    from edgepack.convert.lut import compress, plan
    from edgepack.errors import StageError

    data = _dense_int8(tmp_path, "small", [16, 8], [2])  # 128 weights, 2 values: 48 B instead of 128 B
    assert [item.skipped for item in plan(data)] == [None]  # the tensor shrinks, the DECODE op costs more
    with pytest.raises(StageError) as caught:
        compress(data)
    error = caught.value
    assert error.code == "compression-useless" and "not smaller than the int8 one" in error.message
    assert "few enough distinct values" in error.message and "kind = 'cluster'" in (error.hint or "")


@pytest.fixture(scope="module")
def given_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A LUT recipe for TFLM on the digits, an int8 model LUT-compressed already and a float32 one (converted
    elsewhere), both taking the digits and giving 10 scores."""
    from conftest import BASE_RECIPE, fast_tflite

    from edgepack.convert.lut import compress
    from edgepack.models.tf import load

    folder = tmp_path_factory.mktemp("given")
    int8 = _dense_int8(folder, "int8", [64, 64, 10], [16, 16], shape=(8, 8, 1))
    (folder / "lut.tflite").write_bytes(compress(int8).data)
    keras = load().keras
    model = keras.Sequential([keras.layers.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    fast_tflite(model, folder / "float.tflite", int8=False)
    recipe = folder / "lut.toml"
    recipe.write_text(BASE_RECIPE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm"]\n')
    return {"recipe": recipe, "lut": folder / "lut.tflite", "float": folder / "float.tflite", "work": folder / "w"}


@pytest.mark.parametrize("command", ["validate", "bundle"])
def test_a_given_model_compressed_already_is_exit_2_naming_what_to_give(
    given_models: dict[str, Path], command: str
) -> None:
    paths = given_models
    result = invoke(command, str(paths["recipe"]), "--model", str(paths["lut"]), "--workdir", str(paths["work"]))
    assert result.exit_code == 2, result.output
    assert "error (model-compressed)" in result.stderr and "TFLM_DECODE" in result.stderr
    assert "LUT-compressed already" in result.stderr and "uncompressed int8 .tflite" in result.stderr
    assert "is it a .tflite" not in result.stderr and not list(paths["work"].rglob("stage.json"))


def test_a_given_model_not_int8_is_refused_by_a_lut_recipe(given_models: dict[str, Path]) -> None:
    paths = given_models
    result = invoke("bundle", str(paths["recipe"]), "--model", str(paths["float"]), "--workdir", str(paths["work"]))
    assert result.exit_code == 2, result.output
    assert "error (model-not-int8)" in result.stderr and "not full-integer int8" in result.stderr
    assert not list(paths["work"].rglob("stage.json"))


def test_the_c_array_header_says_which_tflite_micro_has_add_decode(tmp_path: Path) -> None:
    from edgepack.bundle.c_array import c_sources
    from edgepack.convert.lut import compress

    header = c_sources(compress(_dense_int8(tmp_path, "m", [64, 64], [16])).data).header
    assert "resolver.AddDecode();" in header  # checked in tflite-micro's micro_mutable_op_resolver.h
    assert "MicroMutableOpResolver::AddDecode()" in header and "d96fe66" in header and "older checkout" in header
