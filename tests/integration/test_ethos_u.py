"""The ethos-u device: the model compiled by the real Vela for an Ethos-U NPU; edgepack reports what Vela
itself reports (checked against a direct `vela` run on the same file), budgets the estimate as an
estimate, refuses float models, names the CPU-fallback ops, and ships the compiled model."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, fast_tflite, invoke, run_cli, without_module, work_copy

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ethosu") is None,
    reason="ethos-u-vela (Arm's Vela compiler, module ethosu) is not installed",
)

U55 = ("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram")  # devices/ethos-u55-128.toml
U85 = ("ethos-u85-256", "Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB")  # devices/ethos-u85-256.toml
CYCLES = ("npu", "sram_access", "dram_access", "on_chip_flash_access", "off_chip_flash_access", "total")
MEMORIES = ("sram", "dram", "on_chip_flash", "off_chip_flash")


def vela(model: Path, out: Path, config: tuple[str, str, str], *extra: str) -> dict[str, Any]:
    """Vela itself (its CLI, in a subprocess) on `model`: its summary row, per-layer rows, operator counts,
    the compiled model's sha256. Vela's operator counts depend on --show-cpu-operations (with it, Vela
    counts the lowered operations it lists, one per per-layer row; without, MobileNetV2 gives 93 instead
    of 129 on the U55): edgepack passes it to name the CPU ops, so this run does too."""
    accelerator, system, memory = config
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ethosu.vela",
            str(model),
            "--accelerator-config",
            accelerator,
            "--system-config",
            system,
            "--memory-mode",
            memory,
            "--output-dir",
            str(out),
            "--verbose-performance",
            "--show-cpu-operations",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (out / f"{model.stem}_summary_{system}.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    with (out / f"{model.stem}_per-layer.csv").open(newline="") as handle:
        layers = list(csv.DictReader(handle))
    counts = {kind: int(n) for kind, n in re.findall(r"^(CPU|NPU) operators = (\d+) ", proc.stdout, re.M)}
    compiled = (out / f"{model.stem}_vela.tflite").read_bytes()
    return {
        "row": row,
        "layers": layers,
        "counts": counts,
        "stdout": proc.stdout,
        "sha256": hashlib.sha256(compiled).hexdigest(),
    }


def assert_same_as_vela(estimate: dict[str, Any], direct: dict[str, Any], config: tuple[str, str, str]) -> None:
    """Every figure edgepack reports is the one in Vela's own summary, per-layer report and printout."""
    row = direct["row"]
    assert (estimate["accelerator"], estimate["system_config"], estimate["memory_mode"]) == config
    assert row["system_config"] == config[1] and row["memory_mode"] == config[2]
    for memory in MEMORIES:  # Vela writes KiB; edgepack reports bytes
        assert estimate["memory_bytes"][memory] / 1024 == float(row[f"{memory}_memory_used"]), memory
    for cycles in CYCLES:
        assert estimate["cycles"][cycles] == int(row[f"cycles_{cycles}"]), cycles
    assert estimate["macs"] == int(row["nn_macs"]) > 0
    assert estimate["inference_ms"] == pytest.approx(float(row["inference_time"]) * 1000, rel=1e-12)
    assert estimate["inferences_per_second"] == pytest.approx(float(row["inferences_per_second"]), rel=1e-12)
    assert estimate["clock_mhz"] * 1e6 == float(row["core_clock"])
    assert estimate["inference_ms"] == pytest.approx(
        estimate["cycles"]["total"] / float(row["core_clock"]) * 1000, rel=1e-3
    )
    assert (estimate["npu_ops"], estimate["cpu_ops"]) == (direct["counts"]["NPU"], direct["counts"]["CPU"])
    assert [(la["op"], la["target"], la["cycles"], la["macs"], la["name"]) for la in estimate["layers"]] == [
        (r["Original Operator"], r["Target"], int(r["Op Cycles"]), int(r["MAC Count"]), r["Name"])
        for r in direct["layers"]
    ]
    assert len(estimate["layers"]) == estimate["npu_ops"] + estimate["cpu_ops"]
    assert estimate["vela_version"] == metadata.version("ethos-u-vela")


@pytest.fixture(scope="module")
def digits(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shipped digits recipe validated on host and ethos-u55-128, an estimate budget that holds, bundled
    with the ethos-u format (the default run's stages, copied: nothing is trained again)."""
    folder = tmp_path_factory.mktemp("ethos-u")
    work = work_copy(default_run, folder)
    text = (REPO / "recipes" / "digits.toml").read_text()
    text = text.replace('devices = ["host"]', 'devices = ["host", "ethos-u55-128"]')
    text = text.replace("latency_p90_ms = 5.0", 'latency_p90_ms = { host = 5.0, "ethos-u55-128" = 1.0 }')
    assert '"ethos-u55-128"]' in text and '"ethos-u55-128" = 1.0' in text and "[bundle]" not in text
    recipe = folder / "digits.toml"
    recipe.write_text(text + '\n[bundle]\nformats = ["ethos-u"]\n')
    proc = run_cli(
        "--json", "run", str(recipe), "--workdir", str(work), "--junit", str(folder / "junit.xml"), cwd=folder
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    bundle = Path(report["bundle"][0])
    return {
        "report": report,
        "bundle": bundle,
        "work": work,
        "folder": folder,
        "recipe": recipe,
        "record": report["validation"]["ethos-u55-128"],
        "manifest": json.loads((bundle / "manifest.json").read_text()),
        "measured": json.loads((bundle / "measurements.json").read_text()),
        "vela": vela(bundle / "model.tflite", folder / "direct", U55),
    }


def test_the_digits_estimate_is_velas_own(digits: dict[str, Any]) -> None:
    record = digits["record"]
    assert record["kind"] == "ethos-u" and record["emulated"] is True and record["latency_ms"] is None
    assert record["runtime"] == {"name": "vela", "version": metadata.version("ethos-u-vela")}
    assert record["parity"]["ok"] is None and "nothing executes" in record["parity"]["why"]
    estimate = record["estimate"]
    assert estimate["model_sha256"] == hashlib.sha256((digits["bundle"] / "model.tflite").read_bytes()).hexdigest()
    assert_same_as_vela(estimate, digits["vela"], U55)
    assert estimate["cpu_ops"] == 0 and estimate["cpu_fallback"] == [] and estimate["npu_ops"] > 0
    assert estimate["memory_bytes"]["sram"] > 0 and estimate["memory_bytes"]["off_chip_flash"] > 0
    assert digits["measured"]["validation"]["ethos-u55-128"]["estimate"] == estimate


def test_the_estimate_budget_is_labelled_estimated(digits: dict[str, Any]) -> None:
    gate = {r["name"]: r for r in digits["report"]["gate"]["results"]}
    budget = gate["latency_p90_ms.ethos-u55-128"]
    assert budget["estimated"] is True and budget["passed"] is True
    assert budget["measured"] == digits["record"]["estimate"]["inference_ms"] and budget["limit"] == 1.0
    assert budget["detail"].startswith("estimated by Vela: the inference time at 500 MHz")
    assert gate["latency_p90_ms.host"]["estimated"] is False
    junit = (digits["folder"] / "junit.xml").read_text()
    assert "latency_p90_ms.ethos-u55-128 (estimated): estimated" in junit  # said on a pass too


@pytest.mark.parametrize("over", [True, False])
def test_a_budget_just_under_the_estimate_fails_with_exit_3(digits: dict[str, Any], tmp_path: Path, over: bool) -> None:
    estimate = digits["record"]["estimate"]["inference_ms"]
    limit = estimate * (0.99 if over else 1.01)
    text = digits["recipe"].read_text()
    text = text.replace('"ethos-u55-128" = 1.0', f'"ethos-u55-128" = {limit!r}')
    assert repr(limit) in text
    (tmp_path / "budgets.toml").write_text(text)
    junit = tmp_path / "junit.xml"
    result = invoke("gate", str(digits["bundle"]), "--recipe", str(tmp_path / "budgets.toml"), "--junit", str(junit))
    assert result.exit_code == (3 if over else 0), result.output
    cases = re.findall(r'<testcase [^>]*name="latency_p90_ms\.ethos-u55-128"', junit.read_text())
    assert len(cases) == 1
    if over:
        assert "latency_p90_ms.ethos-u55-128 (estimated): estimated" in result.stderr
        assert (
            'type="budget-exceeded" message="latency_p90_ms.ethos-u55-128 (estimated): estimated' in junit.read_text()
        )
    else:
        assert "budget-exceeded" not in junit.read_text()


def test_the_ethos_u_format_ships_what_vela_compiles_and_verifies(digits: dict[str, Any]) -> None:
    bundle, entry = digits["bundle"], digits["manifest"]["formats"]["ethos-u"]
    compiled = (bundle / "ethos-u" / "model_vela.tflite").read_bytes()
    assert hashlib.sha256(compiled).hexdigest() == digits["vela"]["sha256"] == entry["compiled_sha256"]
    assert entry["files"] == [
        "ethos-u/model_per-layer.csv",
        "ethos-u/model_summary_Ethos_U55_High_End_Embedded.csv",
        "ethos-u/model_vela.tflite",
    ]
    estimate = digits["record"]["estimate"]
    assert (entry["device"], entry["accelerator"], entry["system_config"], entry["memory_mode"]) == (
        "ethos-u55-128",
        *U55,
    )
    for key in ("clock_mhz", "vela_version", "npu_ops", "cpu_ops", "memory_bytes", "macs", "inference_ms"):
        assert entry[key] == estimate[key], key
    assert entry["compiled_sha256"] == estimate["compiled"]["sha256"]
    assert entry["compiled_by"] == "validate (reused)"  # not compiled a second time
    with (bundle / "ethos-u" / "model_summary_Ethos_U55_High_End_Embedded.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["cycles_total"] == digits["vela"]["row"]["cycles_total"]
    listed = {a["path"] for a in digits["manifest"]["artifacts"]}
    assert set(entry["files"]) <= listed
    assert digits["manifest"]["toolchain"]["ethos-u-vela"] == metadata.version("ethos-u-vela")
    from edgepack.bundle.schema import measurements_schema, schema_problems

    assert schema_problems(digits["manifest"]) == []
    assert schema_problems(digits["measured"], measurements_schema(), "measurements.json") == []
    verified = invoke("verify", str(bundle))
    assert verified.exit_code == 0, verified.output


def save(model: Any, folder: Path, name: str, int8: bool) -> Path:
    """`model` converted with the real TFLite converter: full int8 (two random calibration samples) or float32."""
    return fast_tflite(model, folder / f"{name}.tflite", int8)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small int8 CNN with a GATHER (no NPU kernel on the Ethos-U55), and the same graph in float32."""
    from edgepack.models.tf import load

    mods = load()
    tf, keras = mods.tf, mods.keras
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("ethos-u-models")
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Lambda(lambda t: tf.gather(t, [0, 2, 1, 3], axis=3))(x)
    gather = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    return {"gather": save(gather, folder, "gather", True), "float": save(gather, folder, "float", False)}


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MobileNetV2 (alpha 0.35, 96x96, random weights: Vela's figures do not depend on them) in full int8."""
    from edgepack.models.tf import load

    keras = load().keras
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    return save(model, tmp_path_factory.mktemp("ethos-u-mobilenet"), "mobilenet", True)


def validate_json(model: Path, work: Path, *devices: str) -> dict[str, Any]:
    args = [arg for device in devices for arg in ("--device", device)]
    result = invoke("--json", "validate", "--model", str(model), *args, "--workdir", str(work))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_mobilenet_estimates_are_velas_own_on_u55_and_u85(mobilenet: Path, tmp_path: Path) -> None:
    records = validate_json(mobilenet, tmp_path / "w", "ethos-u55-128", "ethos-u85-256")
    for config in (U55, U85):
        estimate = records[config[0]]["estimate"]
        direct = vela(mobilenet, tmp_path / config[0], config)
        assert_same_as_vela(estimate, direct, config)
        assert estimate["cpu_ops"] == 0 and estimate["npu_ops"] > 60
        assert estimate["macs"] == pytest.approx(11.9e6, rel=0.02)  # MobileNetV2 0.35 at 96x96
    assert records["ethos-u85-256"]["estimate"]["inference_ms"] < records["ethos-u55-128"]["estimate"]["inference_ms"]


def test_an_op_the_npu_lacks_is_named_as_cpu_fallback(models: dict[str, Path], tmp_path: Path) -> None:
    estimate = validate_json(models["gather"], tmp_path / "w", "ethos-u55-128")["ethos-u55-128"]["estimate"]
    direct = vela(models["gather"], tmp_path / "direct", U55)
    assert_same_as_vela(estimate, direct, U55)
    assert direct["counts"]["CPU"] == 1 and "operator: GATHER" in direct["stdout"]
    (fallback,) = estimate["cpu_fallback"]
    assert fallback["op"] == "GATHER" and "GatherV2" in fallback["name"] and fallback["reason"] == "Unsupported opType"
    assert [la["target"] for la in estimate["layers"]].count("CPU") == 1
    shown = invoke(
        "validate", "--model", str(models["gather"]), "--device", "ethos-u55-128", "--workdir", str(tmp_path / "w")
    )
    assert shown.exit_code == 0, shown.output
    assert "CPU fallback" in shown.stdout and "GATHER" in shown.stdout and "3 / 1" in shown.stdout


def test_the_bundle_compiles_for_the_default_profile_when_validation_did_not(
    models: dict[str, Path], default_run: dict[str, Any], tmp_path: Path
) -> None:
    recipe = tmp_path / "digits.toml"  # validated on host only: the format compiles for ethos-u55-128 itself
    recipe.write_text((REPO / "recipes" / "digits.toml").read_text() + '\n[bundle]\nformats = ["ethos-u"]\n')
    work = work_copy(default_run, tmp_path)  # the float reference trained already: only the given model is new
    result = invoke(
        "--json",
        "bundle",
        str(recipe),
        "--model",
        str(models["gather"]),
        "--workdir",
        str(work),
        "--out",
        str(tmp_path / "b"),
    )
    assert result.exit_code == 0, result.output
    entry = json.loads((tmp_path / "b" / "manifest.json").read_text())["formats"]["ethos-u"]
    direct = vela(tmp_path / "b" / "model.tflite", tmp_path / "direct", U55)
    assert entry["compiled_by"] == "bundle" and entry["device"] == "ethos-u55-128"
    assert entry["compiled_sha256"] == direct["sha256"]
    assert [op["op"] for op in entry["cpu_fallback"]] == ["GATHER"] and entry["cpu_ops"] == direct["counts"]["CPU"] == 1
    assert invoke("verify", str(tmp_path / "b")).exit_code == 0


def test_a_float_model_is_refused_for_the_npu(models: dict[str, Path], tmp_path: Path) -> None:
    result = invoke(
        "validate", "--model", str(models["float"]), "--device", "ethos-u55-128", "--workdir", str(tmp_path / "w")
    )
    assert result.exit_code == 2, result.output
    assert "ethos-u-not-integer" in result.stderr and "ethos-u55-128" in result.stderr
    assert "computes in float" in result.stderr and 'mode = "int8"' in result.stderr
    assert "Traceback" not in result.stderr


def test_clock_mhz_makes_vela_compute_at_that_clock(
    digits: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "devices").mkdir()
    base = (REPO / "devices" / "ethos-u55-128.toml").read_text()
    (tmp_path / "devices" / "u55-at-250.toml").write_text(base + "clock_mhz = 250\n")
    (tmp_path / "devices" / "u55-bad.toml").write_text(base.replace("Shared_Sram", "No_Such_Mode"))
    monkeypatch.chdir(tmp_path)
    model = digits["bundle"] / "model.tflite"
    estimate = validate_json(model, tmp_path / "w", "u55-at-250")["u55-at-250"]["estimate"]
    at_500 = digits["record"]["estimate"]
    assert estimate["clock_mhz"] == 250 and estimate["cycles"] == at_500["cycles"]
    assert estimate["inference_ms"] == pytest.approx(2 * at_500["inference_ms"], rel=1e-9)
    derived = Path(estimate["config"])  # Vela read the derived file; so does a direct run with it
    assert derived.name == "vela.ini" and "core_clock=250000000.0" in derived.read_text()
    assert_same_as_vela(estimate, vela(model, tmp_path / "direct", U55, "--config", str(derived)), U55)
    refused = invoke("validate", "--model", str(model), "--device", "u55-bad", "--workdir", str(tmp_path / "w"))
    assert refused.exit_code == 2, refused.output
    assert "validate u55-bad: Vela refuses the device profile's options" in refused.stderr
    assert "No_Such_Mode" in refused.stderr and "Traceback" not in refused.stderr


def test_devices_check_reports_vela_or_how_to_install_it(tmp_path: Path) -> None:
    proc = run_cli("--json", "devices", "check", "ethos-u55-128")
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    assert probe["kind"] == "ethos-u" and probe["runtime"] == {
        "name": "vela",
        "version": metadata.version("ethos-u-vela"),
    }
    assert (probe["accelerator"], probe["system_config"], probe["memory_mode"]) == U55
    env = without_module("ethosu", tmp_path)
    missing = run_cli("devices", "check", "ethos-u55-128", env=env)
    assert missing.returncode == 4, missing.stdout + missing.stderr
    assert "ethos-u-vela is not installed" in missing.stderr and "pip install ethos-u-vela" in missing.stderr


def test_the_report_shows_the_estimate_and_every_layer(digits: dict[str, Any]) -> None:
    page = (digits["bundle"] / "report.html").read_text()
    estimate = digits["record"]["estimate"]
    assert "Ethos-U estimates (Vela)" in page and 'id="ethos-u"' in page
    assert (
        f"{estimate['inference_ms']:.4f} ms" in page
        and f"{estimate['macs']:,}, {estimate['cycles']['total']:,}" in page
    )
    table = page.split('id="ethos-u-layers-ethos-u55-128"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == len(estimate["layers"]) + 1 > 1  # the header and one row per Vela layer
    assert f'<td class="right">{estimate["layers"][0]["cycles"]:,}</td>' in table
