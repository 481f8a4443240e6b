"""Every shipped recipe runs end to end (tiny epochs), and each reports what its stages achieved."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, default_train, invoke, tiny_copy

RECIPES = REPO / "recipes"


def run_recipe(path: Path, work: Path) -> dict[str, Any]:
    """`edgepack --json run` of a recipe; the bundle goes to WORK/bundle-NAME."""
    result = invoke("--json", "run", str(path), "--workdir", str(work), "--out", str(work / f"bundle-{path.stem}"))
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def stage_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report["stages"]["optimize"]["stages"]


SHIPPED = ["ptq-int8", "qat-int8", "prune-qat-int8", "prune24-qat-int8", "cluster-qat-int8", "distill-prune-qat-int8"]


# Their [model], [dataset] and [train] are the default recipe's: their train stage is the default run's.
DEFAULT_TRAIN = ["ptq-int8", "qat-int8", "prune-qat-int8", "prune24-qat-int8", "cluster-qat-int8"]


@pytest.fixture(scope="module")
def tiny_reports(
    default_run: dict[str, Any], ptq_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """One tiny run of each shipped digits recipe, shared by the checks below: every optimize stage one epoch,
    trained from the default run's float model where the recipe's training is the default's (ptq-int8 is the
    session's `ptq_run`), the distillation's teacher one epoch from scratch."""
    folder = tmp_path_factory.mktemp("shipped")
    reports = {"ptq-int8": {**ptq_run["report"], "bundle_dir": ptq_run["bundle"]}}
    for name in SHIPPED[1:]:
        shared = name in DEFAULT_TRAIN
        if shared:
            default_train(default_run, folder / "work", name)
        report = run_recipe(tiny_copy(name, folder, keep_train=shared), folder / "work")
        assert report["stages"]["train"]["cached"] is shared, f"{name}: the train stage was not the default run's"
        reports[name] = {**report, "bundle_dir": folder / "work" / f"bundle-{name}"}
    for report in reports.values():
        report["manifest"] = json.loads((report.pop("bundle_dir") / "manifest.json").read_text())
    return reports


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_runs_end_to_end(name: str, tiny_reports: dict[str, Any], default_run: dict[str, Any]) -> None:
    report = tiny_reports[name]
    kinds = [s["kind"] for s in stage_records(report)]
    assert kinds == re.findall(r'(?m)^kind = "(prune|qat|cluster|distill)"', (RECIPES / f"{name}.toml").read_text())
    evaluate = report["stages"]["evaluate"]
    if name in DEFAULT_TRAIN:  # the default run's float model, then one epoch of each optimize stage
        assert evaluate["float"] == default_run["manifest"]["metrics"]["accuracy"]["float"]
        assert evaluate["tflite"] > 0.9, evaluate
    else:  # a teacher of one epoch, distilled for one: still far above chance (0.1)
        assert evaluate["tflite"] > 0.5, evaluate
    optimization = report["manifest"]["optimization"]
    assert [s["kind"] for s in optimization["stages"]] == kinds
    assert optimization["tflite_weights"] == report["stages"]["convert"]["weights"]
    assert report["manifest"]["model"]["gzip_bytes"] == report["stages"]["convert"]["gzip_bytes"]
    for record in stage_records(report):
        assert {"test_accuracy", "params", "weights_gzip_bytes", "sparsity", "kernel_zeros"} <= set(record)


def pruned_weights(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    prune = next(s for s in stage_records(report) if s["kind"] == "prune")
    weights = report["stages"]["convert"]["weights"]
    return {name: weights[name] for name in prune["pruned_layers"]}


def test_pruning_reaches_its_target_in_the_tflite_after_qat(tiny_reports: dict[str, Any]) -> None:
    report = tiny_reports["prune-qat-int8"]
    weights = pruned_weights(report)
    assert set(weights) == {"conv2", "conv3", "fc", "logits"}  # skip = ["conv1"]
    assert all(w["sparsity"] >= 0.79 for w in weights.values()), weights
    assert report["stages"]["optimize"]["stages"][1]["scheme"] == "pruning-preserving"
    assert report["stages"]["convert"]["gzip_bytes"] < 0.6 * report["stages"]["convert"]["size_bytes"]


def test_two_four_survives_into_the_tflite(tiny_reports: dict[str, Any]) -> None:
    weights = pruned_weights(tiny_reports["prune24-qat-int8"])
    assert set(weights) == {"conv2", "conv3", "fc", "logits"}
    assert all(w["max_nonzeros_per_4"] == 2 for w in weights.values()), weights


def test_clustering_leaves_at_most_n_values_per_kernel(tiny_reports: dict[str, Any]) -> None:
    cluster, qat = stage_records(tiny_reports["cluster-qat-int8"])
    assert set(cluster["unique_values"]) == {"conv1", "conv2", "conv3", "fc", "logits"}
    assert max(cluster["unique_values"].values()) <= 16
    assert qat["scheme"] == "cluster-preserving"
    weights = tiny_reports["cluster-qat-int8"]["stages"]["convert"]["weights"]
    assert all(weights[name]["unique_per_channel_max"] <= 16 for name in cluster["unique_values"])


def test_distillation_reports_teacher_student_and_scratch(tiny_reports: dict[str, Any]) -> None:
    distill, prune, qat = stage_records(tiny_reports["distill-prune-qat-int8"])
    assert distill["param_ratio"] == round(distill["student_params"] / distill["teacher_params"], 4) < 0.1
    report = tiny_reports["distill-prune-qat-int8"]
    # the teacher is the trained model, the float reference; the student trained alone (one epoch) learns too
    assert (
        distill["teacher_accuracy"]
        == report["stages"]["train"]["test_accuracy"]
        == report["stages"]["evaluate"]["float"]
    )
    assert distill["teacher_accuracy"] > 0.5 and distill["scratch_accuracy"] > 0.5
    assert prune["params"] == qat["params"] == distill["student_params"]  # later stages work on the student


def test_mirrored_strategy_runs_the_same_stages(tmp_path: Path) -> None:
    path = tiny_copy("prune-qat-int8", tmp_path, limit=300)
    path.write_text(path.read_text().replace("seed = 0", 'seed = 0\nstrategy = "mirrored"', 1))
    report = run_recipe(path, tmp_path / "work")
    assert [s["kind"] for s in stage_records(report)] == ["prune", "qat"]
    weights = pruned_weights(report)
    assert set(weights) == {"conv2", "conv3", "fc", "logits"}
    assert all(w["sparsity"] >= 0.79 for w in weights.values()), weights


def test_the_keras3_recipe_bridges_its_builders_model(tmp_path: Path) -> None:
    """The builder returns a Keras 3 model; the train stage bridges it and proves the rebuild (the
    bridged model's pruning and QAT are tests/integration/test_keras3_pipeline.py's)."""
    path = tiny_copy("keras3-prune-qat-int8", tmp_path, limit=400)
    result = invoke("--json", "train", str(path), "--workdir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    train = json.loads(result.stdout)["train"]
    source = train["source"]
    assert train["keras"] == 2 and source["kind"] == "builder" and source["saved_by"] == "keras3"
    assert source["keras_version"].startswith("3.") and source["bridge"]["bridged"] is True
    assert source["bridge"]["max_abs_diff"] <= 1e-5 and source["bridge"]["samples"] == 100
