"""The GPU delegate's verdict on real converter output, read offline: MobileNetV2 (float and int8) runs on it
whole; a Conv3D leaves its op, and its MACs, to the CPU; `edgepack inspect` shows both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import fast_tflite, invoke, once_per_session


def _build(folder: Path) -> dict[str, Any]:
    from edgepack.models.tf import load

    keras = load().keras
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    inp = keras.Input((4, 8, 8, 1))
    x = keras.layers.Conv3D(2, 3, padding="same", name="volume")(inp)
    x = keras.layers.Reshape((8, 8, 8))(x)  # depth x channels folded into 8 channels: 4-D again
    x = keras.layers.Conv2D(4, 3, padding="same", name="planar")(x)
    conv3d = keras.Model(inp, x)
    return {
        "float": fast_tflite(mobilenet, folder / "mobilenetv2_float.tflite", int8=False),
        "int8": fast_tflite(mobilenet, folder / "mobilenetv2_int8.tflite", int8=True),
        "conv3d": fast_tflite(conv3d, folder / "conv3d.tflite", int8=False),
    }


@pytest.fixture(scope="session")
def gpu_models(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    return once_per_session(request, tmp_path_factory, "gpu-models", _build)


def inspect_json(path: Path) -> dict[str, Any]:
    result = invoke("--json", "inspect", str(path), "--no-runtime")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_mobilenetv2_runs_whole_on_the_gpu_delegate(gpu_models: dict[str, Any], kind: str) -> None:
    from edgepack.analyze.flatbuffer import read_model_file
    from edgepack.analyze.gpu_ops import gpu_compatibility

    _, model = read_model_file(gpu_models[kind])
    result = gpu_compatibility(model)
    assert result.refused == ()
    assert result.compatible
    assert result.ops == len(model.operators) > 50 and result.accepted == result.ops
    assert result.macs > 0 and result.accepted_macs == result.macs and result.mac_share == 1.0
    ops = {op.op_name for op in model.operators}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"} <= ops
    if kind == "int8":  # an int8 graph: int8 activations, which the delegate takes (it dequantizes)
        assert model.tensors[model.inputs[0]].dtype == "int8"
    gpu = inspect_json(gpu_models[kind])["gpu_delegate"]
    assert gpu == result.to_dict()
    assert gpu["summary"] == f"{result.ops} of {result.ops} ops, 100.0 % of MACs on the GPU"


def test_a_conv3d_is_named_with_the_sources_reason_and_its_macs_leave_the_gpu(gpu_models: dict[str, Any]) -> None:
    from edgepack.analyze.flatbuffer import read_model_file
    from edgepack.analyze.graph import macs

    _, model = read_model_file(gpu_models["conv3d"])
    conv3d = [op for op in model.operators if op.op_name == "CONV_3D"]
    assert len(conv3d) == 1
    gpu = inspect_json(gpu_models["conv3d"])["gpu_delegate"]
    assert gpu["compatible"] is False
    refused = {r["index"]: r for r in gpu["refused"]}
    entry = refused[conv3d[0].index]
    assert entry["op"] == "CONV_3D" and entry["reason"] == "Not supported op CONV_3D"
    assert entry["layer"] is not None and "volume" in entry["layer"]
    assert entry["macs"] == macs(model, conv3d[0]) > 0
    planar = [op for op in model.operators if op.op_name == "CONV_2D"]
    assert len(planar) == 1 and planar[0].index not in refused  # the 2-D convolution stays on the GPU
    assert gpu["gpu_ops"] == gpu["ops"] - len(gpu["refused"]) > 0
    assert 0 < gpu["gpu_mac_share"] < 1
    assert gpu["gpu_macs"] == gpu["macs"] - sum(r["macs"] for r in gpu["refused"])


def test_inspect_shows_the_gpu_delegate_section(gpu_models: dict[str, Any]) -> None:
    result = invoke("inspect", str(gpu_models["conv3d"]), "--no-runtime", "--no-ops")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "GPU delegate" in text
    assert "Not supported op CONV_3D" in text
    assert "% of MACs on the GPU" in text
    whole = invoke("inspect", str(gpu_models["float"]), "--no-runtime", "--no-ops")
    assert whole.exit_code == 0, whole.output
    assert "100.0 % of MACs on the GPU" in " ".join(whole.stdout.split())
    assert "Not supported" not in whole.stdout
