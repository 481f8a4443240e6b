"""`edgepack init` without a model: never overwriting, the normalization and budget guesses, a light
`init --help` (starters for real saved models: tests/integration/test_init.py)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def test_write_new_never_replaces_a_file(tmp_path: Path) -> None:
    from edgepack.errors import BadInputError
    from edgepack.init import write_new

    target = tmp_path / "r.toml"
    write_new(target, "a = 1\n")
    with pytest.raises(BadInputError, match="never overwrites"):
        write_new(target, "a = 2\n")
    assert target.read_text() == "a = 1\n" and [p.name for p in tmp_path.iterdir()] == ["r.toml"]


def test_normalization_guesses() -> None:
    from edgepack.init import DataPlan, Fit, ModelInfo, Tensor, guess_normalization

    model = ModelInfo(
        Path("m.keras"), "keras", 3, "3", [Tensor("x", (4,), "float32")], [Tensor("y", (1,), "float32")], 5, None, None
    )

    def guess(x: np.ndarray) -> Any:
        plan = DataPlan("npz", Path("d.npz"), len(x), Fit("fidelity", ""), x_keys=["x"], inputs={"x": x})
        return guess_normalization(plan, model)

    rng = np.random.default_rng(0)
    unit = guess(rng.random((50, 4)).astype(np.float32))
    assert (unit.mean, unit.std, unit.guess) == (0.0, 1.0, True)
    pixels = guess(rng.integers(0, 256, (50, 4)).astype(np.uint8))
    assert (pixels.mean, pixels.std) == (0.0, 255.0)
    wide = guess((rng.normal(size=(500, 4)) * [1, 10, 100, 1000]).astype(np.float32))
    assert len(wide.mean) == 4 and wide.std == pytest.approx([1, 10, 100, 1000], rel=0.15)
    assert all(len(f"{v:.12g}".lstrip("-0.").replace(".", "")) <= 6 for v in wide.mean + wide.std)  # 6 digits
    itself = guess_normalization(
        DataPlan("none", None, 0, Fit("regression", "")), ModelInfo(**{**model.__dict__, "normalizer": "Rescaling 'r'"})
    )
    assert (itself.mean, itself.std, itself.guess) == (0.0, 1.0, False) and "Rescaling 'r'" in itself.why


def test_guesses_and_roundings() -> None:
    from edgepack.init import Measured, budgets_from, ceil_sig, recipe_name

    assert (ceil_sig(0.0146), ceil_sig(0.014), ceil_sig(123.0), ceil_sig(9.99)) == (0.015, 0.014, 130.0, 10.0)
    assert (recipe_name("My Model"), recipe_name("__x"), recipe_name("???")) == ("my-model", "x", "model")
    measured = Measured(
        size_bytes=10_000,
        latency_ms={"p90": 0.5},
        task="classification",
        metric="accuracy",
        float_value=0.9,
        tflite_value=0.88,
        worsening=0.02,
        worst_sqnr_db=float("inf"),
        on="2025-01-01",
    )
    budgets = {b.key: b.value for b in budgets_from(measured)}
    assert budgets == {"max_size": "11 KB", "latency_p90_ms": {"host": 1.0}, "max_accuracy_drop": 0.025}
    tiny = budgets_from(
        replace(
            measured, latency_ms={"p90": 0.003}, task="regression", metric="rmse", worsening=0.001, worst_sqnr_db=31.7
        )
    )
    assert {b.key: b.value for b in tiny} == {
        "max_size": "11 KB",
        "latency_p90_ms": {"host": 0.05},
        "max_rmse_increase": 0.05,
        "min_sqnr_db": 28.0,
    }
    assert all(b.comment.startswith("measured ") and b.comment.endswith("tighten as you need") for b in tiny)
    # A measurement beyond what a budget can hold is not made a budget the first run would fail.
    wrecked = budgets_from(replace(measured, task="regression", metric="rmse", worsening=12.0, worst_sqnr_db=-999.0))
    unset = {b.key: b.comment for b in wrecked if b.unset}
    assert set(unset) == {"max_rmse_increase", "min_sqnr_db"}
    assert "+1200.00 %" in unset["max_rmse_increase"] and "-999.00 dB" in unset["min_sqnr_db"]
    assert {b.key for b in wrecked if not b.unset} == {"max_size", "latency_p90_ms"}


def _modules_after(code: str) -> tuple[str, set[str]]:
    probe = code + "\nimport sys\nsys.stderr.write(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return proc.stdout, set(proc.stderr.split())


def test_init_help_imports_no_tensorflow() -> None:
    shown, modules = _modules_after(
        "import sys\nfrom edgepack.cli.app import app\n"
        "sys.argv = ['edgepack', 'init', '--help']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0"
    )
    assert "--no-measure" in shown
    assert not {"tensorflow", "tf_keras", "keras", "edgepack.init"} & modules
    _, modules = _modules_after("import edgepack.cli.init")  # the command module itself: nothing heavy at all
    assert not {"tensorflow", "numpy", "pydantic"} & modules


def test_images_or_tensors_from_rank_channels_sides_and_values() -> None:
    from edgepack.init.layout import choose_layout

    digits = choose_layout((10, 8, 8), 0, 255, (8, 8, 1))  # (N, H, W): an image read adds the channel
    assert (digits.layout, digits.image) == ("auto", True) and "images: 8x8" in digits.why
    accel = choose_layout((10, 24, 3, 1), -7.8, 6.1, (24, 3, 1))
    assert (accel.layout, accel.image) == ("tensors", False) and "a side under 8" in accel.why
    spectrogram = choose_layout((10, 64, 50, 1), -80, 0, (64, 50, 1))
    assert spectrogram.layout == "tensors" and "below 0" in spectrogram.why
    assert choose_layout((10, 16, 16, 5), 0, 1, (16, 16, 5)).layout == "tensors"  # 5 channels
    assert choose_layout((10, 20, 6), 0, 1, (20, 6)).layout == "tensors"  # a sequence
    assert choose_layout((10, 6), -3, 3, (6,)).layout == "auto"  # feature vectors
    bare = choose_layout((10, 64, 50), -80, 0, (64, 50, 1))  # no channel stored: only an image read gives it
    assert bare.layout == "auto" and "(N, H, W, 1)" in bare.why


def test_chance_levels_and_the_choice_among_candidates() -> None:
    from edgepack.init.candidates import Candidate, NormCheck, _choose, chance_of

    ten = chance_of("classification", np.arange(100) % 10, 10)
    assert ten is not None and (ten.level, ten.limit) == (0.1, 0.2)  # within 2x of 1/classes
    two = chance_of("classification", np.array([0, 1, 1, 1]), 2)  # majority 0.75: halfway to 1 is the limit
    assert two is not None and (two.level, two.limit) == (0.75, 0.875)
    mean = chance_of("regression", np.array([1.0, 3.0]), None)
    assert mean is not None and mean.limit == 1.0  # predicting the mean
    auc = chance_of("anomaly", np.array([0, 1]), None)
    assert auc is not None and auc.limit == 0.55
    found = [Candidate("as stored", 0.0, 1.0, 0.9), Candidate("[0, 1]", 0.0, 255.0, 0.903), Candidate("x", 1, 2, 0.95)]
    assert _choose(found, "accuracy", True) == 2
    assert _choose(found[:2], "accuracy", True) == 0  # within the tie margin: the earlier one
    assert _choose([Candidate("a", 0, 1, 1.0), Candidate("b", 0, 2, 0.5)], "rmse", False) == 1
    check = NormCheck(True, "", "accuracy", True, 100, found, 2, ten)
    assert not check.at_chance and check.warning() is None
    low = NormCheck(True, "", "accuracy", True, 100, [Candidate("a", 0, 1, 0.15)], 0, ten)
    assert low.at_chance and "near chance" in (low.warning() or "")


def _runtime_imports(module: str) -> set[str]:
    """The edgepack modules `module`'s source imports when it runs (anywhere, lazily too; not for types only)."""
    import ast
    import importlib.util

    origin = importlib.util.find_spec(module).origin  # type: ignore[union-attr]
    tree = ast.parse(Path(str(origin)).read_text())
    typing_only = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and id(node) not in typing_only:
            found.add(node.module)
        if isinstance(node, ast.Import) and id(node) not in typing_only:
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("edgepack.")}


def test_the_normalization_modules_import_without_a_cycle() -> None:
    """The guess and the measured candidates share their statistics through `starter.stats`: neither
    module imports the other when it runs (the check's record is a type only)."""
    guess, measured = (
        _runtime_imports("edgepack.init.normalization"),
        _runtime_imports("edgepack.init.candidates"),
    )
    assert "edgepack.init.stats" in guess and "edgepack.init.candidates" not in guess
    assert "edgepack.init.stats" in measured and "edgepack.init.normalization" not in measured


def test_statistics_come_from_a_bounded_seeded_sample_and_say_so() -> None:
    from edgepack.init import DataPlan, Fit, ModelInfo, Tensor, guess_normalization
    from edgepack.init.stats import STATS_ROWS, sample_rows

    x = np.arange(10_000 * 3, dtype=np.float32).reshape(10_000, 3)
    (sample,), where = sample_rows([x], 0)
    assert len(sample) == STATS_ROWS == 2048 and where == "2,048 of 10,000 samples (seeded)"
    assert np.array_equal(sample, sample_rows([x], 0)[0][0]) and np.all(np.diff(sample[:, 0]) > 0)  # seeded, in order
    (whole,), where = sample_rows([x[:100]], 0)
    assert whole is not None and len(whole) == 100 and where == "all 100 samples"
    model = ModelInfo(Path("m.h5"), "h5", 2, None, [Tensor("x", (3,), "float32")], [], 5, None, None)
    plan = DataPlan("npz", Path("d.npz"), len(x), Fit("fidelity", ""), x_keys=["x"], inputs={"x": x})
    guess = guess_normalization(plan, model)
    assert "of 2,048 of 10,000 samples (seeded)" in guess.why and guess.mean[0] == pytest.approx(15_000, rel=0.05)
