"""The throughput grid (`[validate] threads` x `batch`) on real LiteRT: the digits model on host times every
cell and names the best, a budget just above the best fails the gate (exit 3, named in the JUnit) and one
just below passes; a device that runs no LiteRT (tflm) says why it times none; a graph that fixes or mixes its
batch is named per cell, never timed as if it batched."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, fast_tflite, invoke, work_copy

from edgepack.devices.runners import runner
from edgepack.records import Throughput

THREADS, BATCHES = [1, 2, 4], [1, 8]


def _grid_recipe(folder: Path, budgets: str = "", devices: str = '["host"]') -> Path:
    """The default recipe (its stages in the default run's cache) with the grid, few runs, and `budgets`."""
    text = (REPO / "recipes" / "digits.toml").read_text()
    text = text.replace('devices = ["host"]', f"devices = {devices}")
    text = re.sub(r"(?m)^runs = \d+", "runs = 20", text)
    text = re.sub(r"(?m)^warmup = \d+", "warmup = 2", text)
    text = re.sub(r"(?m)^threads = 1$", f"threads = {THREADS}\nbatch = {BATCHES}", text)
    text = re.sub(r"(?m)^\[budgets\][^\[]*", f"[budgets]\n{budgets}\n", text)
    assert f"batch = {BATCHES}" in text
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digits.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def grid_bundle(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default recipe with the grid, run on host and tflm from the default run's stages (nothing trained)."""
    folder = tmp_path_factory.mktemp("grid")
    work = work_copy(default_run, folder)
    recipe = _grid_recipe(folder, devices='["host", "tflm"]')
    bundle = folder / "bundle"
    result = invoke("--json", "run", str(recipe), "--workdir", str(work), "--out", str(bundle))
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["stages"]["train"]["cached"], "the grid's run trained again"
    return {"report": report, "bundle": bundle, "folder": folder}


def test_host_times_every_cell_and_names_the_best(grid_bundle: dict[str, Any]) -> None:
    host = grid_bundle["report"]["validation"]["host"]["throughput"]
    cells = host["cells"]
    assert [(c["threads"], c["batch"]) for c in cells] == [(t, b) for b in BATCHES for t in THREADS]
    for c in cells:
        assert c["error"] is None, c
        assert c["latency_ms"]["runs"] == 20 and c["ips"] > 0
        assert c["per_inference_ms"] == pytest.approx(c["latency_ms"]["mean"] / c["batch"])
        assert c["ips"] == pytest.approx(c["batch"] * 1000.0 / c["latency_ms"]["mean"])
    best = Throughput.from_dict(host).best  # the code's pick (ties: fewer threads, then the smaller batch) ...
    assert best is not None and best.ips == max(c["ips"] for c in cells)  # ... is a cell with the most
    measurements = json.loads((grid_bundle["bundle"] / "measurements.json").read_text())
    assert measurements["validation"]["host"]["throughput"] == host  # the bundle records the grid as run
    assert measurements["validation"]["tflm"]["throughput"] == {
        "cells": [],
        "why": "TFLM runs one invoke at a time on one thread (reference kernels on this host), not LiteRT",
    }
    result = invoke("report", str(grid_bundle["bundle"]))
    assert result.exit_code == 0, result.stderr
    page = (grid_bundle["bundle"] / "report.html").read_text()
    assert f"best {best.threads} thread(s), batch {best.batch}" in page and "throughput grid not timed" in page


def test_a_budget_just_above_the_best_fails_and_just_below_passes(grid_bundle: dict[str, Any]) -> None:
    best = Throughput.from_dict(grid_bundle["report"]["validation"]["host"]["throughput"]).best
    assert best is not None
    folder = grid_bundle["folder"]
    above = _grid_recipe(folder / "above", f"min_throughput_ips = {{ host = {best.ips * 1.001!r} }}")
    junit = folder / "above.xml"
    failed = invoke("gate", str(grid_bundle["bundle"]), "--recipe", str(above), "--junit", str(junit))
    assert failed.exit_code == 3, failed.stdout + failed.stderr
    assert "min_throughput_ips.host" in failed.stderr
    xml = junit.read_text()
    case = xml[xml.index('name="min_throughput_ips.host"') :].split("</testcase>")[0]
    assert "<failure" in case and f"measured {best.ips:.6g} inferences/s" in case
    below = _grid_recipe(folder / "below", f"min_throughput_ips = {{ host = {best.ips * 0.999!r} }}")
    passed = invoke("--json", "gate", str(grid_bundle["bundle"]), "--recipe", str(below))
    assert passed.exit_code == 0, passed.stdout + passed.stderr
    (result,) = [r for r in json.loads(passed.stdout)["results"] if r["name"] == "min_throughput_ips.host"]
    assert result["passed"] and result["measured"] == pytest.approx(best.ips)
    assert f"{best.threads} thread(s), batch {best.batch}" in result["detail"]


@pytest.mark.parametrize(
    ("budget", "devices", "said"),
    [
        ("{ tflm = 10.0 }", '["host", "tflm"]', "'tflm'"),
        ("10.0", '["tflm", "rpi4-emulated"]', "none of validation.devices (tflm, rpi4-emulated)"),
    ],
    ids=["named-device", "one-figure"],
)
def test_a_throughput_budget_on_a_device_without_a_grid_is_a_recipe_error(
    tmp_path: Path, budget: str, devices: str, said: str
) -> None:
    recipe = _grid_recipe(tmp_path, f"min_throughput_ips = {budget}", devices=devices)
    result = invoke("run", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "budget-no-throughput" in result.stderr and said in result.stderr
    assert not (tmp_path / "w" / "digits" / "train").exists()  # said before anything trains


def test_a_budget_without_lists_times_the_devices_own_latency_setting(
    default_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no lists, a throughput budget's one cell is the latency run: at the device profile's threads."""
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "host2.toml").write_text('kind = "local"\ndescription = "host, 2 threads"\nthreads = 2\n')
    monkeypatch.chdir(tmp_path)  # ./devices is searched first
    recipe = _grid_recipe(tmp_path, "min_throughput_ips = 1.0", devices='["host2"]')
    recipe.write_text(recipe.read_text().replace(f"threads = {THREADS}\nbatch = {BATCHES}", "threads = 1"))
    result = invoke("--json", "run", str(recipe), "--workdir", str(work_copy(default_run, tmp_path)))
    assert result.exit_code == 0, result.stdout + result.stderr
    run = json.loads(result.stdout)["validation"]["host2"]
    assert run["threads"] == 2
    assert [(c["threads"], c["batch"]) for c in run["throughput"]["cells"]] == [(2, 1)]


def runner_record(model: Path, grid: str) -> dict[str, Any]:
    """The runner's JSON record for `model` with `--grid grid` (in process: the runner is plain Python)."""
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        runner.main([str(model), "--runs", "3", "--warmup", "1", "--grid", grid])
    return json.loads(stdout.getvalue())


def test_a_graph_that_fixes_or_mixes_its_batch_is_named_per_cell(tmp_path: Path) -> None:
    from edgepack.models.tf import load

    tf, tf_keras = load().tf, load().keras
    inputs = tf_keras.Input((4,))
    fixed = fast_tflite(  # a reshape to a constant shape: batch 8 does not load
        tf_keras.Model(inputs, tf_keras.layers.Lambda(lambda x: tf.reshape(x, [2, 2]))(inputs)),
        tmp_path / "f.tflite",
        False,
    )
    summed = tf.function(lambda x: tf.cumsum(x, axis=0), input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    mixed = tmp_path / "mixed.tflite"  # a dynamic batch summed across: batch 8 runs, and the copies differ
    mixed.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([summed.get_concrete_function()]).convert())
    for path, why in ((fixed, "LiteRT cannot run batch 8"), (mixed, "at batch 8, output 0 of the copies")):
        cells = runner_record(path, "1x1,2x1,1x8")["throughput"]["cells"]
        assert [c["error"] for c in cells[:2]] == [None, None] and cells[1]["ips"] > 0, (path.name, cells)
        assert cells[2]["ips"] is None and cells[2]["latency_ms"] is None, (path.name, cells)
        assert cells[2]["error"].startswith(why), (path.name, cells[2])
    dense = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3)])
    cells = runner_record(fast_tflite(dense, tmp_path / "dense.tflite", int8=True), "1x8")["throughput"]["cells"]
    assert cells[0]["error"] is None and cells[0]["batch"] == 8 and np.isfinite(cells[0]["ips"])


def test_a_cell_that_fails_mid_timing_is_named_and_progress_reaches_its_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any exception in a cell (here a KeyError on the 2-thread interpreter's third invoke, a runtime's own bug)
    is that cell's error: the other cells and the latency run's record stand, and progress counts the invokes
    the cell never made."""
    from ai_edge_litert.interpreter import Interpreter

    from edgepack.models.tf import load

    class FailsOnTwoThreads(Interpreter):  # type: ignore[misc]
        def __init__(self, model_path: str, num_threads: int) -> None:
            super().__init__(model_path=model_path, num_threads=num_threads)
            self.threads, self.invokes = num_threads, 0

        def invoke(self) -> None:
            self.invokes += 1
            if self.threads == 2 and self.invokes == 3:
                raise KeyError("tensor 7")
            super().invoke()

    monkeypatch.setattr(runner, "import_runtime", lambda preference: (FailsOnTwoThreads, "ai-edge-litert", "x"))
    tf_keras = load().keras
    dense = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(3)])
    model = fast_tflite(dense, tmp_path / "dense.tflite", int8=True)
    runner.main([str(model), "--runs", "5", "--warmup", "1", "--grid", "1x1,2x1,1x4", "--progress"])
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["latency_ms"]["runs"] == 5
    one, two, four = record["throughput"]["cells"]
    assert one["error"] is None and four["error"] is None and four["ips"] > 0
    assert two["ips"] is None and "KeyError" not in captured.err
    assert two["error"] == "LiteRT cannot run batch 1 with 2 thread(s): 'tensor 7'"
    last = [line for line in captured.err.splitlines() if line.startswith("progress ")][-1]
    assert last == "progress 18 18"  # 3 x (1 warmup + 5 runs), the failed cell's 4 unmade invokes counted
