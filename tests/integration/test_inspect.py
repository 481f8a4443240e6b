"""`edgepack inspect`: MACs, hand-checked activation memory, float islands, any file refused cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import fast_tflite, invoke, work_copy


def inspect_json(path: Path, *extra: str) -> dict[str, Any]:
    result = invoke("--json", "inspect", str(path), *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small models converted with the real TFLite converter (one TensorFlow import for the module)."""
    from edgepack.models.tf import load

    mods = load()
    tf, keras = mods.tf, mods.keras

    folder = tmp_path_factory.mktemp("inspect")
    keras.utils.set_random_seed(0)

    def save(model: Any, name: str, int8: bool = False, allow_float: bool = False) -> Path:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if int8:
            shape = (1, *model.input_shape[1:])
            rng = np.random.default_rng(0)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([rng.random(shape, dtype=np.float32)] for _ in range(8))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
                [tf.lite.OpsSet.TFLITE_BUILTINS] if allow_float else []
            )
        path = folder / f"{name}.tflite"
        path.write_bytes(converter.convert())
        return path

    inp = keras.Input((8, 8, 1))
    c1 = keras.layers.Conv2D(4, 3, padding="same")(inp)
    c2 = keras.layers.Conv2D(4, 3, padding="same")(c1)
    residual = keras.Model(inp, keras.layers.Add()([c1, c2]))

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Lambda(lambda t: tf.math.sin(t))(x)  # SIN has no int8 kernel: stays float
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    island = keras.Model(inp, x)

    mobilenet = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None)
    return {
        "residual": save(residual, "residual"),
        "island": save(island, "island", int8=True, allow_float=True),
        "mobilenet": fast_tflite(mobilenet, folder / "mobilenetv2_224.tflite", int8=False),
    }


@pytest.mark.slow
def test_mobilenetv2_224_is_300_million_macs(built: dict[str, Path]) -> None:
    report = inspect_json(built["mobilenet"], "--no-runtime")
    assert abs(report["macs"] - 300e6) / 300e6 < 0.01, report["macs"]
    assert report["params"] == pytest.approx(3.5e6, rel=0.01)  # 3,538,984 in Keras, less BN folded away
    assert report["histogram"]["CONV_2D"] == 35 and report["histogram"]["DEPTHWISE_CONV_2D"] == 17
    assert sum(report["histogram"].values()) == report["ops"] == len(report["operators"])
    assert report["compute"] == "float" and report["float_ops"] == []
    first = report["operators"][0]  # 224x224x3 -> 112x112x32, 3x3 kernel: 112*112*32 * 3*3*3 MACs
    assert first["op"] == "CONV_2D" and first["macs"] == 112 * 112 * 32 * 27
    assert first["options"] == {"stride": "2x2", "padding": "SAME", "activation": "RELU6"}


@pytest.mark.slow
def test_activation_memory_matches_a_hand_count(built: dict[str, Path]) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import activation_peak

    model = read_model(built["residual"].read_bytes())
    assert [op.op_name for op in model.operators] == ["CONV_2D", "CONV_2D", "ADD"]
    # float32, batch 1: input 8x8x1 = 256 B (op 0 only); c1 8x8x4 = 1024 B, read by conv 2 and add: ops 0..2;
    # c2 1024 B: ops 1..2; the output 1024 B: op 2. Live: op 0 256+1024, op 1 1024+1024, op 2 3 x 1024.
    assert activation_peak(model) == (3 * 1024, 2)
    report = inspect_json(built["residual"], "--no-runtime")
    assert report["activation_memory"] == {"peak_bytes": 3072, "at_op": 2, "at": "ADD"}
    assert report["macs"] == 8 * 8 * 4 * 9 * 1 + 8 * 8 * 4 * 9 * 4


@pytest.mark.slow
def test_float_ops_in_an_integer_model_are_named(built: dict[str, Path]) -> None:
    report = inspect_json(built["island"])
    assert report["compute"] == "integer"
    assert [f["op"] for f in report["float_ops"]] == ["SIN"]
    assert report["inputs"][0]["dtype"] == "float32"  # float I/O: the converter's default
    assert report["histogram"]["QUANTIZE"] >= 1 and report["histogram"]["DEQUANTIZE"] >= 1
    assert report["xnnpack"]["partitions"] >= 1


def test_the_digits_model_as_the_pipeline_wrote_it(default_run: dict[str, Any]) -> None:
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import analyze

    model = default_run["bundle"] / "model.tflite"
    report = inspect_json(model)
    assert report["compute"] == "integer" and report["float_ops"] == []
    assert report["inputs"][0]["dtype"] == "int8" and report["inputs"][0]["quantization"]["scale"] > 0
    assert report["xnnpack"] == {"partitions": 1}
    graph = analyze(read_model(model.read_bytes()))
    assert report["macs"] == graph.total_macs > 0 and report["params"] == graph.total_params
    text = invoke("inspect", str(model))
    assert text.exit_code == 0 and "peak activation memory" in text.stdout and "FULLY_CONNECTED" in text.stdout


def _bad_files(folder: Path, good: bytes) -> dict[str, bytes]:
    """At least 20 files that are not TFLite models: empty, short, random, truncated, other formats."""
    rng = np.random.default_rng(7)
    files = {
        "empty": b"",
        "one-byte": b"\x00",
        "seven-bytes": b"TFL3TFL",
        "text": b"hello, not a model\n",
        "json": b'{"model": "mobilenet"}',
        "png": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "zip": b"PK\x03\x04" + bytes(100),
        "header-only": b"\x10\x00\x00\x00TFL3",
        "root-past-end": b"\xff\xff\x00\x00TFL3" + bytes(32),
        "header-then-zeros": b"\x10\x00\x00\x00TFL3" + bytes(512),
        "header-then-noise": b"\x1c\x00\x00\x00TFL3" + rng.bytes(2048),
    }
    for size in (8, 64, 1024, 65536):
        files[f"random-{size}"] = rng.bytes(size)
    for fraction in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9):
        files[f"truncated-{int(fraction * 100)}pct"] = good[: int(len(good) * fraction)]
    flipped = bytearray(good)
    flipped[4:8] = b"XXXX"
    files["wrong-identifier"] = bytes(flipped)
    return files


def test_files_that_are_not_models_are_refused_cleanly(default_run: dict[str, Any], tmp_path: Path) -> None:
    files = _bad_files(tmp_path, (default_run["bundle"] / "model.tflite").read_bytes())
    assert len(files) >= 20
    for name, data in files.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        result = invoke("inspect", str(path))
        assert result.exit_code == 2, (name, result.output)
        assert str(path) in result.stderr and "Traceback" not in result.output, name
        assert "not a valid TFLite model" in result.stderr, (name, result.stderr)
    for missing in (tmp_path / "nowhere.tflite", tmp_path):
        result = invoke("inspect", str(missing))
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    # `validate --model` and `bundle --model` refuse them the same way, before anything is trained.
    work = tmp_path / "work"
    for command in ("validate", "bundle"):
        for name in files:
            path = tmp_path / f"{name}.tflite"
            result = invoke(command, "--model", str(path), "--workdir", str(work))
            assert result.exit_code == 2, (command, name, result.output)
            assert "not a valid TFLite model" in result.stderr and "Traceback" not in result.output, (command, name)
    assert not (work / "digits" / "train").exists() and not (work / "digits" / "bundle").exists()


def test_bundle_takes_a_model_converted_elsewhere(default_run: dict[str, Any], tmp_path: Path) -> None:

    work = work_copy(default_run, tmp_path)
    given = tmp_path / "elsewhere.tflite"
    given.write_bytes((default_run["bundle"] / "model.tflite").read_bytes())
    result = invoke("--json", "bundle", "--model", str(given), "--workdir", str(work))
    assert result.exit_code == 0, result.output
    out = work / "digits" / "bundle-elsewhere"  # the recipe's own bundle is left alone
    assert json.loads(result.stdout)["bundle"] == [str(out)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "model.tflite").read_bytes() == given.read_bytes()  # its metadata re-embedded: the same bytes
    assert manifest["model"]["mode"] == "int8" and manifest["model"]["io"] == "int8"
    assert manifest["quantization_error"]["why"].startswith("a model given with --model")
    measured = json.loads((out / "measurements.json").read_text())
    assert manifest["metrics"]["accuracy"]["tflite"] > 0.5 and measured["validation"]["host"]["parity"]["ok"]


@pytest.mark.slow
def test_validate_takes_any_tflite_and_devices_from_the_command_line(built: dict[str, Path], tmp_path: Path) -> None:
    result = invoke(
        "--json",
        "validate",
        "--model",
        str(built["residual"]),
        "--device",
        "host",
        "--device",
        "host-1core",
        "--workdir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert list(records) == ["host", "host-1core"]
    assert records["host-1core"]["parity"] == {
        "ok": True,
        "identical": True,
        "max_abs_diff": 0.0,
        "outputs": [{"output": 0, "ok": True, "identical": True, "max_abs_diff": 0.0}],
    }
    assert records["host"]["latency_ms"]["runs"] > 0
    assert not (tmp_path / "digits" / "train").exists()  # nothing trained or converted


def test_inspect_never_imports_tensorflow(default_run: dict[str, Any]) -> None:
    code = (
        "import sys; from edgepack.cli.app import app; from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, ['--json', 'inspect', {str(default_run['bundle'] / 'model.tflite')!r}]); "
        "assert r.exit_code == 0, r.output; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def test_bundle_refuses_a_model_that_does_not_fit_the_recipes_data(built: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("bundle", "--model", str(built["mobilenet"]), "--workdir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "input is 1x224x224x3; the recipe's samples are 8x8x1" in result.stderr
    assert not (tmp_path / "digits" / "train").exists()
