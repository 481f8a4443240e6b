"""Tasks beyond classification without a model: their metrics, the conversion worker's judge, the anomaly
split, and the data mistakes each refuses before anything is built (the shipped regression and anomaly
recipes, several inputs and outputs: tests/integration/test_tasks.py)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import FEATURES, REPO, invoke


# -- metrics (numpy only) -----------------------------------------------------------------------
def test_roc_auc_is_the_share_of_anomalous_normal_pairs_ranked_right() -> None:
    from edgepack.tasks.metrics import roc_auc

    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=60), 1)  # rounded: many ties
    labels = (rng.random(60) < 0.4).astype(int)
    pairs = [(a, n) for a, n in itertools.product(scores[labels == 1], scores[labels == 0])]
    expected = sum(1.0 if a > n else 0.5 if a == n else 0.0 for a, n in pairs) / len(pairs)
    assert roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
    assert roc_auc(np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1])) == 1.0
    with pytest.raises(ValueError, match="normal \\(0\\) and anomalous \\(1\\)"):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_fidelity_figures_per_output() -> None:
    from edgepack.tasks.metrics import fidelity

    ref = np.array([[3.0, 4.0], [0.0, 0.0]])  # energy 25
    noisy = ref + np.array([[0.5, 0.0], [0.0, 0.0]])  # noise energy 0.25: 20 dB
    result = fidelity([ref, ref], [noisy, ref.copy()], ["a", "b"])
    first, second = result["outputs"]
    assert first["sqnr_db"] == pytest.approx(20.0) and first["max_abs_error"] == pytest.approx(0.5)
    assert first["cosine"] == pytest.approx(
        float(np.dot(ref.ravel(), noisy.ravel()) / np.linalg.norm(ref) / np.linalg.norm(noisy))
    )
    assert second["identical"] and second["sqnr_db"] is None and second["cosine"] == pytest.approx(1.0)
    assert result["worst_sqnr_db"] == pytest.approx(20.0)  # the identical output has no noise to count


def test_regression_errors_over_every_output_value() -> None:
    from edgepack.tasks.metrics import mae, rmse

    predictions = [np.array([[1.0], [2.0]]), np.array([[0.0, 0.0]])]
    targets = [np.array([[2.0], [2.0]]), np.array([[3.0, 4.0]])]
    assert mae(predictions, targets) == pytest.approx((1 + 0 + 3 + 4) / 4)
    assert rmse(predictions, targets) == pytest.approx(math.sqrt((1 + 0 + 9 + 16) / 4))


def test_a_judge_survives_the_trip_to_the_conversion_worker(tmp_path: Path) -> None:
    from edgepack.evaluate.judge import Judge
    from edgepack.tasks.base import Split

    judge = Judge(
        "regression",
        Split(
            [np.ones((3, 2), np.float32), np.zeros((3, 4), np.float32)],
            [np.ones((3, 1), np.float32), np.ones((3, 2), np.float32)],
        ),
        [np.ones((3, 1)), np.ones((3, 2))],
        0.5,
        ["b", "a"],
    )
    judge.save(tmp_path / "judge.npz")
    back = Judge.load(tmp_path / "judge.npz")
    assert (back.task, back.reference_value, back.input_names) == ("regression", 0.5, ["b", "a"])
    assert [x.shape for x in back.split.x] == [(3, 2), (3, 4)] and isinstance(back.split.y, list)
    verdict = back.verdict([np.full((3, 1), 2.0), np.ones((3, 2))])
    assert verdict.metrics["rmse"] == pytest.approx(math.sqrt(3 / 9)) and verdict.drop == pytest.approx(
        math.sqrt(3 / 9) - 0.5, abs=1e-6
    )


# -- data mistakes: exit 2, naming the file and the key -----------------------------------------


def _refused(tmp_path: Path, arrays: dict[str, np.ndarray], task: str, keys: str, builder: str = "mlp") -> str:
    np.savez(tmp_path / "data.npz", **arrays)
    recipe = tmp_path / "bad.toml"
    recipe.write_text(FEATURES.format(task=task, keys=keys, builder=builder))
    result = invoke("train", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_regression_targets_that_are_not_numbers_or_one_per_sample_are_refused(tmp_path: Path) -> None:
    x = np.zeros((40, 6), np.float32)
    message = _refused(tmp_path, {"x": x, "y": np.zeros((39, 1), np.float32)}, "regression", 'y_key = "y"')
    assert "targets 'y'" in message and "40 samples" in message and "data.npz" in message


@pytest.mark.parametrize(
    "labels, expected",
    [
        (np.array([0, 1, 2] * 20), "hold [0, 1, 2]; they must be 0 (normal) or 1 (anomalous)"),
        (np.zeros(60, dtype=np.int64), "every sample is normal"),
    ],
)
def test_anomaly_labels_other_than_0_1_or_of_one_kind_are_refused(
    tmp_path: Path, labels: np.ndarray, expected: str
) -> None:
    x = np.zeros((60, 8), np.float32)
    message = _refused(tmp_path, {"x": x, "flag": labels}, "anomaly", 'anomaly_key = "flag"', "dense_autoencoder")
    assert expected in message and "anomaly_key = 'flag'" in message and "data.npz" in message


def test_an_anomaly_model_trains_and_calibrates_on_normal_samples_only() -> None:
    from edgepack.datasets import load_dataset
    from edgepack.datasets.core import split_indices
    from edgepack.datasets.sources import load_digits
    from edgepack.recipe.schema import AnomalyTask, DigitsDataset

    spec = DigitsDataset(kind="digits", normalization={"mean": 0.0, "std": 16.0})
    data = load_dataset(spec, 0, REPO, AnomalyTask(kind="anomaly", normal_classes=["0", "1", "2", "3", "4"]))
    raw = load_digits(spec, REPO)
    train, test = split_indices(len(raw.inputs[0]), spec.test_fraction, 0)
    normal = train[raw.classes[train] < 5]
    assert data.train_samples == len(normal) and data.left_out == len(train) - len(normal) > 0
    assert np.array_equal(data.x_train, (raw.inputs[0][normal][..., None] / 16.0).astype(np.float32))
    assert data.y_train is None and sorted(np.unique(data.y_test).tolist()) == [0, 1]
    assert np.array_equal(data.y_test, (raw.classes[test] >= 5).astype(np.int64))


def test_nan_in_the_inputs_is_refused_naming_file_array_and_index(tmp_path: Path) -> None:
    x = np.zeros((40, 6), np.float32)
    x[7, 2] = np.nan
    message = _refused(tmp_path, {"x": x, "y": np.zeros((40, 1), np.float32)}, "regression", 'y_key = "y"')
    assert "array 'x' holds NaN at index [7, 2]" in message and "data.npz" in message


def test_infinite_inputs_and_nan_targets_are_refused_naming_file_array_and_index(tmp_path: Path) -> None:
    x = np.zeros((40, 6), np.float32)
    x[3, 5] = np.inf
    (tmp_path / "inf").mkdir()
    message = _refused(tmp_path / "inf", {"x": x, "y": np.zeros((40, 1), np.float32)}, "regression", 'y_key = "y"')
    assert "array 'x' holds inf at index [3, 5]" in message and "inf/data.npz" in message
    y = np.zeros((40, 1), np.float32)
    y[11, 0] = np.nan
    (tmp_path / "nan").mkdir()
    message = _refused(tmp_path / "nan", {"x": np.zeros((40, 6), np.float32), "y": y}, "regression", 'y_key = "y"')
    assert "array 'y' holds NaN at index [11, 0]" in message and "nan/data.npz" in message


def test_a_damaged_npz_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(FEATURES.format(task="regression", keys='y_key = "y"', builder="mlp"))
    (tmp_path / "data.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    result = invoke("train", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
    message = " ".join(result.stderr.split())
    assert f"{tmp_path / 'data.npz'}: cannot read as .npz" in message and "dataset-invalid" in result.stderr


def test_an_unreadable_image_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("cat", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "images" / name / f"{i}.png")
    (tmp_path / "images" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    recipe = tmp_path / "images.toml"
    recipe.write_text(
        '[dataset]\nkind = "folder"\npath = "images"\nimage_size = [8, 8]\n'
        '[model]\nkind = "builder"\nbuilder = "edgepack.models.zoo:digits_cnn"\n[train]\nepochs = 1\n'
    )
    result = invoke("train", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
    assert f"{tmp_path / 'images' / 'dog' / 'broken.png'}: not a readable image" in " ".join(result.stderr.split())
