"""Keras 3 models through the whole pipeline: bridged to tf_keras for pruning and QAT, or, when a layer
cannot be bridged, converted from Keras 3 directly (post-training only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import invoke

pytestmark = pytest.mark.slow

SAVED = """
name = "{name}"
seed = 0
[dataset]
kind = "digits"
normalization = {{ mean = 0.0, std = 16.0 }}
[model]
kind = "saved"
path = "{model}"
{imports}
{optimize}
[convert]
mode = "int8"
calibration_samples = 128
[validate]
warmup = 2
runs = 20
"""

PRUNE_QAT = """
[[optimize]]
kind = "prune"
final_sparsity = 0.5
epochs = 2
learning_rate = 0.0005
[[optimize]]
kind = "qat"
epochs = 2
learning_rate = 0.0001
"""

CUSTOM = '''
import keras


@keras.saving.register_keras_serializable(package="mine")
class Gain(keras.layers.Layer):
    """y = g * x with one learned g: a layer tf_keras has no equivalent of."""

    def build(self, input_shape):
        self.g = self.add_weight(shape=(), initializer="ones", name="g")

    def call(self, x):
        return x * self.g
'''


def _digits() -> Any:
    from edgepack.datasets import load_dataset
    from edgepack.recipe.schema import DigitsDataset

    return load_dataset(DigitsDataset(kind="digits", normalization={"mean": 0.0, "std": 16.0}), 0, Path("."))


@pytest.fixture(scope="module")
def keras3_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A residual CNN (BatchNormalization, DepthwiseConv2D, Add, global pooling, Dropout) built and
    trained in Keras 3 and saved by Keras 3 as .keras; its accuracy measured in Keras 3."""
    import keras

    from edgepack.models.zoo import keras3_cnn

    data = _digits()
    keras.utils.set_random_seed(0)
    model = keras3_cnn(data.input_shape, 10, width=16)
    assert type(model).__module__.startswith("keras.")  # a Keras 3 model, not tf_keras
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=12, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("keras3") / "residual.keras"
    model.save(path)
    accuracy = float(np.mean(np.argmax(model.predict(data.x_test, verbose=0), axis=-1) == data.y_test))
    return {"path": path, "accuracy": accuracy}


def _recipe(folder: Path, name: str, model: Path, optimize: str = "", imports: str = "") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SAVED.format(name=name, model=model, optimize=optimize, imports=imports))
    return path


def test_a_keras3_model_is_bridged_pruned_qatd_and_stays_within_a_point(
    keras3_model: dict[str, Any], tmp_path: Path
) -> None:
    recipe = _recipe(tmp_path, "residual", keras3_model["path"], PRUNE_QAT)
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["kind"] for s in report["stages"]["optimize"]["stages"]] == ["prune", "qat"]
    source = report["stages"]["train"]["source"]
    assert source["saved_by"] == "keras3" and source["format"] == "keras" and source["keras_version"].startswith("3.")
    assert source["bridge"]["bridged"] is True and source["bridge"]["max_abs_diff"] <= 1e-5
    assert source["bridge"]["samples"] == report["stages"]["evaluate"]["test_samples"]
    # the float reference is the Keras 3 model's own accuracy, through the bridge
    assert report["stages"]["train"]["test_accuracy"] == pytest.approx(keras3_model["accuracy"], abs=1e-9)
    assert keras3_model["accuracy"] > 0.9
    assert abs(report["stages"]["evaluate"]["tflite"] - keras3_model["accuracy"]) <= 0.01
    manifest = json.loads((Path(report["bundle"][0]) / "manifest.json").read_text())
    assert manifest["source"]["bridge"]["max_abs_diff"] == source["bridge"]["max_abs_diff"] <= 1e-5
    assert manifest["source"]["keras_version"] == source["keras_version"]
    prune = report["stages"]["optimize"]["stages"][0]
    assert set(prune["pruned_layers"]) == {"stem", "pw", "conv2", "probs"}  # the Keras 3 layer names survive
    kernels = report["stages"]["convert"]["weights"]
    assert all(kernels[name]["sparsity"] >= 0.49 for name in prune["pruned_layers"]), kernels
    # TFMOT wraps DepthwiseConv2D and BatchNormalization but masks none of their weights: said, not claimed
    assert prune["left_out"]["dw"] == "TFMOT prunes no weights of DepthwiseConv2D" and "stem_bn" in prune["left_out"]


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras 3 model with a registered custom layer, saved as .keras beside the module defining it."""
    import importlib
    import sys

    folder = tmp_path_factory.mktemp("custom")
    (folder / "my_layers.py").write_text(CUSTOM)
    sys.path.insert(0, str(folder))
    try:
        my_layers = importlib.import_module("my_layers")
    finally:
        sys.path.remove(str(folder))
    import keras

    data = _digits()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    h = my_layers.Gain(name="gain")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="probs")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=3, verbose=0)
    model.save(folder / "custom.keras")
    return folder / "custom.keras"


def test_a_custom_layer_is_refused_by_name_for_optimize_stages(custom_model: Path, tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "custom", custom_model, PRUNE_QAT, 'imports = ["my_layers"]')
    moved = tmp_path / "my_layers.py"
    moved.write_text((custom_model.parent / "my_layers.py").read_text())
    result = invoke("train", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "gain" in message and "Gain" in message and "Traceback" not in result.stderr
    assert "remove the [[optimize]] stages" in message


def test_without_optimize_stages_a_custom_layer_model_converts_from_keras3(custom_model: Path, tmp_path: Path) -> None:
    (tmp_path / "my_layers.py").write_text((custom_model.parent / "my_layers.py").read_text())
    recipe = _recipe(tmp_path, "custom-ptq", custom_model, "", 'imports = ["my_layers"]')
    trained = invoke("train", str(recipe), "--workdir", str(tmp_path / "work"))
    assert trained.exit_code == 0, trained.output
    # another command: the kept Keras 3 model is read back from the train stage's file, custom layer and all
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    train = report["stages"]["train"]
    assert train["keras"] == 3 and train["source"]["bridge"]["bridged"] is False
    assert "gain" in train["source"]["bridge"]["why"]
    assert report["stages"]["convert"]["mode"] == "int8"
    assert report["stages"]["evaluate"]["tflite"] >= train["test_accuracy"] - 0.02
    bundle = Path(report["bundle"][0])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["mode"] == "int8" and manifest["inputs"][0]["dtype"] == "int8"
    assert manifest["source"]["saved_by"] == "keras3"
    assert invoke("verify", str(bundle)).exit_code == 0
    # optimize stages added later: the cached Keras 3 train stage is refused by name, not optimized
    recipe.write_text(recipe.read_text() + PRUNE_QAT)
    refused = invoke("optimize", str(recipe), "--workdir", str(tmp_path / "work"))
    assert refused.exit_code == 2, refused.output
    assert "gain" in refused.stderr and "remove the [[optimize]] stages" in " ".join(refused.stderr.split())


def test_a_rebuild_that_computes_something_else_is_refused_or_bypassed(
    keras3_model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgepack.models.keras3 as keras3

    real = keras3.bridge

    def broken(model: Any) -> Any:  # a bridge defect: one kernel off by a little
        rebuilt = real(model)
        layer = rebuilt.get_layer("pw")
        layer.set_weights([w + 0.01 for w in layer.get_weights()])
        return rebuilt

    monkeypatch.setattr(keras3, "bridge", broken)
    recipe = _recipe(tmp_path, "broken", keras3_model["path"], PRUNE_QAT)
    result = invoke("train", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "keras3-bridge-mismatch" in message and "'pw'" in message and "remove the [[optimize]] stages" in message
    recipe = _recipe(tmp_path, "bypass", keras3_model["path"])  # post-training only: the Keras 3 model itself
    result = invoke("--json", "train", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    train = json.loads(result.stdout)["train"]
    assert train["keras"] == 3 and "differs from the Keras 3 model" in train["source"]["bridge"]["why"]
    assert train["test_accuracy"] == pytest.approx(keras3_model["accuracy"], abs=1e-9)

    def failing(model: Any) -> Any:  # weights the rebuild cannot take
        from edgepack.errors import ModelError

        raise ModelError("weight 'kernel' of layer 'pw' does not fit", code="keras3-bridge-mismatch")

    monkeypatch.setattr(keras3, "bridge", failing)
    recipe = _recipe(tmp_path, "weights", keras3_model["path"])
    result = invoke("--json", "train", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["train"]["source"]["bridge"] == {
        "bridged": False,
        "why": "weight 'kernel' of layer 'pw' does not fit",
    }
