"""Accuracy-aware conversion: the per-layer quantization error report (TFLite's debugger)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

from edgepack.evaluate.judge import GOALS

PTQ = """
name = "ptq"
seed = 0

[dataset]
kind = "digits"
normalization = { mean = 0.0, std = 16.0 }

[model]
kind = "builder"
builder = "edgepack.models.zoo:digits_cnn"
args = { width = 8 }

[train]
epochs = 2
learning_rate = 0.003

[convert]
mode = "int8"
calibration_samples = 64
error_samples = 16
"""


@pytest.fixture(scope="module")
def ptq_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PTQ's float model, trained once for the file: its train stage, which every recipe below named "ptq"
    finds in its cache (`with_ptq_train`); they differ from PTQ after training only."""
    folder = tmp_path_factory.mktemp("ptq-train")
    (folder / "ptq.toml").write_text(PTQ)
    result = invoke("--json", "train", str(folder / "ptq.toml"), "--workdir", str(folder / "work"))
    assert result.exit_code == 0, result.output
    return folder / "work" / "ptq" / "train"


def with_ptq_train(ptq_train: Path, work: Path) -> Path:
    """`work` holding PTQ's trained stage."""
    shutil.copytree(ptq_train, work / "ptq" / "train")
    return work


@pytest.mark.slow
def test_post_training_int8_reports_each_layers_error_worst_first(
    ptq_train: Path, tmp_path: Path, default_run: dict[str, Any]
) -> None:
    recipe = tmp_path / "ptq.toml"
    recipe.write_text(PTQ)
    result = invoke("--json", "convert", str(recipe), "--workdir", str(with_ptq_train(ptq_train, tmp_path / "work")))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["convert"]
    report = record["quant_error"]
    assert report["measured"] is True and report["metric"] == "rmse_over_scale"
    rows = report["layers"]
    ratios = [r["rmse_over_scale"] for r in rows]
    assert ratios == sorted(ratios, reverse=True) and all(0 <= r < 50 for r in ratios)
    assert {"conv1", "conv2", "conv3", "fc", "logits"} <= {r["layer"] for r in rows}
    assert {r["op"] for r in rows} >= {"CONV_2D", "FULLY_CONNECTED"}
    on_disk = json.loads((Path(record["dir"]) / report["file"]).read_text())
    assert len(on_disk) == len(rows)
    # The default recipe trains with QAT: its quantization is learned, the debugger does not apply.
    manifest = json.loads((default_run["bundle"] / "manifest.json").read_text())
    assert manifest["quantization_error"]["measured"] is False
    assert "QAT" in manifest["quantization_error"]["why"]


OUTLIER = """
name = "outlier"
seed = 0

[dataset]
kind = "digits"
normalization = { mean = 0.0, std = 16.0 }

[model]
kind = "saved"
path = "outlier.h5"

[convert]
mode = "int8"
calibration_samples = 64
error_samples = 16
"""


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained digits CNN that int8 wrecks while its float outputs are untouched.

    conv1's channel 0 and conv3's channel 0 are made dead (zero kernel, negative bias: ReLU gives 0),
    and the weights that read those dead inputs in conv2 and fc are set to 40 (the others are below
    0.5). Float results do not change, but per-channel int8 gives each of those output channels a
    scale of 40/127, which rounds the real weights to 0 or +-1 step: two ops lose the model.
    """
    from edgepack.datasets import load_dataset
    from edgepack.models.tf import load
    from edgepack.models.zoo import digits_cnn
    from edgepack.recipe.schema import DigitsDataset

    keras = load().keras
    keras.utils.set_random_seed(0)
    data = load_dataset(DigitsDataset(kind="digits", normalization={"mean": 0.0, "std": 16.0}), 0, Path("."))
    model = digits_cnn((8, 8, 1), 10, width=8)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=15, verbose=0)
    for dead, reader, flat in (("conv1", "conv2", False), ("conv3", "fc", True)):
        kernel, bias = model.get_layer(dead).get_weights()
        kernel[..., 0], bias[0] = 0.0, -1.0
        model.get_layer(dead).set_weights([kernel, bias])
        weights, reader_bias = model.get_layer(reader).get_weights()
        if flat:  # fc reads the flattened conv3 output: channel 0 is every C-th row
            weights[0 :: kernel.shape[-1], :] = 40.0
        else:
            weights[:, :, 0, :] = 40.0
        model.get_layer(reader).set_weights([weights, reader_bias])
    path = tmp_path_factory.mktemp("outlier") / "outlier.h5"
    model.save(path)
    return path


def _recipe(folder: Path, model: Path, extra: str) -> Path:
    (folder / "outlier.h5").write_bytes(model.read_bytes())
    recipe = folder / "outlier.toml"
    recipe.write_text(OUTLIER + extra)
    return recipe


@pytest.mark.slow
def test_fallback_keeps_the_ops_int8_wrecks_in_float_until_the_criterion_holds(
    outlier_model: Path, tmp_path: Path
) -> None:
    recipe = _recipe(tmp_path, outlier_model, "\n[convert.fallback]\nmax_drop = 0.01\n")
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    fallback = report["stages"]["convert"]["fallback"]
    evaluate = report["stages"]["evaluate"]
    assert fallback["metric"] == "accuracy"
    assert fallback["plain_int8_value"] < fallback["float_value"] - 0.01  # plain int8 misses 1 point
    assert fallback["met"] is True
    assert sorted(k["layer"] for k in fallback["kept_float"]) == ["conv2", "fc"]
    assert sorted(k["op"] for k in fallback["kept_float"]) == ["CONV_2D", "FULLY_CONNECTED"]
    assert [a["extra_float_ops"] for a in fallback["attempts"]] == [0, 1, 2]  # groups of 1, then 2: both needed
    assert evaluate["drop"] <= 0.01 and evaluate["tflite"] == pytest.approx(fallback["value"])
    assert fallback["size_bytes"] > fallback["plain_int8_size_bytes"]  # float weights cost bytes
    gate = {g["name"]: g for g in report["gate"]["results"]}
    assert gate["convert.fallback"]["passed"] is True
    # The model holds those two ops in float, the rest in int8.
    model = Path(report["stages"]["convert"]["dir"]) / "model.tflite"
    inspected = invoke("--json", "inspect", str(model), "--no-runtime")
    floats = json.loads(inspected.stdout)["float_ops"]
    assert sorted(f["op"] for f in floats) == ["CONV_2D", "FULLY_CONNECTED"]


@pytest.mark.slow
def test_when_no_fallback_meets_the_criterion_the_best_attempt_is_kept_and_exit_3(
    outlier_model: Path, tmp_path: Path
) -> None:
    recipe = _recipe(
        tmp_path, outlier_model, '\nkeep_float = ["SOFTMAX"]\n\n[convert.fallback]\nmax_drop = 0.01\nmax_ops = 1\n'
    )
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    fallback = report["stages"]["convert"]["fallback"]
    assert fallback["met"] is False and len(fallback["attempts"]) == 2
    kept = {k["op"]: k["forced"] for k in fallback["kept_float"]}
    assert kept["SOFTMAX"] is True and len(kept) == 2  # the deny-list, and the one op max_ops allows
    gate = {g["name"]: g for g in report["gate"]["results"]}
    assert gate["convert.fallback"]["passed"] is False
    assert Path(report["bundle"][0], "model.tflite").is_file()  # the best attempt is still written
    regate = invoke("--json", "gate", report["bundle"][0])  # the bundle alone says the same
    assert regate.exit_code == 3
    assert {r["name"]: r["passed"] for r in json.loads(regate.stdout)["results"]}["convert.fallback"] is False


@pytest.mark.slow
def test_a_calibration_sample_that_misses_classes_is_flagged(ptq_train: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "ptq.toml"
    recipe.write_text(PTQ.replace("calibration_samples = 64", "calibration_samples = 4\nerror_report = false"))
    result = invoke("convert", str(recipe), "--workdir", str(with_ptq_train(ptq_train, tmp_path / "work")))
    assert result.exit_code == 0, result.output
    assert "calibration samples miss" in result.stderr and "raise convert.calibration_samples" in result.stderr
    record = json.loads(invoke("--json", "convert", str(recipe), "--workdir", str(tmp_path / "work")).stdout)
    calibration = record["convert"]["calibration"]
    assert calibration["samples"] == 4 and calibration["classes"] <= 4 and calibration["test_classes"] == 10
    assert len(calibration["missing_classes"]) == 10 - calibration["classes"]
    # digits hold 0..16, 0..1 after (x - 0) / 16: four images already have blank and full-ink pixels
    assert calibration["input_range"] == {"calibration": [0.0, 1.0], "test": [0.0, 1.0], "test_outside_fraction": 0.0}
    assert record["convert"]["quant_error"] == {"measured": False, "why": "convert.error_report = false"}


SEARCH = """
[convert.search]
modes = ["float32", "float16", "dynamic", "int8"]
{objective}
max_drop = 0.02
"""


def _check_pick(search: dict[str, Any]) -> dict[str, Any]:
    """The pick is what the measured figures say it should be; the Pareto flags match the figures."""
    candidates = search["candidates"]
    key = {"size": "size_bytes", "latency": "latency_p50_ms", "arena": "arena_bytes"}[search["minimize"]]
    meeting = [
        c
        for c in candidates
        if c["drop"] <= search["allowed_drop"] + 1e-9 and not [b for b in c["budgets"] if not b["passed"]]
    ]
    expected = (
        min(meeting, key=lambda c: (c[key], -c["value"])) if meeting else max(candidates, key=lambda c: c["value"])
    )
    assert search["chosen"] == expected["mode"] and [c["mode"] for c in candidates if c["chosen"]] == [expected["mode"]]
    figures = ("size_bytes", "latency_p50_ms", "arena_bytes")
    for c in candidates:
        assert c["arena_bytes"] > 0  # read from each file's tensor lifetimes
        beaten = any(
            all(o[k] <= c[k] for k in figures)
            and o["value"] >= c["value"]
            and tuple(o[k] for k in (*figures, "value")) != tuple(c[k] for k in (*figures, "value"))
            for o in candidates
            if o is not c
        )
        assert c["pareto"] is (not beaten), c["mode"]
    return expected


@pytest.fixture(scope="module")
def search_work(ptq_train: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for both objectives: the second takes the candidates' conversions from the cache."""
    folder = tmp_path_factory.mktemp("search")
    with_ptq_train(ptq_train, folder / "work")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "objective",
    ['objective = "smallest"', 'minimize = "latency"', 'minimize = "arena"'],
    ids=["size", "latency", "arena"],
)
def test_mode_search_picks_what_the_measured_figures_say(search_work: Path, objective: str) -> None:
    """`objective = "smallest"` is how 0.3 recipes said `minimize = "size"`."""
    recipe = search_work / f"ptq-{objective.split()[-1].strip(chr(34))}.toml"
    recipe.write_text(
        PTQ.replace("error_samples = 16", "error_report = false")
        + SEARCH.format(objective=objective)
        + "\n[validate]\nwarmup = 5\nruns = 50\n"
    )
    result = invoke("--json", "run", str(recipe), "--workdir", str(search_work / "work"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    search = report["search"]
    assert [c["mode"] for c in search["candidates"]] == ["float32", "float16", "dynamic", "int8"]
    assert search["met"] is True and search["device"] == "host"
    assert search["minimize"] == {"smallest": "size"}.get(objective.split('"')[1], objective.split('"')[1])
    chosen = _check_pick(search)
    assert search["why"].startswith(f"the {GOALS[search['minimize']]} of ") and "candidates that meet" in search["why"]
    sizes = {c["mode"]: c["size_bytes"] for c in search["candidates"]}
    assert sizes["float32"] > sizes["float16"] > sizes["int8"]
    assert report["stages"]["convert"]["mode"] == chosen["mode"]  # the pick is what is evaluated and bundled
    manifest = json.loads((Path(report["bundle"][0]) / "manifest.json").read_text())
    measured = json.loads((Path(report["bundle"][0]) / "measurements.json").read_text())
    assert measured["search"]["chosen"] == chosen["mode"] and manifest["model"]["mode"] == chosen["mode"]
    from edgepack.bundle.schema import measurements_schema, schema_problems

    assert schema_problems(manifest) == [] and schema_problems(measured, measurements_schema()) == []
    assert {g["name"]: g["passed"] for g in report["gate"]["results"]}["convert.search"] is True
    # the search's own seconds (judging, timing each mode) apart from each mode's conversion and the gate
    seconds = report["seconds"]
    assert {"search", "convert-float32", "convert-float16", "convert-dynamic", "convert-int8"} <= set(seconds)
    assert seconds["search"] > 0


@pytest.mark.slow
def test_mode_search_with_fallback_and_when_nothing_meets(outlier_model: Path, tmp_path: Path) -> None:
    modes = "\n[convert.search]\nmodes = [{modes}]\nmax_drop = 0.01\n"
    recipe = _recipe(tmp_path, outlier_model, modes.format(modes='"int8", "dynamic", "int8-fallback"'))
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    search = json.loads(result.stdout)["search"]
    meets = {c["mode"]: c["meets"] for c in search["candidates"]}
    assert meets == {"int8": False, "dynamic": False, "int8-fallback": True}
    assert _check_pick(search)["mode"] == "int8-fallback"
    recipe.write_text(recipe.read_text().replace('"int8", "dynamic", "int8-fallback"', '"int8", "dynamic"'))
    result = invoke("--json", "run", str(recipe), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 3, result.output  # nothing meets: the most accurate is still bundled
    report = json.loads(result.stdout)
    assert report["search"]["met"] is False and _check_pick(report["search"])
    assert Path(report["bundle"][0], "model.tflite").is_file()
    assert {g["name"]: g["passed"] for g in report["gate"]["results"]}["convert.search"] is False
