"""Accuracy-aware conversion: the per-layer quantization error report (TFLite's debugger)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

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


@pytest.mark.slow
def test_post_training_int8_reports_each_layers_error_worst_first(tmp_path: Path,
                                                                  default_run: dict[str, Any]) -> None:
    recipe = tmp_path / "ptq.toml"
    recipe.write_text(PTQ)
    result = invoke("--json", "convert", str(recipe), "--workdir", str(tmp_path / "work"))
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
