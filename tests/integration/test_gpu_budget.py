"""`[budgets] gpu_compatible = true` and `min_gpu_macs_share` against the shipped model (analyze/gpu_ops.py,
offline): a model with an op the GPU delegate refuses fails the run with exit 3 and the op in the JUnit; the
default bundle, every op on the GPU, passes `gate`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import REPO, fast_tflite, invoke


def _recipe(folder: Path, budgets: str) -> Path:
    text = (REPO / "recipes" / "digits.toml").read_text()
    text = re.sub(r"(?m)^runs = \d+", "runs = 5", text)
    text = re.sub(r"(?m)^\[budgets\][^\[]*", f"[budgets]\n{budgets}\n", text)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digits.toml"
    path.write_text(text)
    return path


def test_an_op_the_gpu_delegate_refuses_fails_with_the_op_in_the_junit(tmp_path: Path) -> None:
    from edgepack.models.tf import load

    keras = load().keras
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Reshape((8, 8, 1, 1))(inp)
    x = keras.layers.Conv3D(2, 3, padding="same", name="volume")(x)
    x = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = fast_tflite(keras.Model(inp, x), tmp_path / "volume.tflite", int8=False)
    recipe = _recipe(tmp_path, "gpu_compatible = true\nmin_gpu_macs_share = 0.5")
    bundle, junit = tmp_path / "bundle", tmp_path / "junit.xml"
    made = invoke("bundle", str(recipe), "--model", str(model), "--workdir", str(tmp_path / "w"), "--out", str(bundle))
    assert made.exit_code == 0, made.stdout + made.stderr  # `bundle` packs; `gate` checks the budgets
    result = invoke("--json", "gate", str(bundle), "--junit", str(junit))
    assert result.exit_code == 3, result.stdout + result.stderr
    gate = {r["name"]: r for r in json.loads(result.stdout)["results"]}
    assert not gate["gpu_compatible"]["passed"] and gate["gpu_compatible"]["measured"] >= 1
    assert re.search(r"CONV_3D \(\w+/volume\): Not supported op", gate["gpu_compatible"]["detail"])
    assert gate["min_gpu_macs_share"]["measured"] < 1.0
    xml = junit.read_text()
    case = xml[xml.index('name="gpu_compatible"') :].split("</testcase>")[0]
    assert "<failure" in case and "CONV_3D" in case and "Not supported op" in case


def test_the_default_bundle_runs_whole_on_the_gpu(default_run: dict[str, Any], tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "gpu_compatible = true\nmin_gpu_macs_share = 1.0")
    result = invoke("--json", "gate", str(default_run["bundle"]), "--recipe", str(recipe))
    assert result.exit_code == 0, result.stdout + result.stderr
    gate = {r["name"]: r for r in json.loads(result.stdout)["results"]}
    assert gate["gpu_compatible"]["passed"] and gate["gpu_compatible"]["measured"] == 0
    assert gate["min_gpu_macs_share"]["measured"] == 1.0
