"""Every shipped recipe runs end to end (tiny epochs), and each reports what its stages achieved."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, invoke

RECIPES = REPO / "recipes"


def tiny_copy(name: str, folder: Path, limit: int | None = None) -> Path:
    """The shipped recipe `name` with every stage cut to one epoch (and the data to `limit` images)."""
    text = (RECIPES / f"{name}.toml").read_text()
    text = re.sub(r"(?m)^epochs = \d+", "epochs = 1", text)
    text = re.sub(r"(?m)^calibration_samples = \d+", "calibration_samples = 32", text)
    text = re.sub(r"(?m)^runs = \d+", "runs = 5", text)
    text = re.sub(r"(?m)^\[budgets\][^\[]*", "", text)  # tiny epochs miss real budgets by design
    if limit:
        text = text.replace('kind = "digits"', f'kind = "digits"\nlimit = {limit}', 1)
    text += "\n[validate]\nwarmup = 1\nruns = 5\n" if "[validate]" not in text else ""
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def run_recipe(path: Path, work: Path) -> dict[str, Any]:
    result = invoke("--json", "run", str(path), "--workdir", str(work), "--out", str(work / "bundle"))
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def stage_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report["stages"]["optimize"]["stages"]


SHIPPED = ["ptq-int8", "qat-int8", "prune-qat-int8", "prune24-qat-int8", "cluster-qat-int8",
           "distill-prune-qat-int8"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_runs_end_to_end(name: str, tmp_path: Path) -> None:
    report = run_recipe(tiny_copy(name, tmp_path), tmp_path / "work")
    kinds = [s["kind"] for s in stage_records(report)]
    assert kinds == re.findall(r'(?m)^kind = "(prune|qat|cluster|distill)"', (RECIPES / f"{name}.toml").read_text())
    evaluate = report["stages"]["evaluate"]
    assert evaluate["tflite"] > 0.5, evaluate  # one epoch each, yet far above chance (0.1)
    manifest = json.loads((tmp_path / "work" / "bundle" / "manifest.json").read_text())
    assert [s["kind"] for s in manifest["optimization"]["stages"]] == kinds
    for record in stage_records(report):
        assert {"test_accuracy", "params", "weights_gzip_bytes"} <= set(record)
