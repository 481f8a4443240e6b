"""Mechanics of the optimize stages on real TFMOT: schedules, structures, selection, QAT support."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, invoke

from edgepack.datasets import load_dataset
from edgepack.errors import ModelError
from edgepack.progress import NullReporter
from edgepack.recipe.optimize import PruneStage
from edgepack.recipe.schema import DigitsDataset

MODELS = Path(__file__).parents[1] / "models"


@pytest.fixture(scope="module")
def data() -> Any:
    return load_dataset(DigitsDataset(kind="digits", normalization={"mean": 0.0, "std": 16.0}, limit=400), 0, REPO)


def small_cnn(data: Any) -> Any:
    from edgepack.models.tf import seed_everything
    from edgepack.models.zoo import digits_cnn

    seed_everything(0)
    return digits_cnn(data.input_shape, data.num_classes, width=8)


def prune(model: Any, data: Any, **fields: Any) -> tuple[Any, dict[str, Any]]:
    from edgepack.optimize.prune import prune as run
    from edgepack.optimize.stages import layer_kernels

    stage = PruneStage.model_validate({"kind": "prune", "epochs": 1, "batch_size": 32, **fields})
    pruned, record = run(model, stage, data, NullReporter(), "optimize[0] prune")
    kernels = layer_kernels(pruned)
    record["sparsity"] = {name: float(np.mean(kernels[name] == 0)) for name in record["pruned_layers"]}
    return pruned, record


@pytest.mark.parametrize("schedule", ["polynomial", "constant"])
def test_one_short_epoch_reaches_the_target_sparsity(data: Any, schedule: str) -> None:
    # 300 training images at batch 32: 10 steps in all, far fewer than TFMOT's default frequency.
    pruned, record = prune(small_cnn(data), data, final_sparsity=0.8, schedule=schedule, skip=["conv1"])
    assert set(record["sparsity"]) == {"conv2", "conv3", "fc", "logits"}
    assert all(abs(value - 0.8) < 0.01 for value in record["sparsity"].values()), record["sparsity"]
    conv1 = pruned.get_layer("conv1").kernel.numpy()
    assert np.mean(conv1 == 0) < 0.05 and record["left_out"]["conv1"] == "skipped by the recipe"


def test_a_one_step_stage_still_prunes(data: Any) -> None:
    tiny = load_dataset(DigitsDataset(kind="digits", normalization={"mean": 0.0, "std": 16.0}, limit=40), 0, REPO)
    _, record = prune(small_cnn(tiny), tiny, final_sparsity=0.6, batch_size=64)
    assert record["schedule"]["total"] == 1
    assert set(record["sparsity"]) == {"conv1", "conv2", "conv3", "fc", "logits"}
    assert all(abs(value - 0.6) < 0.01 for value in record["sparsity"].values()), record["sparsity"]


def test_two_four_leaves_two_nonzeros_in_every_block_of_four(data: Any) -> None:
    pruned, record = prune(small_cnn(data), data, structure="2:4")
    assert "conv1" in record["left_out"] and "input channels" in record["left_out"]["conv1"]
    for name in ("conv2", "conv3", "fc", "logits"):
        kernel = pruned.get_layer(name).kernel.numpy()
        along_inputs = np.moveaxis(kernel, -2, -1).reshape(-1, 4)  # TFLite's last axis: input channels
        assert np.count_nonzero(along_inputs, axis=1).max() <= 2, name


def test_block_sparsity_prunes_whole_blocks_of_dense_kernels(data: Any) -> None:
    pruned, record = prune(
        small_cnn(data), data, structure="block", block_size=[1, 4], final_sparsity=0.5, layers=["Dense"]
    )
    assert set(record["sparsity"]) == {"fc", "logits"}
    fc = pruned.get_layer("fc").kernel.numpy()  # (in, out): blocks of 4 output columns
    blocks = fc.reshape(fc.shape[0], -1, 4)
    zero_blocks = np.all(blocks == 0, axis=-1)
    assert abs(zero_blocks.mean() - 0.5) < 0.05


def test_block_sparsity_on_a_conv_named_explicitly_is_refused(data: Any) -> None:
    with pytest.raises(ModelError) as err:
        prune(small_cnn(data), data, structure="block", final_sparsity=0.5, layers=["conv2"])
    assert "'conv2' (Conv2D)" in err.value.message and "2-D (Dense)" in err.value.message


def test_a_pattern_that_matches_no_layer_lists_the_layers(data: Any) -> None:
    with pytest.raises(ModelError) as err:
        prune(small_cnn(data), data, skip=["conv9"])
    assert "'conv9' matches no layer" in err.value.message
    assert "conv1 (Conv2D)" in err.value.hint and "fc (Dense)" in err.value.hint


def seq_recipe(folder: Path, builder: str, qat: str = "", epochs: int = 3) -> Path:
    path = folder / f"{builder}.toml"
    path.write_text(f"""
name = "{builder.replace("_", "-")}"
[dataset]
kind = "digits"
limit = 400
[model]
kind = "builder"
builder = "seq_models:{builder}"
[train]
epochs = {epochs}
learning_rate = 0.005
[[optimize]]
kind = "qat"
epochs = 1
{qat}
[convert]
calibration_samples = 16
[validate]
warmup = 1
runs = 3
""")
    (folder / "seq_models.py").write_text((MODELS / "seq_models.py").read_text())
    return path


def test_qat_on_an_lstm_names_the_layer_and_the_ways_out(tmp_path: Path) -> None:
    recipe = seq_recipe(tmp_path, "lstm_classifier", epochs=1)  # refused at QAT: what training learns is moot
    result = invoke("run", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2, result.output
    err = " ".join(result.stderr.split())
    assert "does not support layer(s) 'lstm' (LSTM)" in err
    assert 'skip = ["lstm"]' in err and "post-training int8 quantization" in err
    assert "optimize[0] qat" in err and "Traceback" not in err


def test_qat_with_the_unsupported_layer_skipped_trains_the_rest(tmp_path: Path) -> None:
    from edgepack.models.tf import load

    load()
    import sys

    sys.path.insert(0, str(MODELS))
    try:
        from seq_models import lstm_classifier
    finally:
        sys.path.remove(str(MODELS))
    from edgepack.optimize.qat import qat
    from edgepack.recipe.optimize import QatStage

    data = load_dataset(DigitsDataset(kind="digits", limit=200), 0, REPO)
    model = lstm_classifier(data.input_shape, data.num_classes)
    wrapped, record = qat(model, QatStage(kind="qat", epochs=1, skip=["LSTM"]), data, NullReporter(), "qat")
    assert record["left_out"] == {"lstm": "skipped by the recipe"}
    assert "probs" in record["quantized_layers"]
    assert type(wrapped.get_layer("lstm")).__name__ == "LSTM"
    assert type(wrapped.get_layer("quant_probs")).__name__.startswith("QuantizeWrapper")


def test_conv1d_gets_a_working_quantize_config(tmp_path: Path) -> None:
    work = tmp_path / "w"
    result = invoke("--json", "run", str(seq_recipe(tmp_path, "conv1d_classifier")), "--workdir", str(work))
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    qat_record = report["stages"]["optimize"]["stages"][0]
    assert "conv1d" in qat_record["quantized_layers"]
    assert report["stages"]["evaluate"]["tflite"] > 0.5  # int8 Conv1D model works, far above chance
    assert report["stages"]["evaluate"]["tflite"] >= report["stages"]["evaluate"]["optimized"] - 0.05
