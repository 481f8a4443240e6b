"""golden.npz as C (`bundle/golden_c.py`) and for Android (`bundle/android_test.py`): the arrays read back equal
to the vectors; the plain-C comparison, compiled with the host C compiler, passes the expected outputs and names
the output and element of one beyond; the Java test compiles against stubs of the APIs it calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgepack.bundle.golden_c import c_double, golden_c_files, read_c_arrays, unsupported_outputs

CC = shutil.which("gcc") or shutil.which("cc")
CXX = shutil.which("g++") or shutil.which("c++")

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model_golden.h"

int main(int argc, char** argv) {  /* check INVOKE OUTPUT FILE: FILE holds the output's bytes */
  static unsigned char data[1 << 16];
  FILE* in = fopen(argv[3], "rb");
  size_t bytes = fread(data, 1, sizeof data, in);
  fclose(in);
  ModelGoldenMismatch m = {-9, -9, -9, 0.0, 0.0};
  int rc = model_golden_compare(atoi(argv[1]), atoi(argv[2]), data, bytes, &m);
  printf("%d %d %d %ld\n", rc, m.invoke, m.output, m.element);
  (void)argc;
  return 0;
}
"""


def vectors() -> dict[str, np.ndarray]:
    """golden.npz's arrays for a made-up model with an int8 and a float32 input and output, 4 invokes."""
    rng = np.random.default_rng(3)
    return {
        "input_0": rng.integers(-128, 128, (4, 2, 3), dtype=np.int8),
        "input_1": rng.standard_normal((8, 5)).astype(np.float32),  # a batch of 2 per invoke
        "output_0": rng.integers(-128, 128, (4, 10), dtype=np.int8),
        "output_1": (rng.standard_normal((4, 3)) * 1e3).astype(np.float32),
        "atol": np.asarray([4.0, 1e-5]),
        "rtol": np.asarray([0.0, 1e-4]),
        "output_names": np.asarray(["StatefulPartitionedCall:0", "scores"]),
        "invokes": np.asarray(4, dtype=np.int64),
    }


def test_the_c_arrays_read_back_equal_to_the_vectors() -> None:
    golden = vectors()
    files = golden_c_files(golden)
    assert sorted(files) == ["c/model_golden.c", "c/model_golden.h", "c/model_selftest.cc"]
    assert golden_c_files(golden) == files  # deterministic
    arrays = read_c_arrays(files["c/model_golden.c"])
    for i in (0, 1):
        assert bytes(int(v, 16) for v in arrays[f"model_golden_input_{i}"]) == golden[f"input_{i}"].tobytes()
    for j in (0, 1):
        values = np.asarray([c_double(v) for v in arrays[f"model_golden_output_{j}"]])
        assert values.size == golden[f"output_{j}"].size
        assert np.array_equal(values, golden[f"output_{j}"].astype(np.float64).ravel())  # exact, not close
    assert [c_double(v) for v in arrays["model_golden_atol"]] == list(golden["atol"])
    assert [c_double(v) for v in arrays["model_golden_rtol"]] == list(golden["rtol"])
    assert arrays["model_golden_input_bytes"] == ["6u", "40u"] and arrays["model_golden_output_count"] == ["10u", "3u"]
    assert arrays["model_golden_output_type"] == ["MODEL_GOLDEN_INT8", "MODEL_GOLDEN_FLOAT32"]
    header = files["c/model_golden.h"]
    assert "#define MODEL_GOLDEN_INVOKES 4" in header and "#define MODEL_GOLDEN_OUTPUTS 2" in header
    assert "int model_selftest(tflite::MicroInterpreter& interpreter" in header
    selftest = files["c/model_selftest.cc"]
    assert "interpreter.Invoke()" in selftest and "model_golden_compare(k, j," in selftest


def test_a_type_the_comparison_does_not_read_is_refused() -> None:
    golden = {**vectors(), "output_1": np.zeros((4, 3), dtype=np.float16)}
    assert unsupported_outputs(golden) == ["output_1: float16"]
    with pytest.raises(ValueError, match="output_1: float16"):
        golden_c_files(golden)


@pytest.fixture(scope="module")
def check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The comparison of vectors() compiled with the host C compiler (C99, warnings as errors) and a harness."""
    if CC is None:
        pytest.skip("no C compiler (gcc) on this machine")
    folder = tmp_path_factory.mktemp("golden-c")
    for path, text in golden_c_files(vectors()).items():
        (folder / Path(path).name).write_text(text)
    (folder / "main.c").write_text(HARNESS)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    sources = [str(folder / "main.c"), str(folder / "model_golden.c")]
    subprocess.run([CC, *flags, "-o", str(folder / "check"), *sources, "-lm"], check=True, timeout=120)
    return folder / "check"


def compare(check: Path, invoke: int, output: int, data: bytes, tmp_path: Path) -> list[int]:
    (tmp_path / "out.bin").write_bytes(data)
    run = subprocess.run([str(check), str(invoke), str(output), str(tmp_path / "out.bin")], capture_output=True)
    assert run.returncode == 0, run.stderr
    return [int(v) for v in run.stdout.split()]


def test_the_compiled_comparison_passes_the_expected_outputs(check: Path, tmp_path: Path) -> None:
    golden = vectors()
    for j in (0, 1):
        for k in range(4):
            expected = golden[f"output_{j}"][k]
            assert compare(check, k, j, expected.tobytes(), tmp_path)[0] == 0, (j, k)
    within = golden["output_0"][2].astype(np.int16)
    within[5] += 4 if within[5] < 0 else -4  # 4 LSB: the int8 output's atol
    assert compare(check, 2, 0, within.astype(np.int8).tobytes(), tmp_path)[0] == 0


def test_the_compiled_comparison_names_the_first_element_beyond(check: Path, tmp_path: Path) -> None:
    golden = vectors()
    beyond = golden["output_0"][1].astype(np.int16)
    beyond[7] += 5 if beyond[7] < 0 else -5  # one step past the tolerance
    beyond[9] += 50 if beyond[9] < 0 else -50  # later: not the first
    assert compare(check, 1, 0, beyond.astype(np.int8).tobytes(), tmp_path) == [1, 1, 0, 7]
    floats = golden["output_1"][3].copy()
    floats[2] *= np.float32(1 + 1e-3)  # a relative error 10x the rtol
    assert compare(check, 3, 1, floats.tobytes(), tmp_path) == [1, 3, 1, 2]
    floats = golden["output_1"][0].copy()
    floats[1] = np.nan
    assert compare(check, 0, 1, floats.tobytes(), tmp_path) == [1, 0, 1, 1]  # a NaN is beyond


def test_the_compiled_comparison_refuses_a_wrong_size_or_index(check: Path, tmp_path: Path) -> None:
    golden = vectors()
    assert compare(check, 0, 1, golden["output_1"][0][:2].tobytes(), tmp_path) == [2, 0, 1, -1]
    assert compare(check, 4, 0, golden["output_0"][0].tobytes(), tmp_path) == [3, 4, 0, -1]
    assert compare(check, 0, 2, golden["output_0"][0].tobytes(), tmp_path) == [3, 0, 2, -1]


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++) on this machine")
def test_the_golden_source_is_valid_cpp_too(tmp_path: Path) -> None:
    for path, text in golden_c_files(vectors()).items():
        (tmp_path / Path(path).name).write_text(text)
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-x", "c++", "-c"]
    assert CXX is not None
    subprocess.run([CXX, *flags, "-o", str(tmp_path / "golden.o"), str(tmp_path / "model_golden.c")], check=True)
    assert (tmp_path / "golden.o").stat().st_size > 0


# The Android side (`bundle/android_test.py`): no Android SDK here, so the test source is compiled with javac
# against stubs of the few Android, androidx.test, org.json, JUnit and LiteRT signatures it uses, and its data
# is checked against the vectors; it is not run (no device: docs/manifest.md says so).
JAVAC = shutil.which("javac")
STUBS = {
    "android/content/Context.java": "package android.content; public class Context {"
    " public android.content.res.AssetManager getAssets() { return null; } }",
    "android/content/res/AssetManager.java": "package android.content.res; public class AssetManager {"
    " public java.io.InputStream open(String p) throws java.io.IOException { return null; }"
    " public AssetFileDescriptor openFd(String p) throws java.io.IOException { return null; } }",
    "android/content/res/AssetFileDescriptor.java": "package android.content.res;"
    " public class AssetFileDescriptor implements java.io.Closeable {"
    " public java.io.FileDescriptor getFileDescriptor() { return null; } public long getStartOffset() { return 0; }"
    " public long getDeclaredLength() { return 0; } public void close() {} }",
    "android/app/Instrumentation.java": "package android.app; public class Instrumentation {"
    " public android.content.Context getContext() { return null; }"
    " public android.content.Context getTargetContext() { return null; } }",
    "androidx/test/platform/app/InstrumentationRegistry.java": "package androidx.test.platform.app;"
    " public class InstrumentationRegistry { public static android.app.Instrumentation getInstrumentation()"
    " { return null; } }",
    "androidx/test/ext/junit/runners/AndroidJUnit4.java": "package androidx.test.ext.junit.runners;"
    " public class AndroidJUnit4 {}",
    "org/json/JSONObject.java": "package org.json; public class JSONObject { public JSONObject(String s)"
    " throws JSONException {} public int getInt(String k) throws JSONException { return 0; }"
    " public double getDouble(String k) throws JSONException { return 0; }"
    " public String getString(String k) throws JSONException { return null; }"
    " public JSONArray getJSONArray(String k) throws JSONException { return null; } }",
    "org/json/JSONArray.java": "package org.json; public class JSONArray { public int length() { return 0; }"
    " public JSONObject getJSONObject(int i) throws JSONException { return null; } }",
    "org/json/JSONException.java": "package org.json; public class JSONException extends Exception { private static final long serialVersionUID = 1L; }",
    "org/junit/Test.java": "package org.junit; public @interface Test {}",
    "org/junit/Assert.java": "package org.junit; public class Assert {"
    " public static void assertEquals(String m, long a, long b) {} public static void fail(String m) {} }",
    "org/junit/runner/RunWith.java": "package org.junit.runner; public @interface RunWith { Class<?> value(); }",
    "org/tensorflow/lite/Tensor.java": "package org.tensorflow.lite; public class Tensor {"
    " public int numBytes() { return 0; } }",
    "org/tensorflow/lite/Interpreter.java": "package org.tensorflow.lite; public class Interpreter"
    " implements AutoCloseable { public Interpreter(java.nio.ByteBuffer model) {}"
    " public int getInputTensorCount() { return 0; } public int getOutputTensorCount() { return 0; }"
    " public Tensor getOutputTensor(int i) { return null; }"
    " public void runForMultipleInputsOutputs(Object[] in, java.util.Map<Integer, Object> out) {}"
    " public void close() {} }",
}


def test_the_android_test_data_equals_the_vectors() -> None:
    import json

    from edgepack.bundle.android_test import ASSETS, TEST, android_test_files

    golden = vectors()
    files = android_test_files("digits.tflite", golden)
    assert android_test_files("digits.tflite", golden) == files  # deterministic
    assert sorted(files) == sorted(
        [TEST, f"{ASSETS}/golden.json"] + [f"{ASSETS}/{n}.bin" for n in ("input_0", "input_1", "output_0", "output_1")]
    )
    described = json.loads(files[f"{ASSETS}/golden.json"])
    assert described["invokes"] == 4
    for kind in ("inputs", "outputs"):
        for entry in described[kind]:
            name = entry["file"].removesuffix(".bin")
            data = files[f"{ASSETS}/{entry['file']}"]
            assert isinstance(data, bytes)
            array = np.frombuffer(data, dtype=np.dtype(entry["dtype"]).newbyteorder("<")).reshape(entry["shape"])
            assert array.dtype == golden[name].dtype and np.array_equal(array, golden[name])
    assert [(o["name"], o["atol"], o["rtol"]) for o in described["outputs"]] == [
        (str(golden["output_names"][j]), float(golden["atol"][j]), float(golden["rtol"][j])) for j in (0, 1)
    ]
    source = files[TEST]
    assert isinstance(source, str)
    assert 'private static final String MODEL = "digits.tflite";' in source
    assert "import org.tensorflow.lite.Interpreter;" in source and "@RunWith(AndroidJUnit4.class)" in source
    assert "runForMultipleInputsOutputs" in source and "<= atol + rtol * Math.abs(want)" in source
    assert '", element " + e + ": expected "' in source  # a failure names the invoke, output and element


@pytest.mark.skipif(JAVAC is None, reason="no javac on this machine")
def test_the_android_test_compiles_against_the_apis_it_uses(tmp_path: Path) -> None:
    from edgepack.bundle.android_test import TEST, android_test_files

    assert JAVAC is not None
    sources = []
    for path, text in {**STUBS, "GoldenVectorsTest.java": android_test_files("m.tflite", vectors())[TEST]}.items():
        sources.append(tmp_path / "src" / path)
        sources[-1].parent.mkdir(parents=True, exist_ok=True)
        sources[-1].write_text(str(text))
    run = subprocess.run(
        [JAVAC, "-Xlint:all", "-Werror", "-d", str(tmp_path / "classes"), *map(str, sources)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "classes" / "edgepack" / "golden" / "GoldenVectorsTest.class").is_file()


def test_an_output_type_the_android_test_does_not_read_is_refused() -> None:
    from edgepack.bundle.android_test import android_test_files, unsupported_arrays

    golden = {**vectors(), "output_0": np.zeros((4, 10), dtype=np.float64)}
    assert unsupported_arrays(golden) == ["output_0: float64"]
    with pytest.raises(ValueError, match="output_0: float64"):
        android_test_files("m.tflite", golden)
