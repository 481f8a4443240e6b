"""Fast unit tests of the pieces: sizes, splits, schedules, budgets, JUnit, atomic writes, runner maths."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepack.bundle.writer import zip_bytes
from edgepack.datasets import calibration_sample, fingerprint, load_dataset
from edgepack.datasets.core import split_indices
from edgepack.fsutil import replace_dir, temp_dir_beside
from edgepack.gate.budgets import Measurements, check_budgets
from edgepack.gate.junit import junit_xml
from edgepack.recipe.base import parse_size
from edgepack.recipe.schema import Budgets, DigitsDataset, FolderDataset, NpzDataset

RUNNER = Path(__file__).parents[2] / "edgepack" / "devices" / "runners" / "runner.py"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(1234, 1234), ("80 KB", 80_000), ("64KiB", 65_536), ("1.5 MB", 1_500_000), ("2 MiB", 2 * 1024**2), ("10 B", 10)],
)
def test_parse_size(text: int | str, expected: int) -> None:
    assert parse_size(text) == expected


NOT_A_SIZE = r"is not a size; use bytes \(an integer\) or e\.g\. '80 KB', '64 KiB', '2 MB'"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "'' " + NOT_A_SIZE),
        ("KB", "'KB' " + NOT_A_SIZE),
        ("12 parsecs", "'12 parsecs' " + NOT_A_SIZE),
        ("-3 KB", "'-3 KB' " + NOT_A_SIZE),
        (0, "a size must be > 0 bytes"),
        ("0 KB", "a size must be > 0 bytes"),
    ],
)
def test_parse_size_refuses_nonsense(bad: int | str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{why}$"):
        parse_size(bad)


def test_digits_split_is_seeded_and_disjoint() -> None:
    a = load_dataset(DigitsDataset(kind="digits"), 3, Path("."))
    b = load_dataset(DigitsDataset(kind="digits"), 3, Path("."))
    c = load_dataset(DigitsDataset(kind="digits"), 4, Path("."))
    assert (len(a.y_train), len(a.y_test)) == (1347, 450)
    assert fingerprint(a.x_test) == fingerprint(b.x_test) != fingerprint(c.x_test)
    assert a.x_train.dtype == np.float32 and a.x_train.max() == 1.0 and a.x_train.min() == 0.0
    train, test = split_indices(100, 0.25, 0)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 100


def test_calibration_sample_is_seeded_and_capped() -> None:
    x = np.arange(100, dtype=np.float32)[:, None]
    assert np.array_equal(calibration_sample(x, 10, 1), calibration_sample(x, 10, 1))
    assert not np.array_equal(calibration_sample(x, 10, 1), calibration_sample(x, 10, 2))
    assert len(calibration_sample(x, 500, 0)) == 100
    assert len(np.unique(calibration_sample(x, 50, 0))) == 50


def test_npz_and_folder_sources(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 255, (20, 6, 6, 3)), y=np.arange(20) % 4)
    data = load_dataset(NpzDataset(kind="npz", path="d.npz", test_fraction=0.2), 0, tmp_path)
    assert data.input_shape == (6, 6, 3) and data.num_classes == 4 and len(data.y_test) == 4
    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    spec = FolderDataset(kind="folder", path="imgs", image_size=(5, 7), color_mode="grayscale", test_fraction=0.5)
    folder = load_dataset(spec, 0, tmp_path)
    assert folder.labels == ["cat", "dog"] and folder.input_shape == (5, 7, 1)
    assert sorted(np.concatenate([folder.y_train, folder.y_test]).tolist()) == [0, 0, 0, 1, 1, 1]


def test_integer_arrays_are_token_ids_or_readings(tmp_path: Path) -> None:
    """Integer arrays that are no images: ids (int32, as stored) with the identity normalization or when told,
    readings (normalized float32) when a normalization is given or `integers = "readings"`."""
    x = np.random.default_rng(0).integers(-3000, 3000, (20, 24, 3, 1)).astype(np.int16)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 3)
    base = {"kind": "npz", "path": "d.npz", "layout": "tensors"}
    ids = load_dataset(NpzDataset(**base), 0, tmp_path)
    assert ids.x_train.dtype == np.int32 and np.abs(ids.x_train).max() > 1000
    norm = {"mean": 10.0, "std": 1000.0}
    readings = load_dataset(NpzDataset(**base, normalization=norm), 0, tmp_path)
    assert readings.x_train.dtype == np.float32 and np.abs(readings.x_train).max() < 3.1
    assert readings.x_test == pytest.approx((readings.raw_tests[0] - 10.0) / 1000.0)
    told = load_dataset(NpzDataset(**base, normalization=norm, integers="ids"), 0, tmp_path)
    assert told.x_train.dtype == np.int32
    floats = load_dataset(NpzDataset(**base, integers="readings"), 0, tmp_path)
    assert floats.x_train.dtype == np.float32


def test_budgets_margins_and_pass_fail() -> None:
    budgets = Budgets(max_size="10 KB", latency_p90_ms={"host": 1.0}, max_accuracy_drop=0.01, min_accuracy=0.9)
    measured = Measurements(size_bytes=10_001, accuracy_float=0.99, accuracy_tflite=0.985, latency_p90_ms={"host": 0.5})
    results = {r.name: r for r in check_budgets(budgets, measured)}
    assert not results["max_size"].passed and results["max_size"].margin == -1
    assert results["latency_p90_ms.host"].passed and results["latency_p90_ms.host"].margin == 0.5
    assert results["max_accuracy_drop"].passed and results["max_accuracy_drop"].measured == pytest.approx(0.005)
    assert results["min_accuracy"].passed


def test_latency_budget_on_an_unmeasured_device_fails() -> None:
    results = check_budgets(
        Budgets(latency_p90_ms={"rpi4": 5.0}), Measurements(1, 1.0, 1.0, latency_p90_ms={"host": 0.1})
    )
    assert [(r.name, r.passed, r.measured) for r in results] == [("latency_p90_ms.rpi4", False, None)]


def test_the_gated_latency_is_the_p90_or_an_upper_bound_of_it_and_never_emulated() -> None:
    from edgepack.gate.budgets import gated_latency
    from edgepack.records import DeviceRun

    def rec(emulated: bool = False, **figures: float | None) -> DeviceRun:
        return DeviceRun("d", "local", emulated, {"p90": None, **figures})

    latency, basis = gated_latency(
        {
            "host": rec(p90=1.0, p95=2.0),
            "phone": rec(p50=1.0, p95=3.0, max=4.0),
            "old-phone": rec(mean=1.0, max=5.0),
            "qemu": rec(True, p90=9.0),
        }
    )
    assert latency == {"host": 1.0, "phone": 3.0, "old-phone": 5.0}
    assert set(basis) == {"phone", "old-phone"} and basis["old-phone"].startswith("max, an upper bound")
    results = check_budgets(Budgets(latency_p90_ms=4.0), Measurements(1, 1.0, 1.0, latency, basis))
    assert [(r.name, r.passed) for r in results] == [
        ("latency_p90_ms.host", True),
        ("latency_p90_ms.old-phone", False),
        ("latency_p90_ms.phone", True),
    ]
    assert "p95, an upper bound" in results[2].detail


def test_junit_has_one_case_per_budget_and_failures_only_where_exceeded() -> None:
    results = check_budgets(Budgets(max_size=100, min_accuracy=0.5), Measurements(101, 0.9, 0.8, {}))
    root = ET.fromstring(junit_xml(results, "suite"))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["max_size", "min_accuracy"]
    assert [c.find("failure") is not None for c in cases] == [True, False]
    assert "over by 1 bytes" in cases[0].find("failure").get("message")


def test_replace_dir_swaps_whole_directories(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("old")
    tmp = temp_dir_beside(target)
    (tmp / "new.txt").write_text("new")
    replace_dir(tmp, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_zip_is_deterministic_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    first = zip_bytes(tmp_path)
    (tmp_path / "a.txt").touch()
    assert zip_bytes(tmp_path) == first
    assert zipfile.ZipFile(BytesIO(first)).namelist() == ["a.txt", "b.txt"]


def _runner_module():
    spec = importlib.util.spec_from_file_location("runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_percentiles_and_random_inputs_fit_the_tensor() -> None:
    runner = _runner_module()
    summary = runner.percentile_summary([float(i) for i in range(1, 101)])
    assert summary["p50"] == pytest.approx(50.5) and summary["p90"] == pytest.approx(90.1)
    assert summary["min"] == 1.0 and summary["max"] == 100.0 and summary["runs"] == 100
    arrays = runner.make_inputs(
        [
            {"dtype": np.int8, "shape": np.array([1, 8, 8, 1]), "quantization": (0.05, -3)},
            {"dtype": np.int32, "shape": np.array([1, 12]), "quantization": (0.0, 0)},
        ],
        0,
        None,
    )
    assert arrays[0].dtype == np.int8 and arrays[0].shape == (1, 8, 8, 1)
    assert len(np.unique(arrays[0])) > 10  # a quantized input: random values over its range
    assert arrays[1].dtype == np.int32 and not arrays[1].any()  # indices (token ids): zeros, always in range


def test_outputs_with_nan_or_inf_get_the_worst_fidelity_whatever_their_order() -> None:
    from edgepack.tasks.metrics import SQNR_FLOOR_DB, fidelity, output_fidelity

    ref = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
    assert output_fidelity(ref, ref * 1.01)["sqnr_db"] == pytest.approx(40.0, abs=0.01)
    for bad in (np.inf, np.nan):
        broken = ref.copy()
        broken[1, 2] = bad
        record = output_fidelity(ref, broken)
        assert record["sqnr_db"] == SQNR_FLOOR_DB and record["non_finite"] == 1 and record["cosine"] == 0.0
        assert record["max_abs_error"] == pytest.approx(0.0)  # over the finite values
        for outputs in ([ref * 1.01, broken], [broken, ref * 1.01]):
            assert fidelity([ref, ref], outputs)["worst_sqnr_db"] == SQNR_FLOOR_DB
    huge = np.full((4, 3), 1e200)
    assert output_fidelity(np.ones((4, 3)), huge)["sqnr_db"] == SQNR_FLOOR_DB  # the squares overflow


def test_fidelity_refuses_a_different_output_count_and_auc_refuses_nan_scores() -> None:
    from edgepack.errors import ModelError, StageError
    from edgepack.tasks.metrics import fidelity, roc_auc

    with pytest.raises(ModelError, match="has 1 output"):
        fidelity([np.ones((2, 2)), np.ones((2, 1))], [np.ones((2, 2))])
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    with pytest.raises(StageError, match="1 of 4 anomaly scores are NaN"):
        roc_auc(np.array([0.1, np.nan, 0.35, 0.8]), np.array([0, 0, 1, 1]))


def test_one_value_per_sample_is_an_anomaly_score_even_with_one_input_feature() -> None:
    from edgepack.tasks.anomaly import _is_autoencoder, scores

    x = np.array([[0.0], [1.0], [2.0]])
    score = np.array([[0.9], [0.1], [0.5]])
    assert scores(score, x).tolist() == [0.9, 0.1, 0.5]  # not (score - x) ** 2
    assert not _is_autoencoder((None, 1), (None, 1)) and _is_autoencoder((None, 4), (None, 4))
    assert scores(np.zeros((3, 2)), np.ones((3, 2))).tolist() == [1.0, 1.0, 1.0]


def test_editing_a_file_of_edgepack_changes_every_stage_id(tmp_path: Path) -> None:
    import json
    import shutil
    import subprocess
    import sys

    import edgepack

    copy = tmp_path / "src"
    shutil.copytree(Path(edgepack.__file__).parent, copy / "edgepack", ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "import json, sys, edgepack\nfrom pathlib import Path\nfrom edgepack.pipeline.cache import StageCache\n"
        "from edgepack.progress import NullReporter\nassert edgepack.__file__.startswith(sys.argv[1])\n"
        "cache = StageCache(Path(sys.argv[2]), NullReporter())\n"
        "print(json.dumps({s: cache.stage_id(s, {'epochs': 1}, {'data': 'x'}) for s in "
        "('train', 'optimize', 'convert', 'evaluate')}))"
    )

    def ids() -> dict[str, str]:
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(copy), str(tmp_path / "work")],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    before, again = ids(), ids()
    assert before == again and len(set(before.values())) == 4  # stable across processes, one per stage
    runner = copy / "edgepack" / "devices" / "runners" / "runner.py"
    runner.write_text(runner.read_text() + "\n# an edit\n")
    after = ids()
    assert set(after) == set(before) and all(after[s] != before[s] for s in before)
