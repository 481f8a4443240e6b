"""The default recipe end to end through the installed `edgepack` script, and what it writes."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import invoke, run_cli, work_copy

pytestmark = pytest.mark.slow


def test_int8_within_one_point_of_float_in_summary_and_manifest(default_run: dict[str, Any]) -> None:
    evaluated = default_run["report"]["stages"]["evaluate"]
    accuracy = default_run["manifest"]["metrics"]["accuracy"]
    assert evaluated["float"] == accuracy["float"] and evaluated["tflite"] == accuracy["tflite"]
    assert accuracy["float"] > 0.95
    assert accuracy["float"] - accuracy["tflite"] <= 0.01


def test_manifest_size_and_hash_match_the_model_file(default_run: dict[str, Any]) -> None:
    data = (default_run["bundle"] / "model.tflite").read_bytes()
    model = default_run["manifest"]["model"]
    assert model["size_bytes"] == len(data)
    assert model["sha256"] == hashlib.sha256(data).hexdigest()
    assert model["mode"] == "int8"


def test_manifest_tensors_match_what_litert_reports(default_run: dict[str, Any]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(default_run["bundle"] / "model.tflite"))
    manifest = default_run["manifest"]
    for declared, actual in (
        (manifest["inputs"], interp.get_input_details()),
        (manifest["outputs"], interp.get_output_details()),
    ):
        assert len(declared) == len(actual)
        for tensor, detail in zip(declared, actual):
            assert tensor["name"] == detail["name"]
            assert tensor["shape"] == detail["shape"].tolist()
            assert tensor["dtype"] == np.dtype(detail["dtype"]).name == "int8"
            assert tensor["scale"] == pytest.approx(detail["quantization"][0], rel=0, abs=0)
            assert tensor["zero_point"] == detail["quantization"][1]


def test_manifest_records_provenance_and_measurements(default_run: dict[str, Any]) -> None:
    manifest = default_run["manifest"]
    assert manifest["schema_version"] == 3
    assert manifest["task"] == {"kind": "classification"} and manifest["metrics"]["task"] == "classification"
    assert manifest["source"] == {
        "kind": "builder",
        "builder": "edgepack.models.zoo:digits_cnn",
        "saved_by": "tf_keras",
    }
    assert manifest["metrics"]["tflite"]["accuracy"] == manifest["metrics"]["accuracy"]["tflite"]
    assert manifest["metrics"]["fidelity"]["outputs"][0]["sqnr_db"] > 10  # int8 against the QAT model it came from
    assert manifest["labels"] == [str(i) for i in range(10)]
    assert (default_run["bundle"] / "labels.txt").read_text().split() == manifest["labels"]
    assert manifest["normalization"]["mean"] == 0.0 and manifest["normalization"]["std"] == 16.0
    assert manifest["recipe"]["resolved"]["name"] == "digits"
    assert len(manifest["recipe"]["sha256"]) == 64
    assert set(manifest["toolchain"]) >= {"edgepack", "tensorflow", "tensorflow-model-optimization", "ai-edge-litert"}
    assert manifest["data"]["calibration"]["samples"] == 256
    assert len(manifest["data"]["calibration"]["fingerprint"]) == 64
    assert manifest["data"]["test"]["samples"] == 450
    run = json.loads((default_run["bundle"] / "measurements.json").read_text())  # the run section
    assert run["model_sha256"] == manifest["model"]["sha256"]  # the bytes that ship are the bytes measured
    host = run["validation"]["host"]
    assert host["latency_ms"]["runs"] == 200
    assert 0 < host["latency_ms"]["p50"] <= host["latency_ms"]["p90"] <= host["latency_ms"]["p99"]
    assert host["runtime"]["name"] == "ai-edge-litert"
    assert run["gate"]["passed"] is True
    assert [r["name"] for r in run["gate"]["results"]] == [
        "max_size",
        "latency_p90_ms.host",
        "max_accuracy_drop",
        "min_accuracy",
    ]
    assert not {"validation", "gate", "search"} & set(manifest)  # nothing run-specific in the build section
    prune = manifest["optimization"]["stages"][0]
    assert prune["kind"] == "prune" and min(prune["sparsity"].values()) >= 0.49


def test_junit_of_a_passing_run_has_one_passing_case_per_budget(default_run: dict[str, Any]) -> None:
    suite = ET.parse(default_run["junit"]).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == 4


def _budget_recipe(folder: Path, name: str, budgets: str) -> Path:
    """The default recipe with only its [budgets] replaced (so every stage is a cache hit)."""
    text = (Path(__file__).parents[2] / "recipes" / "digits.toml").read_text()
    path = folder / f"{name}.toml"
    path.write_text('name = "digits"\n' + text.split("[budgets]")[0] + "[budgets]\n" + budgets)
    return path


def test_size_budget_just_below_fails_with_exit_3_and_one_junit_failure(
    default_run: dict[str, Any], tmp_path: Path
) -> None:
    size = default_run["manifest"]["model"]["size_bytes"]
    junit = tmp_path / "gate.xml"
    below = _budget_recipe(tmp_path, "below", f"max_size = {size - 1}\nmin_accuracy = 0.5\n")
    result = invoke("gate", str(default_run["bundle"]), "--recipe", str(below), "--junit", str(junit))
    assert result.exit_code == 3, result.output
    assert "max_size: measured" in result.stderr and "over by 1 bytes" in result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed == ["max_size"]
    assert len(suite.findall("testcase")) == 2


def test_size_budget_just_above_passes_with_exit_0(default_run: dict[str, Any], tmp_path: Path) -> None:
    size = default_run["manifest"]["model"]["size_bytes"]
    above = _budget_recipe(tmp_path, "above", f"max_size = {size}\n")
    result = invoke("gate", str(default_run["bundle"]), "--recipe", str(above))
    assert result.exit_code == 0, result.output


def test_run_exits_3_on_an_exceeded_accuracy_budget_and_still_writes_the_bundle(
    default_run: dict[str, Any], tmp_path: Path
) -> None:
    tflite = default_run["manifest"]["metrics"]["accuracy"]["tflite"]
    recipe = _budget_recipe(tmp_path, "strict", f"min_accuracy = {min(1.0, tflite + 0.001)}\n")
    out = tmp_path / "bundle"
    junit = tmp_path / "run.xml"
    proc = run_cli(
        "--json",
        "run",
        str(recipe),
        "--workdir",
        str(work_copy(default_run, tmp_path)),
        "--out",
        str(out),
        "--junit",
        str(junit),
        "--zip",
    )
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON document, even on failure
    assert report["gate"]["passed"] is False
    cached = {name: stage["cached"] for name, stage in report["stages"].items() if name != "validate"}
    assert set(cached) >= {"train", "optimize", "convert", "evaluate"} and all(cached.values()), cached
    assert json.loads((out / "measurements.json").read_text())["gate"]["passed"] is False
    assert ET.parse(junit).getroot().get("failures") == "1"
    import zipfile

    with zipfile.ZipFile(out.with_name("bundle.zip")) as archive:
        assert archive.namelist() == [
            "golden.npz",
            "labels.txt",
            "manifest.json",
            "model.tflite",
        ]  # no measurements.json
        assert archive.read("model.tflite") == (out / "model.tflite").read_bytes()


def test_gate_on_the_bundle_uses_its_own_budgets(default_run: dict[str, Any]) -> None:
    result = invoke("--json", "gate", str(default_run["bundle"]))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["passed"] is True


def test_stage_commands_run_alone_from_the_cache(default_run: dict[str, Any], tmp_path: Path) -> None:
    result = invoke("--json", "evaluate", "--workdir", str(work_copy(default_run, tmp_path)))
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)["evaluate"]
    assert evaluated["cached"] is True
    assert evaluated["tflite"] == default_run["manifest"]["metrics"]["accuracy"]["tflite"]


def test_runner_benchmarks_the_bundle_model_without_tensorflow(default_run: dict[str, Any]) -> None:
    import subprocess
    import sys

    runner = Path(__file__).parents[2] / "edgepack" / "devices" / "runners" / "runner.py"
    model = default_run["bundle"] / "model.tflite"
    code = (
        f"import runpy, sys\nsys.argv = ['runner', {str(model)!r}, '--runs', '5', '--warmup', '1']\n"
        f"runpy.run_path({str(runner)!r}, run_name='__main__')\n"
        "sys.stderr.write('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.endswith("NO-TF")
    record = json.loads(proc.stdout)
    assert record["latency_ms"]["runs"] == 5 and record["runtime"]["name"] == "ai-edge-litert"
    assert record["outputs"][0]["shape"] == [1, 10] and record["outputs"][0]["dtype"] == "int8"
    assert record["peak_rss_kb"] > 0


def test_saved_model_recipe_converts_to_float32_without_retraining(default_run: dict[str, Any], tmp_path: Path) -> None:
    saved = default_run["work"] / "digits" / "train" / "model.h5"
    recipe = tmp_path / "saved.toml"
    recipe.write_text(
        f'[dataset]\nkind = "digits"\nnormalization = {{ mean = 0.0, std = 16.0 }}\n'
        f'[model]\nkind = "saved"\npath = "{saved}"\n'
        '[convert]\nmode = "float32"\nio = "float32"\n[validate]\nruns = 5\nwarmup = 1\n'
    )
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    float_accuracy = default_run["manifest"]["metrics"]["accuracy"]["float"]
    assert report["stages"]["train"]["test_accuracy"] == pytest.approx(float_accuracy)
    assert report["stages"]["evaluate"]["tflite"] == pytest.approx(float_accuracy, abs=0.003)
    manifest = json.loads((Path(report["bundle"][0]) / "manifest.json").read_text())
    assert manifest["inputs"][0]["dtype"] == "float32" and manifest["inputs"][0]["scale"] is None


def test_native_log_lines_stay_off_the_terminal_unless_debug(default_run: dict[str, Any], tmp_path: Path) -> None:
    model = str(default_run["bundle"] / "model.tflite")
    args = ("validate", "--model", model, "--device", "host", "--workdir", str(tmp_path))
    quiet, loud = run_cli(*args, cwd=tmp_path), run_cli(*args, "--debug", cwd=tmp_path)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Created TensorFlow Lite XNNPACK delegate" in loud.stderr  # LiteRT's C++ line, on fd 2 ...
    assert "XNNPACK" not in quiet.stderr and "validate on host" in quiet.stderr  # ... kept off, progress kept


def test_the_run_reports_each_stages_own_seconds(default_run: dict[str, Any]) -> None:
    seconds = default_run["report"]["seconds"]
    stages = ["train", "optimize", "convert", "evaluate", "ship", "validate", "fits", "gate", "bundle"]
    assert set(seconds) == {"import", "data", *stages}, seconds
    assert all(seconds[name] >= 0 for name in seconds)
    assert seconds["train"] > 0 and seconds["optimize"] > 0 and seconds["import"] > 0  # trained, imported
    assert [name for name in seconds if name in stages][:3] == ["train", "optimize", "convert"]  # as they ended
