"""`edgepack init`: starter recipes for a user's own saved model and data, measured and never overwritten.

Tiny models are built here: a tf_keras CNN classifier on 8x8x1 images (random weights, so at chance), a
Keras 3 regression MLP on 10 features (saved as .keras by Keras 3 itself, its exact weights set), three
classifiers that take the same data in three scales (`scaled`), and two models of sensor-like shapes.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import invoke

SAMPLES = 120


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their rows: a candidate's name and figure on one line."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two saved models and their data, in one folder."""
    from edgepack.models.keras3 import keras3_module
    from edgepack.models.tf import load

    folder = tmp_path_factory.mktemp("init")
    rng = np.random.default_rng(0)
    tk = load().keras
    tk.utils.set_random_seed(0)
    cnn = tk.Sequential(
        [
            tk.layers.Input((8, 8, 1)),
            tk.layers.Conv2D(4, 3, activation="relu"),
            tk.layers.Flatten(),
            tk.layers.Dense(3, activation="softmax"),
        ]
    )
    cnn.save(folder / "Digits CNN.h5")
    images = rng.integers(0, 256, size=(SAMPLES, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, size=SAMPLES).astype(np.int64)
    np.savez(folder / "images.npz", images=images, labels=labels, extra=images[::-1].copy())
    autoencoder = tk.Sequential([tk.layers.Input((6,)), tk.layers.Dense(3), tk.layers.Dense(6)])
    autoencoder.save(folder / "ae.keras")  # tf_keras's own .keras format
    np.savez(
        folder / "sensors.npz",
        readings=rng.normal(size=(40, 6)).astype(np.float32),
        is_anomaly=(np.arange(40) % 5 == 0).astype(np.int64),
    )

    keras = keras3_module()
    keras.utils.set_random_seed(0)
    x = (rng.normal(size=(SAMPLES, 10)) * 3 + 5).astype(np.float32)
    y = (0.5 * x[:, :1] - 2 + rng.normal(0, 0.1, (SAMPLES, 1))).astype(np.float32)
    mlp = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Normalization(mean=5.0, variance=9.0),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    # the exact solution as weights (no training: seconds saved), y = 1.5 u0 + 0.5 on u = (x - 5) / 3, as
    # relu(u0) - relu(-u0): the normalization check judges the model by its RMSE, so it must be a real one
    kernel = np.zeros((10, 8), np.float32)
    kernel[0, 0], kernel[0, 1] = 1.0, -1.0
    head = np.zeros((8, 1), np.float32)
    head[0, 0], head[1, 0] = 1.5, -1.5
    mlp.layers[1].set_weights([kernel, np.zeros(8, np.float32)])
    mlp.layers[2].set_weights([head, np.array([0.5], np.float32)])
    mlp.save(folder / "mlp.keras")
    np.savez(folder / "features.npz", x=x, y=y)
    raw = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    raw.save(folder / "raw.keras")
    hard = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4, activation="hard_silu"), keras.layers.Dense(1)])
    hard.save(folder / "hard.keras")  # tf_keras has no hard_silu: the bridge refuses it
    return {
        "folder": folder,
        "cnn": folder / "Digits CNN.h5",
        "images": folder / "images.npz",
        "mlp": folder / "mlp.keras",
        "raw": folder / "raw.keras",
        "hard": folder / "hard.keras",
        "features": folder / "features.npz",
        "ae": folder / "ae.keras",
        "sensors": folder / "sensors.npz",
    }


def _recipe(path: Path) -> dict[str, Any]:
    from edgepack.recipe.load import load_recipe

    load_recipe(str(path))  # the written recipe validates
    return tomllib.loads(path.read_text())


def _line(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"{key} ="))


def test_classifier_at_chance_is_warned_of_with_no_budgets_and_is_never_overwritten(files: dict[str, Path]) -> None:
    out = files["folder"] / "recipes" / "cnn.toml"  # paths in it: relative to its folder
    result = invoke("init", str(files["cnn"]), "--data", str(files["images"]), "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "normalization candidates" in result.stdout and str(out) in result.stdout
    assert "WARNING" in result.stderr and "near chance" in result.stderr  # random weights, random labels
    assert "first measurement" not in result.stdout  # nothing measured from a model at chance
    text = out.read_text()
    recipe = _recipe(out)
    assert recipe["name"] == "digits-cnn"  # the file's stem, lowercased to the name pattern
    assert recipe["task"]["kind"] == "classification"
    data = recipe["dataset"]
    assert (data["kind"], data["x_key"], data["y_key"], data["layout"]) == ("npz", "images", "labels", "auto")
    assert data["path"] == "../" + files["images"].name and recipe["model"]["path"] == "../Digits CNN.h5"
    assert "also fit: 'extra'" in text  # the other array that fits the input is named
    assert '# labels = ["0", "1", "2"]' in text and "3 classes" in text
    assert "images: 8x8 per sample, 1 channel(s), values 0..255" in text  # the layout's reason
    assert data["pixel_range"] == [0, 255] and "# MEASURED: " in text and "<- written" in text
    assert "# WARNING: the float model's accuracy is" in text
    assert recipe["convert"] == {"mode": "int8", "io": "float32", "calibration_samples": SAMPLES - SAMPLES // 4}
    assert "float32 I/O for every task" in text
    assert recipe["validate"]["devices"] == ["host"]
    assert not recipe.get("budgets") and "Not measured (the float model scores near chance" in text
    assert not list(out.parent.glob("*.tmp-*"))  # no draft left

    checked = invoke("recipes", "check", str(out))
    assert checked.exit_code == 0, checked.stdout + checked.stderr

    before = out.read_bytes()
    again = invoke("init", str(files["cnn"]), "--data", str(files["images"]), "--out", str(out))
    assert again.exit_code == 2
    assert "exists" in again.stderr and str(out) in again.stderr and "--out" in again.stderr
    assert "Traceback" not in again.stderr and out.read_bytes() == before


def test_keras3_regression_starter_json_and_a_run_that_reuses_the_measurement(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "mlp.toml"
    work = tmp_path / "build"
    result = invoke(
        "--json", "init", str(files["mlp"]), "--data", str(files["features"]), "--out", str(out), "--workdir", str(work)
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["recipe"] == str(out) and report["task"] == "regression"
    assert report["model"]["saved_by"].startswith("Keras 3") and report["model"]["optimize_available"]
    assert report["dataset"]["x_key"] == ["x"] and report["dataset"]["y_key"] == "y"
    assert report["normalization"] == {**report["normalization"], "mean": 0.0, "std": 1.0, "guess": False}
    measured = report["measured"]
    assert measured["size_bytes"] > 0 and measured["latency_ms"]["p90"] > 0 and measured["metric"] == "rmse"
    text = out.read_text()
    recipe = _recipe(out)
    assert recipe["task"]["kind"] == "regression" and recipe["dataset"]["y_key"] == "y"
    assert recipe["convert"]["io"] == "float32"
    assert "as stored (Normalization 'normalization' in the model)" in text  # the model normalizes itself
    budgets = recipe["budgets"]
    assert budgets["max_rmse_increase"] >= 0.05
    assert report["budgets"]["max_rmse_increase"] == budgets["max_rmse_increase"]
    assert budgets["max_size"] == report["budgets"]["max_size"]
    kb = -(-measured["size_bytes"] // 1000)
    assert budgets["max_size"] == f"{-(-kb * 11 // 10)} KB"
    from edgepack.init import LATENCY_FLOOR_MS, ceil_sig

    assert budgets["latency_p90_ms"]["host"] == max(LATENCY_FLOOR_MS, ceil_sig(2 * measured["latency_ms"]["p90"]))
    assert measured["worst_sqnr_db"] is not None  # int8 is never bit-identical to float here
    assert budgets["min_sqnr_db"] <= measured["worst_sqnr_db"] - 3
    assert "# measured " in _line(text, "max_rmse_increase")

    run = invoke("--json", "run", str(out), "--workdir", str(work))
    assert run.exit_code == 0, run.stdout + run.stderr
    stages = json.loads(run.stdout)["stages"]
    assert stages["convert"]["cached"] and stages["evaluate"]["cached"]  # --workdir kept the measurement's stages


def test_task_the_data_cannot_serve_is_exit_2_naming_file_and_key(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "x.toml"
    result = invoke(
        "init", str(files["cnn"]), "--data", str(files["images"]), "--task", "regression", "--out", str(out)
    )
    assert result.exit_code == 2
    assert "images.npz" in result.stderr and "'labels'" in result.stderr and "integer labels" in result.stderr
    assert "task-unfit" in result.stderr and "hint" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_without_data_the_recipe_loads_and_says_what_to_do(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "raw.toml"
    result = invoke("init", str(files["raw"]), "--out", str(out), "--name", "My Raw_Model")
    assert result.exit_code == 0, result.stdout + result.stderr
    text = out.read_text()
    recipe = _recipe(out)
    assert recipe["name"] == "my-raw_model"
    assert recipe["dataset"]["path"] == "data.npz" and "TODO: no --data" in text
    assert recipe["task"]["kind"] == "regression"  # one output, not class scores
    assert recipe["model"]["path"] == Path(os.path.relpath(files["raw"], out.parent)).as_posix()
    assert "budgets" not in recipe or not recipe["budgets"]
    assert "# GUESS: no data to look at" in text

    classifier = tmp_path / "cnn.toml"
    assert invoke("init", str(files["cnn"]), "--out", str(classifier)).exit_code == 0
    assert _recipe(classifier)["task"]["kind"] == "classification"


def test_a_keras3_model_the_bridge_refuses_gets_no_optimize_stages_and_says_why(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "hard.toml"
    result = invoke("init", str(files["hard"]), "--data", str(files["features"]), "--no-measure", "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    text = " ".join(line.lstrip("# ") for line in out.read_text().splitlines())
    assert "[[optimize]] stages (prune, qat, cluster) are not available for this model" in text
    assert "hard_silu" in text and "# [[optimize]]" not in out.read_text().splitlines()  # no example to uncomment
    recipe = _recipe(out)
    assert "# Candidates (float rmse on 30 test samples):" in out.read_text() and "per-feature mean/std" in text
    assert "budgets" not in recipe or not recipe["budgets"]
    assert "Not measured (" in out.read_text()  # --no-measure, or a random model's RMSE at chance


CUSTOM = """
import keras


@keras.saving.register_keras_serializable(package="starter")
class Scale(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x
"""


def test_a_custom_layer_module_is_imported_and_written(files: dict[str, Path], tmp_path: Path) -> None:
    import importlib

    from edgepack.models.keras3 import keras3_module

    (tmp_path / "starter_layers.py").write_text(CUSTOM)
    sys.path.insert(0, str(tmp_path))
    try:
        layers = importlib.import_module("starter_layers")
    finally:
        sys.path.remove(str(tmp_path))
    keras = keras3_module()
    model = keras.Sequential([keras.Input((10,)), layers.Scale(name="scale"), keras.layers.Dense(1)])
    model.save(tmp_path / "scaled.keras")
    out = tmp_path / "scaled.toml"
    result = invoke(
        "init",
        str(tmp_path / "scaled.keras"),
        "--data",
        str(files["features"]),
        "--import",
        "starter_layers",
        "--no-measure",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    recipe = _recipe(out)
    assert recipe["model"]["imports"] == ["starter_layers"]
    assert "scale" in out.read_text() and "# [[optimize]]" not in out.read_text().splitlines()  # unbridgeable
    assert invoke("recipes", "check", str(out)).exit_code == 0


def test_image_folder_and_anomaly_labels_are_recognised(files: dict[str, Path], tmp_path: Path) -> None:
    from PIL import Image

    for name in ("ant", "bee", "cat"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(4):
            Image.fromarray(np.full((12, 10, 3), 40 * index, np.uint8)).save(
                tmp_path / "photos" / name / f"{index}.png"
            )
    out = tmp_path / "folder.toml"
    result = invoke("init", str(files["cnn"]), "--data", str(tmp_path / "photos"), "--no-measure", "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    recipe = _recipe(out)
    assert recipe["task"]["kind"] == "classification"
    assert recipe["dataset"] == {
        **recipe["dataset"],
        "kind": "folder",
        "path": "photos",
        "image_size": [8, 8],
        "color_mode": "grayscale",
        "pixel_range": [0, 255],
    }
    assert "<- written" in out.read_text()  # the folder's images were judged under each candidate too
    assert recipe["convert"]["io"] == "float32" and "ant, bee, cat" in out.read_text()

    out = tmp_path / "ae.toml"
    result = invoke("init", str(files["ae"]), "--data", str(files["sensors"]), "--no-measure", "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    recipe = _recipe(out)
    assert recipe["task"]["kind"] == "anomaly" and recipe["dataset"]["anomaly_key"] == "is_anomaly"
    assert recipe["dataset"]["x_key"] == "readings" and recipe["convert"]["io"] == "float32"
    from edgepack.datasets.core import split_indices

    train, _ = split_indices(40, 0.25, 0)
    assert recipe["convert"]["calibration_samples"] == int(np.sum(train % 5 != 0))  # the train split's normal ones


def test_unreadable_model_and_data_are_exit_2_without_traceback(files: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.h5"
    broken.write_text("not a model")
    result = invoke("init", str(broken), "--out", str(tmp_path / "a.toml"))
    assert result.exit_code == 2 and "not a Keras model" in result.stderr and "broken.h5" in result.stderr
    assert "Traceback" not in result.stderr
    text = tmp_path / "data.csv"
    text.write_text("1,2,3\n")
    result = invoke("init", str(files["cnn"]), "--data", str(text), "--out", str(tmp_path / "b.toml"))
    assert result.exit_code == 2 and "is not an .npz" in result.stderr and "data.csv" in result.stderr
    result = invoke(
        "init",
        str(files["cnn"]),
        "--data",
        str(files["images"]),
        "--task",
        "nonsense",
        "--out",
        str(tmp_path / "c.toml"),
    )
    assert result.exit_code == 2 and "classification, regression, anomaly, fidelity" in result.stderr
    assert not list(tmp_path.glob("*.toml"))


def _data(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """4 features near one level in [0, 1] (clipped, so the range is exactly 0..1), class = its third."""
    level = rng.random(samples)
    z = np.clip(level[:, None] + rng.normal(0, 0.03, (samples, 4)), 0, 1).astype(np.float32)
    return z, np.minimum(2, (3 * level).astype(np.int64))


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One classifier trained on features in [0, 1], saved three ways: taking the raw values in [-80, 0]
    (its first layer folded with z = x / 80 + 1), [0, 1] (as trained) and [-1, 1] (z = u / 2 + 1 / 2). The
    data is stored in [-80, 0] for all three, so only each model's own normalization makes it accurate."""
    from edgepack.models.tf import load

    folder = tmp_path_factory.mktemp("scaled")
    rng = np.random.default_rng(0)
    tk = load().keras
    tk.utils.set_random_seed(0)
    base = tk.Sequential(
        [tk.layers.Input((4,)), tk.layers.Dense(16, activation="relu"), tk.layers.Dense(3, activation="softmax")]
    )
    base.compile(tk.optimizers.Adam(0.03), "sparse_categorical_crossentropy")
    base.fit(*_data(rng, 600), epochs=30, batch_size=64, verbose=0)
    kernel, bias, *rest = base.get_weights()
    for name, scale, offset in (("raw", 1 / 80, 1.0), ("unit", 1.0, 0.0), ("signed", 0.5, 0.5)):
        model = tk.models.clone_model(base)  # base(scale * x + offset), folded into the first layer
        model.set_weights([scale * kernel, bias + offset * kernel.sum(axis=0), *rest])
        model.save(folder / f"{name}.h5")
    z, y = _data(rng, 200)
    np.savez(folder / "db.npz", x=80 * z - 80, y=y)
    np.savez(folder / "far.npz", x=1000 * z + 5000, y=y)  # a scale none of the candidates maps to [-80, 0]
    np.savez(folder / "far_unlabelled.npz", x=1000 * z + 5000)
    return {name: folder / name for name in ("raw.h5", "unit.h5", "signed.h5", "db.npz", "far.npz")} | {
        "far_unlabelled.npz": folder / "far_unlabelled.npz"
    }


@pytest.mark.parametrize(
    ("model", "written", "normalization"),
    [
        ("raw.h5", "as stored", (0.0, 1.0)),
        ("unit.h5", "[0, 1]", (-80.0, 80.0)),
        ("signed.h5", "[-1, 1]", (-40.0, 40.0)),
    ],
)
def test_init_measures_the_normalization_each_model_takes(
    scaled: dict[str, Path], tmp_path: Path, model: str, written: str, normalization: tuple[float, float]
) -> None:
    out = tmp_path / "scaled.toml"
    result = invoke("init", str(scaled[model]), "--data", str(scaled["db.npz"]), "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    names = ("as stored", "[0, 1] from -80..0", "[-1, 1] from -80..0", "mean/std", "per-feature mean/std")
    table = {cells[0]: cells for cells in _table_rows(result.stdout) if cells[0] in names}
    assert set(table) == set(names), result.stdout  # every candidate, with its figure
    row = next(cells for cells in table.values() if cells[-1] == "written")
    assert written in row[0] and "near chance" not in result.stdout and "WARNING" not in result.stderr
    recipe = _recipe(out)
    assert (recipe["dataset"]["normalization"]["mean"], recipe["dataset"]["normalization"]["std"]) == normalization
    text = out.read_text()
    shown = [line for line in text.splitlines() if line.startswith("#   ") and ": mean " in line]  # candidates
    assert len(shown) == 5 and sum("<- written" in line for line in shown) == 1
    figures = {line[4:].split(": mean ")[0]: float(line.split("<-")[0].rsplit(": ", 1)[1]) for line in shown}
    for name, cells in table.items():  # the terminal's figure is the recipe's, to its 4 digits
        assert float(cells[3]) == pytest.approx(figures[name], abs=1e-3), (name, cells, figures)
    chosen = figures[row[0]]
    assert chosen >= 0.9 and max(v for k, v in figures.items() if k != row[0]) < chosen - 0.1  # the right one, by far
    assert {"max_size", "latency_p90_ms", "max_accuracy_drop"} <= set(recipe["budgets"])
    run = invoke("run", str(out), "--workdir", str(tmp_path / "build"))
    assert run.exit_code == 0, run.stdout + run.stderr  # the recipe holds the budgets it was given


def _table_rows(text: str) -> list[list[str]]:
    """The cells of each row of the rich tables in `text`."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in text.splitlines() if "│" in line]


def test_wrong_scale_unlabelled_is_not_checked_and_labelled_at_chance_has_no_budgets(
    scaled: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "unlabelled.toml"
    args = ("init", str(scaled["raw.h5"]), "--no-measure", "--out")
    result = invoke(*args, str(out), "--data", str(scaled["far_unlabelled.npz"]))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "normalization not checked: no labels or targets" in result.stderr
    assert "normalization candidates" not in result.stdout
    assert "# NOT CHECKED: no labels or targets" in out.read_text() and "# GUESS: " in out.read_text()

    out = tmp_path / "labelled.toml"
    result = invoke("--json", *args[:2], "--out", str(out), "--data", str(scaled["far.npz"]))  # measuring asked
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    check = report["normalization_check"]
    assert check["at_chance"] and "near chance" in report["warning"] and report["warning"] == check["warning"]
    assert len(check["candidates"]) == 5 and all(c["accuracy"] < 0.67 for c in check["candidates"])
    assert report["budgets"] is None and report["measured"] is None  # no budgets from such a run
    text = out.read_text()
    assert "# WARNING: the float model's accuracy is" in text and not _recipe(out).get("budgets")
    shown = invoke(*args[:2], "--out", str(tmp_path / "again.toml"), "--data", str(scaled["far.npz"]), "--no-measure")
    assert "WARNING" in shown.stderr and "near chance" in shown.stderr  # loud in the terminal too


def test_accelerometer_windows_and_spectrograms_are_tensors_without_a_pixel_range_note(tmp_path: Path) -> None:
    from edgepack.models.tf import load

    tk = load().keras
    rng = np.random.default_rng(0)
    tk.utils.set_random_seed(0)
    cases = {
        "accel": ((24, 3, 1), rng.normal(0, 2, (40, 24, 3, 1)), "a side under 8"),  # m/s2 readings, 3 axes
        "spectrogram": ((64, 50, 1), rng.uniform(-80, 0, (40, 64, 50, 1)), "go below 0"),  # mel bands in dB
    }
    for name, (shape, x, why) in cases.items():
        tk.Sequential([tk.layers.Input(shape), tk.layers.Flatten(), tk.layers.Dense(2)]).save(tmp_path / f"{name}.h5")
        np.savez(tmp_path / f"{name}.npz", x=x.astype(np.float32))
        out = tmp_path / f"{name}.toml"
        result = invoke(
            "init", str(tmp_path / f"{name}.h5"), "--data", str(tmp_path / f"{name}.npz"), "--out", str(out)
        )
        assert result.exit_code == 0, result.stdout + result.stderr
        assert "first measurement" in result.stdout  # measured: the run's ship stage would note a missing range
        assert "pixel_range" not in result.stdout + result.stderr and "pixel_range" not in out.read_text()
        assert _recipe(out)["dataset"]["layout"] == "tensors" and why in _line(out.read_text(), "layout")


def _windows(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """int16 accelerometer windows (24 readings x 3 axes x 1, counts within +-3000, gravity on z); the class
    is how hard the device shakes (a reading's spread), which only the right scale tells apart."""
    y = rng.integers(0, 3, samples)
    spread = np.array([150.0, 400.0, 900.0])[y].reshape(-1, 1, 1, 1)
    x = rng.normal(0, 1, (samples, 24, 3, 1)) * spread + np.array([0, 0, 1000]).reshape(1, 1, 3, 1)
    return np.clip(x, -3000, 3000).astype(np.int16), y.astype(np.int64)


def test_integer_sensor_readings_are_measured_and_normalized_for_a_float_model(tmp_path: Path) -> None:
    """int16 readings feeding a float input are values, not token ids: init measures them and writes
    `integers = "readings"`, and the loader normalizes them as the recipe says."""
    from edgepack.datasets.core import load_dataset
    from edgepack.models.tf import load
    from edgepack.recipe.load import load_recipe

    tk = load().keras
    rng = np.random.default_rng(0)
    tk.utils.set_random_seed(0)
    x, y = _windows(rng, 600)
    mean, std = float(x.mean()), float(x.std())
    model = tk.Sequential(
        [tk.layers.Input((24, 3, 1)), tk.layers.Flatten(), tk.layers.Dense(32, activation="relu"), tk.layers.Dense(3)]
    )
    model.compile(tk.optimizers.Adam(0.01), tk.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((x - mean) / std, y, epochs=20, batch_size=64, verbose=0)  # trained on the data's mean and std
    model.save(tmp_path / "accel.h5")
    np.savez(tmp_path / "accel.npz", x=x[:200], y=y[:200])
    out = tmp_path / "accel.toml"
    result = invoke("init", str(tmp_path / "accel.h5"), "--data", str(tmp_path / "accel.npz"), "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "not checked" not in result.stdout + result.stderr
    cells = next(cells for cells in _table_rows(result.stdout) if cells[-1] == "written")
    assert cells[0] == "mean/std" and float(cells[3]) >= 0.9, result.stdout
    assert "candidates; range and statistics from all 150 train samples)" in result.stdout  # bounded: all of 150
    recipe = _recipe(out)["dataset"]
    assert recipe["layout"] == "tensors" and recipe["integers"] == "readings"
    assert recipe["normalization"]["mean"] == pytest.approx(float(x[:200].mean()), rel=0.02)  # the train split's
    loaded = load_recipe(str(out))
    data = load_dataset(loaded.recipe.dataset, loaded.recipe.seed, loaded.base_dir)
    assert data.x_train.dtype == np.float32 and float(np.abs(data.x_train).max()) < 10  # normalized, not counts
    norm = recipe["normalization"]
    raw = data.raw_tests[0].astype(np.float32)
    assert data.x_test == pytest.approx((raw - norm["mean"]) / norm["std"], abs=1e-4)


def test_inspect_reads_a_saved_keras_model_as_init_does(files: dict[str, Path]) -> None:
    """One `inspect_model` for every model file: a Keras 3 file gives what `init` reads of it."""
    mlp = json.loads(invoke("--json", "inspect", str(files["mlp"])).stdout)
    assert mlp["format"] == "keras" and mlp["saved_by"].startswith("Keras 3")
    assert mlp["inputs"][0]["shape"] == [10] and mlp["outputs"][0]["shape"] == [1]
    assert mlp["params"] >= 10 * 8 + 8 + 8 + 1  # the two Dense layers (and whatever Normalization keeps)
    assert mlp["tf_keras_rebuild"] == {"possible": True, "why": None} and mlp["normalizer"]
    hard = invoke("inspect", str(files["hard"]))
    assert hard.exit_code == 0, hard.output
    assert "tf_keras rebuild" in hard.stdout and "hard_silu" in hard.stdout
    cnn = json.loads(invoke("--json", "inspect", str(files["cnn"])).stdout)  # tf_keras: nothing to rebuild
    assert cnn["format"] == "h5" and cnn["tf_keras_rebuild"] is None and cnn["inputs"][0]["shape"] == [8, 8, 1]
