"""The shipped MobileNetV2 recipe end to end (tiny epochs and data): BN folded before per-tensor QAT, a full
int8 model that runs in LiteRT. A file of its own, the suite's longest test: it runs beside the other files,
not after the other shipped recipes (pytest-xdist hands out whole files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_copy

from integration.test_shipped_recipes import run_recipe, stage_records

pytestmark = pytest.mark.slow


def test_mobilenetv2_qat_int8_converts_and_runs_in_litert(tmp_path: Path) -> None:
    from edgepack.analyze.flatbuffer import read_model

    # 40 images: 30 train in one batch (one trace of the training step), 10 test; every stage one epoch
    report = run_recipe(tiny_copy("mobilenetv2-qat-int8", tmp_path, limit=40), tmp_path / "work")
    manifest = json.loads((tmp_path / "work" / "bundle-mobilenetv2-qat-int8" / "manifest.json").read_text())
    assert manifest["normalization"]["input_shape"] == [96, 96, 3]
    assert manifest["inputs"][0]["dtype"] == "int8" and manifest["inputs"][0]["shape"][1:] == [96, 96, 3]
    evaluate = report["stages"]["evaluate"]
    assert evaluate["test_samples"] == 10
    # one epoch on 30 images learns next to nothing; the figure is still a count of the 10 test images, the
    # manifest's, and the int8 model computes what the QAT model does (its outputs, not its accuracy)
    assert evaluate["tflite"] == manifest["metrics"]["accuracy"]["tflite"]
    assert round(evaluate["tflite"] * 10) == pytest.approx(evaluate["tflite"] * 10, abs=1e-9)
    assert manifest["metrics"]["fidelity"]["worst_sqnr_db"] > 20
    assert report["validation"]["host"]["latency_ms"]["p50"] > 0
    # per_channel = false: BN folded before QAT (52 conv/BN pairs), one scale per int8 kernel
    assert len(stage_records(report)[0]["folded_batchnorm"]) == 52
    info = read_model((tmp_path / "work" / "bundle-mobilenetv2-qat-int8" / "model.tflite").read_bytes())
    kernels = [t for t in info.tensors if t.data is not None and t.dtype == "int8"]
    assert len(kernels) == 53 and all(len(t.scales) == 1 for t in kernels)
    assert manifest["model"]["size_bytes"] < 500_000
