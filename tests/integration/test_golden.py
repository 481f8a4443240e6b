"""Golden vectors: the bundle's golden.npz (deterministic, listed and hashed) and `verify BUNDLE --on DEVICE`,
which runs them on a device and names the output and element that differ."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke, tiny_recipe

from edgepack.validate.golden import GOLDEN_FILE, GOLDEN_SAMPLES, npz_bytes, read_golden


@pytest.fixture()
def bundle(tiny_run: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_run["work"] / "tiny" / "bundle", copy)
    return copy


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The tiny recipe's model trained with another seed: another version of the same model (same tensors)."""
    folder = tmp_path_factory.mktemp("seed1")
    out = folder / "bundle"
    result = invoke(
        "--json", "run", str(tiny_recipe(folder, seed=1)), "--workdir", str(folder / "work"), "--out", str(out)
    )
    assert result.exit_code in (0, 3), result.output
    return (out / "model.tflite").read_bytes()


def test_the_bundle_carries_golden_vectors_listed_and_hashed(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    listed = {a["path"]: a for a in manifest["artifacts"]}
    data = (bundle / GOLDEN_FILE).read_bytes()
    assert listed[GOLDEN_FILE]["sha256"] == hashlib.sha256(data).hexdigest()
    golden = read_golden(data)
    assert int(golden["invokes"]) == GOLDEN_SAMPLES and golden["input_0"].shape[0] == GOLDEN_SAMPLES
    assert golden["output_0"].shape[0] == GOLDEN_SAMPLES
    assert golden["atol"].shape == golden["rtol"].shape == (1,)
    assert golden["atol"][0] > 0  # a quantized output: a quantization step, not an exact match
    assert npz_bytes(golden) == data  # written deterministically: the same arrays give the same bytes


@pytest.mark.parametrize("device", ["host", "tflm"])
def test_verify_on_a_device_passes_on_a_fresh_bundle(bundle: Path, device: str) -> None:
    result = invoke("--json", "verify", str(bundle), "--on", device)
    assert result.exit_code == 0, result.output
    golden = json.loads(result.stdout)["golden"]
    assert golden["ok"] and golden["samples"] == GOLDEN_SAMPLES and golden["device"] == device
    assert len(golden["outputs"]) == GOLDEN_SAMPLES and all(r["ok"] for r in golden["outputs"])


def swap_model(bundle: Path, model: bytes) -> None:
    """Put `model` in the bundle as if it had been written so: the manifest's hashes rewritten too (the hash
    check passes; the golden vectors are what tells)."""
    (bundle / "model.tflite").write_bytes(model)
    sha = hashlib.sha256(model).hexdigest()
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["model"]["sha256"] = sha
    for entry in manifest["artifacts"]:
        if entry["path"] == "model.tflite":
            entry.update(sha256=sha, size_bytes=len(model))
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (bundle / "manifest.sig").unlink(missing_ok=True)
    run = json.loads((bundle / "measurements.json").read_text())
    run["model_sha256"] = sha
    (bundle / "measurements.json").write_text(json.dumps(run, indent=2) + "\n")


@pytest.mark.parametrize("device", ["host", "tflm"])
def test_a_swapped_model_fails_naming_output_and_element(bundle: Path, other_model: bytes, device: str) -> None:
    swap_model(bundle, other_model)
    assert invoke("verify", str(bundle)).exit_code == 0  # the hashes agree: only the golden check can tell
    result = invoke("verify", str(bundle), "--on", device)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "golden vectors differ" in message and "output 0 (" in message and "element " in message, message
    assert "expected " in message and "got " in message and "Traceback" not in result.output
    report = json.loads(invoke("--json", "verify", str(bundle), "--on", device).stdout)
    bad = next(r for r in report["golden"]["outputs"] if not r["ok"])
    assert bad["output"] == 0 and isinstance(bad["index"], int) and bad["expected"] != bad["got"]


def test_a_bundle_without_golden_vectors_says_so(bundle: Path) -> None:
    (bundle / GOLDEN_FILE).unlink()
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["path"] != GOLDEN_FILE]
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (bundle / "manifest.sig").unlink(missing_ok=True)
    result = invoke("verify", str(bundle), "--on", "host")
    assert result.exit_code == 2 and "no golden.npz" in result.stderr, result.output


@pytest.mark.parametrize("device", ["ethos-u55-128", "nano33-ble-sense"])
def test_a_device_that_runs_nothing_is_refused_not_passed(bundle: Path, device: str) -> None:
    result = invoke("verify", str(bundle), "--on", device)
    assert result.exit_code == 2, result.output
    assert f"device '{device}'" in result.stderr and "no outputs to compare" in result.stderr, result.stderr


def test_the_c_array_and_android_formats_carry_the_golden_vectors(tiny_run: dict[str, Any], tmp_path: Path) -> None:
    """A bundle with both formats: model_golden.c's arrays and the Android test's assets read back equal to the
    bundle's own golden.npz, all listed in the manifest (the C comparison and the Java test are compiled and
    exercised in tests/unit/test_golden_c.py and test_c_array.py)."""
    from edgepack.bundle.android_test import ASSETS, TEST
    from edgepack.bundle.golden_c import c_double, read_c_arrays

    work = tmp_path / "work"
    shutil.copytree(tiny_run["work"], work, ignore=shutil.ignore_patterns("*.lock"))
    recipe = tiny_recipe(tmp_path, extra='\n[bundle]\nformats = ["android", "c-array"]\n')
    result = invoke("--json", "bundle", str(recipe), "--workdir", str(work))
    assert result.exit_code == 0, result.output
    bundle = work / "tiny" / "bundle"
    golden = read_golden((bundle / GOLDEN_FILE).read_bytes())
    manifest = json.loads((bundle / "manifest.json").read_text())
    listed = {a["path"] for a in manifest["artifacts"]}
    c_files = manifest["formats"]["c-array"]["files"]
    assert {"c/model_golden.c", "c/model_golden.h", "c/model_selftest.cc"} <= set(c_files) <= listed
    arrays = read_c_arrays((bundle / "c" / "model_golden.c").read_text())
    assert bytes(int(v, 16) for v in arrays["model_golden_input_0"]) == golden["input_0"].tobytes()
    expected = [c_double(v) for v in arrays["model_golden_output_0"]]
    assert len(expected) == golden["output_0"].size and expected == golden["output_0"].astype(float).ravel().tolist()
    assert [c_double(v) for v in arrays["model_golden_atol"]] == golden["atol"].tolist()
    android = manifest["formats"]["android"]["files"]
    assert {TEST, f"{ASSETS}/golden.json", f"{ASSETS}/input_0.bin", f"{ASSETS}/output_0.bin"} <= set(android)
    assert set(android) <= listed
    described = json.loads((bundle / ASSETS / "golden.json").read_text())
    assert described["invokes"] == int(golden["invokes"]) and len(described["outputs"]) == 1
    assert described["outputs"][0]["atol"] == float(golden["atol"][0])
    for name in ("input_0", "output_0"):
        assert (bundle / ASSETS / f"{name}.bin").read_bytes() == golden[name].tobytes()
    assert 'MODEL = "tiny.tflite";' in (bundle / TEST).read_text()
    assert (bundle / "android" / "assets" / "tiny.tflite").is_file()
    assert invoke("verify", str(bundle)).exit_code == 0
