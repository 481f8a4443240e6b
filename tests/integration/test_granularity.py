"""`convert.dense_granularity`: Dense layers per channel or per tensor (convolutions per channel), and
`auto`, which ships per tensor only where it is smaller and the recipe's budgets hold."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
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
io = "float32"
calibration_samples = 64
error_report = false
dense_granularity = "{granularity}"

[validate]
warmup = 1
runs = 5

[budgets]
min_sqnr_db = {sqnr}
"""


def _recipe(folder: Path, granularity: str = "auto", sqnr: float = 5.0) -> Path:
    rest = RECIPE.format(granularity=granularity, sqnr=f"{sqnr:.4f}")
    return dense_ae_recipe(folder, "dense-ae", "{ spread = 8.0 }", rest, f"dense-ae-{granularity}-{sqnr:.4f}.toml")


def _run(recipe: Path, work: Path) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = invoke("--json", "run", str(recipe), "--workdir", str(work))
    assert result.stdout.strip(), result.output
    report = json.loads(result.stdout)
    manifest = json.loads((Path(report["bundle"][0]) / "manifest.json").read_text())
    return result.exit_code, report, manifest


def _dense_scales(model: bytes) -> list[int]:
    """The number of scales of each FULLY_CONNECTED kernel, read by edgepack's own flatbuffer reader."""
    from edgepack.analyze.flatbuffer import read_model

    info = read_model(model)
    return [len(info.tensors[op.inputs[1]].scales) for op in info.operators if op.op_name == "FULLY_CONNECTED"]


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`auto` with an SQNR budget per tensor holds: the session's one training of the autoencoder."""
    folder = tmp_path_factory.mktemp("granularity")
    code, report, manifest = _run(_recipe(folder), folder / "work")
    shipped = (Path(report["bundle"][0]) / "model.tflite").read_bytes()  # later tests rewrite the bundle
    return {"folder": folder, "code": code, "report": report, "manifest": manifest, "shipped": shipped}


def test_auto_ships_per_tensor_dense_layers_where_the_budget_holds(lenient: dict[str, Any]) -> None:
    assert lenient["code"] == 0, lenient["report"]
    choice = lenient["manifest"]["dense_granularity"]
    by = {c["dense_granularity"]: c for c in choice["candidates"]}
    assert choice["chosen"] == "per-tensor" and by["per-tensor"]["chosen"] and not by["per-channel"]["chosen"]
    assert by["per-tensor"]["size_bytes"] <= 0.9 * by["per-channel"]["size_bytes"]  # at least 10 % smaller
    assert by["per-tensor"]["holds"] and by["per-tensor"]["budgets"][0]["name"] == "min_sqnr_db"
    assert "smaller" in choice["why"]
    scales = _dense_scales(lenient["shipped"])
    assert len(scales) == 10 and set(scales) == {1}  # every Dense kernel per tensor
    stages = lenient["report"]["stages"]
    assert stages["convert"]["size_bytes"] == by["per-tensor"]["size_bytes"]
    per_channel = Path(lenient["folder"]) / "work" / "dense-ae" / "convert-dense-per-channel" / "model.tflite"
    assert min(_dense_scales(per_channel.read_bytes())) > 1  # the other candidate: one scale per channel
    assert lenient["manifest"]["metrics"]["fidelity"]["worst_sqnr_db"] == pytest.approx(
        by["per-tensor"]["worst_sqnr_db"]
    )


def test_auto_keeps_per_channel_where_only_per_channel_meets_the_budget(lenient: dict[str, Any]) -> None:
    by = {c["dense_granularity"]: c for c in lenient["manifest"]["dense_granularity"]["candidates"]}
    tensor_db, channel_db = by["per-tensor"]["worst_sqnr_db"], by["per-channel"]["worst_sqnr_db"]
    print(f"SQNR per tensor {tensor_db} dB, per channel {channel_db} dB")
    assert channel_db > tensor_db + 0.5  # per channel is the more faithful on this model (seeded: always so)
    folder = lenient["folder"]
    recipe = _recipe(folder, sqnr=(tensor_db + channel_db) / 2)  # only per channel meets it
    code, report, manifest = _run(recipe, folder / "work")  # same workdir: trained and converted once
    assert code == 0, report
    choice = manifest["dense_granularity"]
    assert choice["chosen"] == "per-channel" and "break min_sqnr_db" in choice["why"]
    assert [c["holds"] for c in choice["candidates"]] == [True, False]
    assert report["stages"]["convert"]["size_bytes"] == by["per-channel"]["size_bytes"]
    assert all(
        report["stages"][name]["cached"] for name in ("train", "convert-dense-per-channel", "convert-dense-per-tensor")
    )


def test_in_the_mode_search_each_integer_mode_is_tried_with_dense_layers_both_ways(lenient: dict[str, Any]) -> None:
    folder = lenient["folder"]
    text = _recipe(folder).read_text().replace("[validate]", SEARCH + "\n[validate]")
    recipe = folder / "dense-ae-search.toml"
    recipe.write_text(text)
    code, report, manifest = _run(recipe, folder / "work")  # the same name and workdir: trained once
    assert code == 0, report
    search = report["search"]
    assert [c["mode"] for c in search["candidates"]] == ["int8", "int8, dense per-tensor", "float16"]
    assert search["chosen"] == "int8, dense per-tensor"  # the smallest within the criterion
    assert manifest["dense_granularity"] is None  # the search chose, and says so in its own record
    assert set(_dense_scales((Path(report["bundle"][0]) / "model.tflite").read_bytes())) == {1}


SEARCH = """
[convert.search]
modes = ["int8", "float16"]
min_sqnr_db = 5.0
"""


def test_per_tensor_converts_dense_per_tensor_and_convolutions_stay_per_channel(tmp_path: Path) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.convert.tflite import convert
    from edgepack.models.tf import load
    from edgepack.recipe.convert import ConvertSettings

    keras = load().keras
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(6)(keras.layers.Dense(16, activation="relu")(h)))
    with redirect_stdout(io.StringIO()):
        model.export(str(tmp_path / "sm"))
    calibration = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype(np.float32)
    for granularity, dense in (("per-channel", {16, 6}), ("per-tensor", {1})):
        settings = ConvertSettings(dense_granularity=granularity, error_report=False)
        info = read_model(convert(tmp_path / "sm", settings, calibration))
        kernels = {op.op_name: len(info.tensors[op.inputs[1]].scales) for op in info.operators}
        fc = {len(info.tensors[op.inputs[1]].scales) for op in info.operators if op.op_name == "FULLY_CONNECTED"}
        assert fc == dense and kernels["CONV_2D"] == 4, granularity


def test_the_converters_private_granularity_switches_exist() -> None:
    """Fails loudly the day TensorFlow renames them (edgepack would otherwise convert per channel silently)."""
    from edgepack.convert import compat

    assert compat.problems() == []
