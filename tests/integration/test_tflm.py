"""The tflm device: the model in TensorFlow Lite Micro's real interpreter; the arena it needs, measured
and carried into the c-array header; ops TFLM lacks refused by name before anything runs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, invoke, run_cli, without_module, work_copy

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tflite_micro") is None,
    reason="tflite-micro has wheels for Linux x86-64 only; not installed here",
)

# An independent bisection, byte by byte, with TFLM itself: the smallest arena that allocates and invokes.
BISECT = textwrap.dedent("""
    import sys, numpy as np
    from tflite_micro.python.tflite_micro import runtime
    model = open(sys.argv[1], "rb").read()
    def works(size):
        try:
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=size)
            d = interpreter.get_input_details(0)
            interpreter.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            interpreter.invoke()
            return True
        except Exception:
            return False
    low, high = 0, 1 << 22
    assert works(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if works(middle) else (middle, high)
    print(high)
""")


def exact_need(model: Path) -> int:
    proc = subprocess.run([sys.executable, "-c", BISECT, str(model)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


@pytest.fixture(scope="module")
def on_tflm(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shipped digits recipe validated on host and tflm, bundled with the c-array (the default run's
    stages, copied: nothing is trained again)."""
    folder = tmp_path_factory.mktemp("tflm")
    work = work_copy(default_run, folder)
    text = (REPO / "recipes" / "digits.toml").read_text().replace('devices = ["host"]', 'devices = ["host", "tflm"]')
    assert '"tflm"]' in text
    text += '\n[bundle]\nformats = ["c-array"]\narena_margin = "2 KiB"\n' if "[bundle]" not in text else ""
    assert 'arena_margin = "2 KiB"' in text
    text = text.replace("[budgets]", '[budgets]\nfits = ["nucleo-l4r5zi"]')
    assert 'fits = ["nucleo-l4r5zi"]' in text
    recipe = folder / "digits.toml"
    recipe.write_text(text)
    proc = run_cli("--json", "run", str(recipe), "--workdir", str(work), cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    bundle = Path(report["bundle"][0])
    return {
        "report": report,
        "bundle": bundle,
        "work": work,
        "manifest": json.loads((bundle / "manifest.json").read_text()),
        "measured": json.loads((bundle / "measurements.json").read_text()),
    }


def test_the_digits_model_in_tflm_matches_litert_and_its_arena_is_the_smallest(on_tflm: dict[str, Any]) -> None:
    record = on_tflm["report"]["validation"]["tflm"]
    assert record["kind"] == "tflm" and record["emulated"] is True and record["latency_ms"] is None
    assert record["runtime"]["name"] == "tflite-micro"
    check = record["parity"]
    assert check["ok"] is True and check["tolerance_steps"] == 1
    assert len(check["outputs"]) == 1 and check["outputs"][0]["max_abs_diff"] <= check["outputs"][0]["tolerance"] == 1
    arena = record["arena"]
    need = exact_need(on_tflm["bundle"] / "model.tflite")
    assert arena["bytes"] % 16 == 0 and arena["bytes"] - 16 < need <= arena["bytes"], (arena, need)
    assert arena["non_persistent"] + arena["persistent"] == arena["recorded_total"] <= arena["bytes"]
    assert arena["non_persistent"] > 0 and arena["persistent"] > 0
    assert on_tflm["measured"]["validation"]["tflm"]["arena"]["bytes"] == arena["bytes"]
    from edgepack.bundle.schema import measurements_schema, schema_problems

    assert schema_problems(on_tflm["measured"], measurements_schema(), "measurements.json") == []
    assert schema_problems(on_tflm["manifest"]) == []


def test_the_c_array_declares_the_measured_arena_plus_the_margin(on_tflm: dict[str, Any]) -> None:
    entry = on_tflm["manifest"]["formats"]["c-array"]
    arena = entry["arena"]
    converted = on_tflm["work"] / "digits" / "convert" / "model.tflite"  # what the c-array embeds
    need = exact_need(converted)
    assert arena["how"] == "measured" and arena["need_bytes"] - 16 < need <= arena["need_bytes"]
    assert arena["margin_bytes"] == 2048 and entry["arena_bytes"] == arena["need_bytes"] + 2048
    assert arena["need_bytes"] == on_tflm["report"]["validation"]["tflm"]["arena"]["bytes"]  # metadata takes none
    assert arena["estimate_bytes"] > entry["arena_bytes"]  # the old estimate was larger than need + margin
    header = (on_tflm["bundle"] / "c" / "model_data.h").read_text()
    assert f"constexpr int kModelDataArenaSize = {entry['arena_bytes']};" in header
    assert f"invokes in {arena['need_bytes']} bytes" in header and "margin of 2048 bytes" in header
    assert f"static estimate was {arena['estimate_bytes']} bytes" in header


def test_the_run_fits_its_board_with_the_arena_measured_once(on_tflm: dict[str, Any]) -> None:
    manifest, report = on_tflm["manifest"], on_tflm["report"]
    need = on_tflm["report"]["validation"]["tflm"]["arena"]["bytes"]
    assert manifest["memory"]["arena"]["how"] == "measured" and manifest["memory"]["arena"]["need"] == need
    fit = manifest["fits"]["nucleo-l4r5zi"]
    assert fit["arena_bytes"] == need and fit["model_bytes"] == manifest["model"]["converted_size_bytes"]
    assert fit["ram_bytes"] == 640 * 1024 and fit["ram_need"] == need + fit["io_bytes"] + fit["runtime_ram_bytes"]
    assert fit["ram_headroom"] == fit["ram_bytes"] - fit["ram_need"] > 0 and fit["fits"] is True
    results = {r["name"]: r for r in report["gate"]["results"]}
    assert (
        results["fits.nucleo-l4r5zi.ram"]["passed"]
        and results["fits.nucleo-l4r5zi.ram"]["margin"] == fit["ram_headroom"]
    )
    assert results["fits.nucleo-l4r5zi.flash"]["margin"] == fit["flash_headroom"]
    # the activation peak (tensor lifetimes) is TFLM's planned part of the arena for this model
    memory = manifest["memory"]
    assert memory["activation_peak_bytes"] == on_tflm["report"]["validation"]["tflm"]["arena"]["non_persistent"]
    assert memory["peak_op"] == "CONV_2D" and memory["peak_layer"].endswith("conv2")
    assert sum(t["bytes"] for t in memory["largest_tensors"]) == memory["activation_peak_bytes"]
    assert memory["live_tensors"] == len(memory["largest_tensors"]) == 2
    assert report["memory"] == memory and report["fits"] == manifest["fits"]


@pytest.fixture(scope="module")
def tile_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float model with TILE, an op LiteRT runs and TFLM has no kernel for."""
    from edgepack.models.tf import load

    mods = load()
    tf, keras = mods.tf, mods.keras
    inputs = keras.Input((4,))
    tiled = keras.layers.Lambda(lambda t: tf.tile(t, [1, 2]))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(tiled))
    path = tmp_path_factory.mktemp("tile") / "tile.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_an_op_tflm_lacks_is_named_before_anything_runs(
    tile_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TFLM itself refuses the model (so the table that refuses it first is right about TILE) ...
    real = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tflite_micro.python.tflite_micro import runtime; "
            "runtime.Interpreter.from_file(sys.argv[1], arena_size=1 << 20)",
            str(tile_model),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert real.returncode != 0 and "TILE" in real.stdout + real.stderr
    # ... and edgepack names it before starting the TFLM runner (exit 2, no traceback).
    import edgepack.devices.drivers.tflm as tflm

    def no_runner(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the TFLM runner was started")

    monkeypatch.setattr(tflm.subprocess, "Popen", no_runner)
    result = invoke("validate", "--model", str(tile_model), "--device", "tflm", "--workdir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "TensorFlow Lite Micro has no kernel for TILE" in result.stderr and "tflm-unsupported-op" in result.stderr
    assert "Traceback" not in result.stderr


def test_devices_check_tflm_names_the_runtime_or_how_to_install_it(tmp_path: Path) -> None:
    proc = run_cli("--json", "devices", "check", "tflm")
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    assert probe["kind"] == "tflm" and probe["runtime"]["name"] == "tflite-micro" and probe["emulated"] is True
    env = without_module("tflite_micro", tmp_path)
    missing = run_cli("devices", "check", "tflm", env=env)
    assert missing.returncode == 4, missing.stdout + missing.stderr
    assert "tflite-micro is not installed" in missing.stderr and "pip install tflite-micro" in missing.stderr


def test_tolerances_follow_each_outputs_quantization(on_tflm: dict[str, Any], tile_model: Path) -> None:
    from edgepack.devices.drivers.tflm import output_tolerances

    assert output_tolerances(on_tflm["bundle"] / "model.tflite") == [1.0]  # int8 output: one step
    assert output_tolerances(tile_model) == [0.0]  # a float model: the float rule alone


def test_a_model_that_needs_more_than_max_arena_is_refused_with_the_cap(
    on_tflm: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need = on_tflm["report"]["validation"]["tflm"]["arena"]["bytes"]
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "small-mcu.toml").write_text(f'kind = "tflm"\nmax_arena = {need - 16}\n')
    (tmp_path / "devices" / "enough.toml").write_text(f'kind = "tflm"\nmax_arena = {need + 8}\n')
    monkeypatch.chdir(tmp_path)  # ./devices first
    model = str(on_tflm["bundle"] / "model.tflite")
    refused = invoke("validate", "--model", model, "--device", "small-mcu", "--workdir", str(tmp_path / "w"))
    assert refused.exit_code == 2, refused.output
    assert f"does not allocate and invoke in TFLM with {need - 16} bytes" in refused.stderr
    fits = invoke("--json", "validate", "--model", model, "--device", "enough", "--workdir", str(tmp_path / "w"))
    assert fits.exit_code == 0, fits.output
    assert json.loads(fits.stdout)["enough"]["arena"]["bytes"] == need  # the cap, rounded down to 16, is tried


def test_gate_refits_the_board_and_falls_back_to_the_recorded_fit(on_tflm: dict[str, Any], tmp_path: Path) -> None:
    bundle, recorded = on_tflm["bundle"], on_tflm["manifest"]["fits"]["nucleo-l4r5zi"]
    whole = run_cli("--json", "gate", str(bundle), cwd=tmp_path)  # refitted from the model and the recorded arena
    assert whole.returncode == 0, whole.stdout + whole.stderr
    ram = {r["name"]: r for r in json.loads(whole.stdout)["results"]}["fits.nucleo-l4r5zi.ram"]
    assert ram["passed"] and ram["margin"] == recorded["ram_headroom"]
    (tmp_path / "only").mkdir()  # the manifest and measurements alone: the fit the manifest records stands
    for name in ("manifest.json", "measurements.json"):
        (tmp_path / "only" / name).write_bytes((bundle / name).read_bytes())
    alone = run_cli("--json", "gate", str(tmp_path / "only" / "manifest.json"), cwd=tmp_path)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    ram = {r["name"]: r for r in json.loads(alone.stdout)["results"]}["fits.nucleo-l4r5zi.ram"]
    assert ram["passed"] and ram["measured"] == recorded["ram_need"]
