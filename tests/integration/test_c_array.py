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

from edgepack.bundle.golden_c import c_double, golden_c_files, read_c_arrays
from edgepack.validate.golden import GOLDEN_FILE, read_golden

CXX = shutil.which("g++") or shutil.which("c++")
CC = shutil.which("gcc") or shutil.which("cc")
TFLM_HEADER = "tensorflow/lite/micro/micro_interpreter.h"

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
    assert formats["files"] == [
        "c/model_data.cc",
        "c/model_data.h",
        "c/model_golden.c",
        "c/model_golden.h",
        "c/model_selftest.cc",
    ]
    listed = {a["path"] for a in manifest["artifacts"]}
    assert set(formats["files"]) <= listed
    golden = read_golden((bundle / GOLDEN_FILE).read_bytes())
    assert_c_arrays_equal(golden, (bundle / "c" / "model_golden.c").read_text())
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


def assert_c_arrays_equal(golden: dict[str, Any], source: str) -> None:
    """model_golden.c's arrays read back equal golden.npz's: every input byte, every expected value and
    tolerance exactly (the floats are hex literals)."""
    arrays = read_c_arrays(source)
    inputs = sorted(n for n in golden if n.startswith("input_"))
    outputs = sorted(n for n in golden if n.startswith("output_") and n != "output_names")
    assert inputs and outputs
    for i, name in enumerate(inputs):
        assert bytes(int(v, 16) for v in arrays[f"model_golden_input_{i}"]) == golden[name].tobytes()
    for j, name in enumerate(outputs):
        values = [c_double(v) for v in arrays[f"model_golden_output_{j}"]]
        assert len(values) == golden[name].size and values == golden[name].astype(float).ravel().tolist()
    assert [c_double(v) for v in arrays["model_golden_atol"]] == golden["atol"].tolist()
    assert [c_double(v) for v in arrays["model_golden_rtol"]] == golden["rtol"].tolist()


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model_golden.h"

int main(int argc, char** argv) {  /* check FILE...: one file per invoke and output, invoke-major */
  static unsigned char data[1 << 20];
  int arg = 1;
  for (int k = 0; k < MODEL_GOLDEN_INVOKES; ++k) {
    for (int j = 0; j < MODEL_GOLDEN_OUTPUTS; ++j) {
      if (arg >= argc) return 9;
      FILE* in = fopen(argv[arg++], "rb");
      size_t bytes = fread(data, 1, sizeof data, in);
      fclose(in);
      ModelGoldenMismatch m;
      int rc = model_golden_compare(k, j, data, bytes, &m);
      if (rc != MODEL_GOLDEN_OK) {
        printf("rc %d invoke %d output %d element %ld\n", rc, m.invoke, m.output, m.element);
        return 0;
      }
    }
  }
  printf("ok\n");
  return 0;
}
"""


@pytest.mark.skipif(CC is None, reason="no C compiler (gcc) on this machine")
def test_the_c_comparison_passes_tflm_outputs_of_the_golden_inputs(default_run: dict[str, Any], tmp_path: Path) -> None:
    """The default bundle's golden vectors as C, compiled with the host C compiler: TFLM's own outputs for the
    golden inputs (its Python interpreter, the bytes as the tensors hold them) pass the comparison; the same
    outputs with one element moved past its tolerance fail naming the invoke, output and element."""
    from tflite_micro.python.tflite_micro import runtime

    assert CC is not None
    golden = read_golden((default_run["bundle"] / GOLDEN_FILE).read_bytes())
    for path, text in golden_c_files(golden).items():
        (tmp_path / Path(path).name).write_text(text)
    (tmp_path / "main.c").write_text(HARNESS)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    sources = [str(tmp_path / "main.c"), str(tmp_path / "model_golden.c")]
    subprocess.run([CC, *flags, "-o", str(tmp_path / "check"), *sources, "-lm"], check=True, timeout=120)
    interpreter = runtime.Interpreter.from_bytes((default_run["bundle"] / "model.tflite").read_bytes())
    invokes = int(golden["invokes"])
    got: list[Any] = []
    for k in range(invokes):
        rows = len(golden["input_0"]) // invokes
        interpreter.set_input(golden["input_0"][k * rows : (k + 1) * rows], 0)
        interpreter.invoke()
        got.append(interpreter.get_output(0).copy())
    assert got[0].dtype == golden["output_0"].dtype  # the tensor's type: what the C comparison reads

    def check(outputs: list[Any]) -> str:
        files = []
        for k, out in enumerate(outputs):
            files.append(tmp_path / f"out_{k}.bin")
            files[-1].write_bytes(out.tobytes())
        run = subprocess.run([str(tmp_path / "check"), *map(str, files)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout.strip()

    assert check(got) == "ok"
    expected = golden["output_0"][2 * len(got[2]) : 3 * len(got[2])].astype(int).ravel()
    moved = [g.copy() for g in got]
    flat = moved[2].reshape(-1)
    step = int(golden["atol"][0]) + 1
    flat[3] = expected[3] + step if expected[3] + step <= 127 else expected[3] - step  # just past atol (int8)
    assert check(moved) == "rc 1 invoke 2 output 0 element 3"


def tflm_includes() -> list[Path]:
    """Include folders holding TFLM's headers: $TFLM_INCLUDE (os.pathsep-separated), else the tflite-micro
    package's own folder where it ships them (its wheels ship none)."""
    import importlib.util

    given = [Path(p) for p in os.environ.get("TFLM_INCLUDE", "").split(os.pathsep) if p]
    spec = importlib.util.find_spec("tflite_micro")
    if spec is not None and spec.submodule_search_locations:
        given += [Path(p).parent for p in spec.submodule_search_locations]
    return given if any((p / TFLM_HEADER).is_file() for p in given) else []


@pytest.mark.skipif(
    CXX is None or not tflm_includes(),
    reason=f"no TFLM headers ({TFLM_HEADER}): the tflite-micro wheel ships none; set TFLM_INCLUDE to a TFLM "
    "checkout and its third_party include folders (flatbuffers, gemmlowp, ruy)",
)
def test_the_selftest_compiles_against_tflm_headers(default_run: dict[str, Any], tmp_path: Path) -> None:
    assert CXX is not None
    golden = read_golden((default_run["bundle"] / GOLDEN_FILE).read_bytes())
    for path, text in golden_c_files(golden).items():
        (tmp_path / Path(path).name).write_text(text)
    includes = [f"-I{p}" for p in tflm_includes()]
    command = [CXX, "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", *includes, str(tmp_path / "model_selftest.cc")]
    subprocess.run(command, check=True, timeout=300)
