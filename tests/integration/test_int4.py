"""`convert.weights = "int4"`: FULLY_CONNECTED / CONV_2D kernels 4-bit (litert-quantizer), int8
activations and I/O, validated on host by LiteRT; the recipes it cannot serve are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import dense_ae_recipe, invoke

pytestmark = pytest.mark.slow

RECIPE = """
[train]
epochs = 2
batch_size = 64
learning_rate = 0.003

[convert]
mode = "int8"
weights = "{weights}"
calibration_samples = 64

[validate]
warmup = 1
runs = 5

[budgets]
min_sqnr_db = 5.0
max_rmse_increase = 2.0
"""


def _recipe(folder: Path, weights: str) -> Path:
    return dense_ae_recipe(
        folder, "dense-ae-int4", "{ spread = 8.0 }", RECIPE.format(weights=weights), f"dense-ae-{weights}.toml"
    )


def _run(recipe: Path, work: Path) -> dict[str, Any]:
    result = invoke("--json", "run", str(recipe), "--workdir", str(work))
    assert result.stdout.strip(), result.output
    report = json.loads(result.stdout)
    bundle = Path(report["bundle"][0])
    return {
        "code": result.exit_code,
        "report": report,
        "manifest": json.loads((bundle / "manifest.json").read_text()),
        "model": (bundle / "model.tflite").read_bytes(),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The same recipe with int8 then int4 weights, in one workdir: trained once."""
    folder = tmp_path_factory.mktemp("int4")
    return {weights: _run(_recipe(folder, weights), folder / "work") for weights in ("int8", "int4")}


def _kernel_dtypes(model: bytes) -> dict[str, set[str]]:
    """The dtypes of each op type's kernels (input 1), read by edgepack's own flatbuffer reader."""
    from edgepack.analyze.flatbuffer import read_model

    info = read_model(model)
    kernels: dict[str, set[str]] = {}
    for op in info.operators:
        if op.op_name in ("FULLY_CONNECTED", "CONV_2D"):
            kernels.setdefault(op.op_name, set()).add(info.tensors[op.inputs[1]].dtype)
    return kernels


def test_int4_weights_ship_4_bit_dense_kernels_within_the_budgets(runs: dict[str, dict[str, Any]]) -> None:
    int8, int4 = runs["int8"], runs["int4"]
    assert int8["code"] == 0 and int4["code"] == 0, int4["report"]
    assert _kernel_dtypes(int4["model"]) == {"FULLY_CONNECTED": {"int4"}}
    assert _kernel_dtypes(int8["model"]) == {"FULLY_CONNECTED": {"int8"}}
    assert len(int4["model"]) <= 0.6 * len(int8["model"])
    print(f"int8 {len(int8['model'])} B, int4 {len(int4['model'])} B")
    print("int8 metrics", int8["manifest"]["metrics"], "int4 metrics", int4["manifest"]["metrics"])
    assert int4["report"]["stages"]["train"]["cached"]


def test_int4_model_runs_on_host_with_int8_io_and_records_its_weights(runs: dict[str, dict[str, Any]]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    int4 = runs["int4"]
    interp = Interpreter(model_content=int4["model"])
    interp.allocate_tensors()
    (detail,) = interp.get_input_details()
    assert detail["dtype"] == np.int8 and interp.get_output_details()[0]["dtype"] == np.int8
    interp.set_tensor(detail["index"], np.zeros(detail["shape"], np.int8))
    interp.invoke()
    manifest = int4["manifest"]
    assert manifest["recipe"]["resolved"]["convert"]["weights"] == "int4" and manifest["model"]["weights"] == ["int4"]
    kernels = manifest["optimization"]["tflite_weights"]
    assert kernels and {k["dtype"] for k in kernels.values() if k["op"] == "FULLY_CONNECTED"} == {"int4"}
    assert manifest["quantization_error"]["measured"] is False and "int4" in manifest["quantization_error"]["why"]


def test_conv_kernels_are_int4_and_depthwise_stays_int8(tmp_path: Path) -> None:
    import io
    from contextlib import redirect_stdout

    from edgepack.analyze.flatbuffer import read_model
    from edgepack.convert.tflite import convert
    from edgepack.models.tf import load
    from edgepack.recipe.convert import ConvertSettings

    keras = load().keras
    inputs = keras.Input((8, 8, 2))
    h = keras.layers.DepthwiseConv2D(3, activation="relu")(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(6)(keras.layers.Flatten()(h)))
    with redirect_stdout(io.StringIO()):
        model.export(str(tmp_path / "sm"))
    calibration = np.random.default_rng(0).normal(size=(16, 8, 8, 2)).astype(np.float32)
    info = read_model(convert(tmp_path / "sm", ConvertSettings(weights="int4", error_report=False), calibration))
    kernels = {op.op_name: info.tensors[op.inputs[1]].dtype for op in info.operators if len(op.inputs) > 1}
    assert kernels["CONV_2D"] == kernels["FULLY_CONNECTED"] == "int4"
    assert kernels["DEPTHWISE_CONV_2D"] == "int8"
