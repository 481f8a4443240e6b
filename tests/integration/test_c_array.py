"""The c-array bundle format: model_data.h/.cc for TensorFlow Lite Micro, compiled with the system C++ compiler."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, invoke, run_cli, work_copy

CXX = shutil.which("g++") or shutil.which("c++")

MAIN = r"""
#include <cstdint>
#include <cstdio>
#include "model_data.h"

struct Recorder {  // stands in for tflite::MicroMutableOpResolver: same method names
%METHODS%
};

int main(int argc, char** argv) {
  FILE* out = std::fopen(argv[1], "wb");
  std::fwrite(g_model_data, 1, g_model_data_len, out);
  std::fclose(out);
  Recorder resolver;
  model_data_register_ops(resolver);
  std::printf("len %u aligned %d arena %d ops %d\n", g_model_data_len,
              static_cast<int>(reinterpret_cast<std::uintptr_t>(g_model_data) % 16 == 0), kModelDataArenaSize,
              kModelDataOpCount);
  return 0;
}
"""


def test_resolver_methods_follow_tflm_names() -> None:
    from edgepack.analyze.tflm_ops import resolver_method

    ops = (
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "RELU6",
        "RESIZE_NEAREST_NEIGHBOR",
        "BATCH_MATMUL",
        "PADV2",
        "CUMSUM",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
    )
    assert [resolver_method(op) for op in ops] == [
        "AddConv2D",
        "AddDepthwiseConv2D",
        "AddFullyConnected",
        "AddMaxPool2D",
        "AddAveragePool2D",
        "AddRelu6",
        "AddResizeNearestNeighbor",
        "AddBatchMatMul",
        "AddPadV2",
        "AddCumSum",
        "AddUnidirectionalSequenceLSTM",
    ]
    assert resolver_method("BUILTIN_999") is None  # no method: listed as unsupported, never a call that won't compile


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++) on this machine")
def test_the_c_array_compiles_and_equals_the_model(default_run: dict[str, Any], tmp_path: Path) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import activation_peak
    from edgepack.bundle.c_array import ARENA_EXTRA, ARENA_MARGIN, ARENA_PER_CHANNEL, ARENA_PER_TENSOR, c_sources

    model = (default_run["bundle"] / "model.tflite").read_bytes()
    sources = c_sources(model)
    (tmp_path / "model_data.h").write_text(sources.header)
    (tmp_path / "model_data.cc").write_text(sources.source)
    methods = "".join(f'  int {call}() {{ std::printf("{call}\\n"); return 0; }}\n' for call in sources.resolver_calls)
    (tmp_path / "main.cc").write_text(MAIN.replace("%METHODS%", methods))
    subprocess.run(
        [
            CXX,
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-o",
            str(tmp_path / "check"),
            str(tmp_path / "main.cc"),
            str(tmp_path / "model_data.cc"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    run = subprocess.run(
        [str(tmp_path / "check"), str(tmp_path / "copy.tflite")], capture_output=True, text=True, timeout=60, check=True
    )
    assert (tmp_path / "copy.tflite").read_bytes() == model  # byte for byte
    lines = run.stdout.splitlines()
    assert lines[:-1] == ["AddConv2D", "AddFullyConnected", "AddMaxPool2D", "AddReshape", "AddSoftmax"]
    info = read_model(model)
    peak, _ = activation_peak(info)
    channels = sum(
        info.tensors[op.outputs[0]].shape[-1] for op in info.operators if op.op_name in ("CONV_2D", "FULLY_CONNECTED")
    )  # the digits model has no depthwise conv
    estimate = (
        math.ceil(peak * (1 + ARENA_MARGIN))
        + ARENA_EXTRA
        + ARENA_PER_TENSOR * len(info.tensors)
        + ARENA_PER_CHANNEL * channels
    )
    arena = -(-estimate // 16) * 16  # rounded up to 16
    assert lines[-1] == f"len {len(model)} aligned 1 arena {arena} ops 5"
    assert f"{peak} bytes of activations" in sources.header and sources.arena_bytes == arena > peak
    assert sources.unsupported_ops == ()


def test_a_bundle_with_the_c_array_format(default_run: dict[str, Any], tmp_path: Path) -> None:
    work = work_copy(default_run, tmp_path)
    recipe = tmp_path / "digits.toml"
    text = (REPO / "recipes" / "digits.toml").read_text()
    recipe.write_text(
        text + '\n[bundle]\nformats = ["c-array"]\n'
        if "[bundle]" not in text
        else text.replace("[bundle]", '[bundle]\nformats = ["c-array"]')
    )
    proc = run_cli("--json", "bundle", str(recipe), "--workdir", str(work), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"][0])
    manifest = json.loads((bundle / "manifest.json").read_text())
    from edgepack.bundle.schema import schema_problems

    assert schema_problems(manifest) == []
    assert invoke("verify", str(bundle)).exit_code == 0  # the C sources are listed artifacts too
    formats = manifest["formats"]["c-array"]
    assert formats["files"] == ["c/model_data.cc", "c/model_data.h"]
    assert formats["resolver_ops"] == ["AddConv2D", "AddFullyConnected", "AddMaxPool2D", "AddReshape", "AddSoftmax"]
    header = (bundle / "c" / "model_data.h").read_text()
    assert f"kModelDataArenaSize = {formats['arena_bytes']};" in header
    assert "0x54, 0x46, 0x4c, 0x33" in (bundle / "c" / "model_data.cc").read_text()  # "TFL3"


def test_without_tflite_micro_the_c_array_keeps_the_estimate_and_says_so(
    default_run: dict[str, Any], tmp_path: Path
) -> None:
    work = work_copy(default_run, tmp_path)
    recipe = tmp_path / "digits.toml"
    recipe.write_text((REPO / "recipes" / "digits.toml").read_text() + '\n[bundle]\nformats = ["c-array"]\n')
    hidden = tmp_path / "hide" / "tflite_micro"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", "")])}
    proc = run_cli("bundle", str(recipe), "--workdir", str(work), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the arena is an estimate" in proc.stderr and "tflite-micro is not installed" in proc.stderr
    manifest = json.loads((work / "digits" / "bundle" / "manifest.json").read_text())
    entry = manifest["formats"]["c-array"]
    assert entry["arena"]["how"] == "estimate" and entry["arena_bytes"] == entry["arena"]["estimate_bytes"]
    assert "tflite-micro is not installed" in entry["arena"]["why"]
    header = (work / "digits" / "bundle" / "c" / "model_data.h").read_text()
    assert "Tensor arena, an estimate" in header and f"kModelDataArenaSize = {entry['arena_bytes']};" in header
