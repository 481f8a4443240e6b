"""Devices: the runner on the host, a pinned 1-core profile, a real sshd on 127.0.0.1 and a fake adb.

The ssh tests talk to a real OpenSSH server the suite starts (the `sshd` fixture). No phone can be
attached here: the adb tests use tests/fakes/adb, which replays recorded adb output and runs
`adb shell` commands on this machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FAKES, REPO, invoke, package_index_unreachable, run_cli, work_copy

from edgepack.devices.base import RunRequest
from edgepack.errors import DeviceUnreachable, StageError
from edgepack.progress import NullReporter

# A one-output model whose int8 outputs match the host's exactly, overall and per output.
IDENTICAL = {
    "ok": True,
    "identical": True,
    "max_abs_diff": 0.0,
    "outputs": [{"output": 0, "ok": True, "identical": True, "max_abs_diff": 0.0}],
}
RESULT_KEYS = {
    "latency_ms",
    "init_ms",
    "warmup",
    "threads",
    "cpus",
    "memory_limit",
    "peak_rss_kb",
    "runtime",
    "python",
    "numpy",
    "cpu",
    "machine",
    "outputs",
}


@pytest.fixture()
def model(default_run: dict[str, Any]) -> Path:
    return default_run["bundle"] / "model.tflite"


def load(name: str) -> Any:
    from edgepack.devices.profiles import load_device

    return load_device(name)


def run(name: str, model: Path, inputs: Path | None = None, runs: int = 20, **changes: Any) -> dict[str, Any]:
    from edgepack.devices.drivers import run_device

    device = load(name).model_copy(update=changes)
    return run_device(device, RunRequest(model, inputs, runs, 2, 1), NullReporter(), f"validate {name}")


def test_one_model_on_host_pinned_host_ssh_and_adb_gives_the_hosts_outputs(
    model: Path, profiles: Path, tmp_path: Path
) -> None:
    from edgepack.validate.parity import parity

    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, input_0=np.random.default_rng(3).integers(-128, 128, (1, 8, 8, 1), dtype=np.int8))
    records = {name: run(name, model, inputs) for name in ("host", "host-1core", "ssh-test", "phone")}
    for name, rec in records.items():
        assert RESULT_KEYS <= set(rec), name
        lat = rec["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] and lat["runs"] == 20
        assert rec["runtime"]["name"] == "ai-edge-litert" and rec["runtime"]["version"]
        assert rec["peak_rss_kb"] > 0 and rec["init_ms"] > 0
        assert rec["outputs"][0]["shape"] == [1, 10] and rec["outputs"][0]["dtype"] == "int8"
        assert parity(records["host"]["outputs"], rec["outputs"]) == {
            "ok": True,
            "identical": True,
            "max_abs_diff": 0.0,
            "outputs": [{"output": 0, "ok": True, "identical": True, "max_abs_diff": 0.0}],
        }, name
    assert records["host-1core"]["cpus"] == [0] and records["host-1core"]["memory_limit"] == 512 * 2**20
    assert records["host"]["memory_limit"] is None
    # The inputs were really fed: seeded random ones give other outputs.
    assert run("host", model)["outputs"][0]["sha256"] != records["host"]["outputs"][0]["sha256"]
    # Nothing is left on the board after an ssh run.
    assert not list(Path(load("ssh-test").remote_dir).glob("run.*"))


def test_validate_runs_every_device_into_the_manifest_and_gates_per_device(
    default_run: dict[str, Any], profiles: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "digits.toml"  # same name and stages as the default run: its stages are cached
    text = (REPO / "recipes" / "digits.toml").read_text()
    text = text.replace('devices = ["host"]', 'devices = ["host", "host-1core", "ssh-test", "phone"]')
    text = text.replace("latency_p90_ms = 5.0", "latency_p90_ms = { ssh-test = 1000.0, phone = 0.000001 }")
    assert "ssh-test = 1000.0" in text and '"phone"]' in text
    recipe.write_text(text)
    proc = run_cli("--json", "run", str(recipe), "--workdir", str(work_copy(default_run, tmp_path)), cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the phone's tiny budget fails, the board's holds
    report = json.loads(proc.stdout)
    validation = report["validation"]
    assert list(validation) == ["host", "host-1core", "ssh-test", "phone"]
    assert validation["host"]["parity"]["reference"] is True
    for name in ("host-1core", "ssh-test", "phone"):
        assert validation[name]["parity"] == IDENTICAL, name
        assert validation[name]["kind"] in ("local", "ssh", "adb") and validation[name]["emulated"] is False
    measured = json.loads((Path(report["bundle"][0]) / "measurements.json").read_text())
    assert set(measured["validation"]) == set(validation)
    gate = {g["name"]: g["passed"] for g in report["gate"]["results"] if g["name"].startswith("latency")}
    assert gate == {"latency_p90_ms.phone": False, "latency_p90_ms.ssh-test": True}


def test_a_refused_key_and_a_missing_runtime_are_clear(profiles: Path, sshd: Any, model: Path, tmp_path: Path) -> None:
    from sshd import keygen

    stranger = keygen(tmp_path / "stranger")
    (profiles / "stranger.toml").write_text(sshd.profile("stranger", sys.executable, identity_file=str(stranger)))
    with pytest.raises(DeviceUnreachable) as info:
        run("stranger", model)
    assert info.value.code == "ssh-auth-refused" and "refused the key" in info.value.message
    home = run("ssh-test", model, remote_dir="~/.cache/edgepack-test")  # ~ is the board's home
    assert home["outputs"] and (Path.home() / ".cache" / "edgepack-test").is_dir()
    (Path.home() / ".cache" / "edgepack-test").rmdir()  # empty: the run's directory was removed
    with pytest.raises(DeviceUnreachable) as info:
        run("ssh-test", model, runtime="tflite-runtime")  # not installed on this "board"
    assert info.value.code == "device-no-runtime" and "pip install" in (info.value.hint or "")
    assert "tflite-runtime" in (info.value.context or "")


def test_a_runner_killed_mid_run_is_a_clear_error(profiles: Path, model: Path) -> None:
    remote = load("ssh-test").remote_dir

    def kill_soon() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["pkill", "-KILL", "-f", f"{sys.executable} runner.py model.tflite"]).returncode == 0:
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    with pytest.raises(StageError) as info:
        run("ssh-test", model, runs=10_000_000)
    killer.join()
    assert info.value.code == "runner-crashed" and "SIGKILL" in info.value.message
    assert not list(Path(remote).glob("run.*"))


def test_the_device_timeout_stops_the_runner_on_the_board(profiles: Path, model: Path) -> None:
    with pytest.raises(StageError) as info:
        run("ssh-test", model, runs=10_000_000, run_timeout_s=1.0)
    assert info.value.code == "device-timeout" and "stopped on the device" in info.value.message
    deadline = time.monotonic() + 30  # the board's `timeout` stops it at once; this is only how long to look
    left = "?"
    while left and time.monotonic() < deadline:
        pgrep = ["pgrep", "-f", f"{sys.executable} runner.py model.tflite"]
        left = subprocess.run(pgrep, capture_output=True, text=True).stdout
        if left:
            time.sleep(0.1)
    assert left == "", "the runner kept running on the board"


def test_devices_check_reports_runtime_python_and_cpu(profiles: Path) -> None:
    for name in ("host-1core", "ssh-test", "phone"):
        result = invoke("--json", "devices", "check", name)
        assert result.exit_code == 0, result.output
        probe = json.loads(result.stdout)
        assert probe["runtime"]["name"] == "ai-edge-litert" and probe["python"].startswith("3.")
        assert probe["numpy"] == np.__version__ and probe["machine"]
    assert json.loads(invoke("--json", "devices", "check", "host-1core").stdout)["cpus"] == 1  # pinned


def test_a_memory_cap_below_the_models_needs_is_a_clear_error(profiles: Path, model: Path) -> None:
    with pytest.raises(StageError) as info:
        run("host-1core", model, memory_limit="20 MiB")
    assert info.value.code == "runner-memory" and "memory limit" in info.value.message


def _qemu_missing() -> list[str]:
    from edgepack.devices.toolchains.qemu_rootfs import missing_tools

    return missing_tools()


def _skip_if_offline_and_not_built(name: str) -> None:
    """Building the root filesystem downloads (mmdebstrap from the Debian mirror, the aarch64 wheel with
    `pip download`): where none is cached and no package index answers, the test cannot run here."""
    from edgepack.devices.profiles import load_device
    from edgepack.devices.toolchains.qemu_rootfs import cache_dir, image_key

    if (cache_dir() / image_key(load_device(name)) / "build.json").is_file():  # type: ignore[arg-type]
        return
    offline = package_index_unreachable()
    if offline:
        pytest.skip(f"the {name} root filesystem is not built in {cache_dir()} and cannot be downloaded: {offline}")


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.skipif(
    bool(_qemu_missing()), reason="qemu-user-static / mmdebstrap are not installed here (.ci/run installs them)"
)
def test_rpi4_emulated_gives_the_hosts_int8_outputs_and_is_never_gated(
    default_run: dict[str, Any], profiles: Path, tmp_path: Path
) -> None:
    """The int8 digits model on an emulated Cortex-A72 (built once into the user's cache)."""
    _skip_if_offline_and_not_built("rpi4-emulated")
    recipe = tmp_path / "digits.toml"  # same name and stages as the default run: its stages are cached
    text = (REPO / "recipes" / "digits.toml").read_text()
    text = text.replace('devices = ["host"]', 'devices = ["host", "rpi4-emulated"]')
    text = text.replace("latency_p90_ms = 5.0", "latency_p90_ms = 1000.0")
    assert '"rpi4-emulated"]' in text and "latency_p90_ms = 1000.0" in text
    recipe.write_text(text)
    proc = run_cli("--json", "run", str(recipe), "--workdir", str(work_copy(default_run, tmp_path)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    emulated = report["validation"]["rpi4-emulated"]
    assert emulated["kind"] == "qemu-arm64" and emulated["emulated"] is True
    assert emulated["machine"] == "aarch64" and emulated["cpu"] == "Cortex-A72"
    assert emulated["runtime"]["name"] == "ai-edge-litert"
    assert emulated["parity"] == IDENTICAL
    assert emulated["outputs_sha256"] == report["validation"]["host"]["outputs_sha256"]
    latency = [g["name"] for g in report["gate"]["results"] if g["name"].startswith("latency")]
    assert latency == ["latency_p90_ms.host"]  # the emulator's latency is not a board's


def test_a_latency_budget_on_an_emulated_device_is_a_recipe_error(
    default_run: dict[str, Any], profiles: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "digits.toml"
    text = (REPO / "recipes" / "digits.toml").read_text()
    text = text.replace('devices = ["host"]', 'devices = ["host", "rpi4-emulated"]')
    recipe.write_text(text.replace("latency_p90_ms = 5.0", "latency_p90_ms = { rpi4-emulated = 10.0 }"))
    for command, work in (("validate", work_copy(default_run, tmp_path)), ("run", tmp_path / "fresh")):
        proc = run_cli(command, str(recipe), "--workdir", str(work), cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "budgets.latency_p90_ms names rpi4-emulated" in proc.stderr and "Traceback" not in proc.stderr
        assert "budget a real device" in proc.stderr
    assert not (tmp_path / "fresh" / "digits" / "train").exists()  # said before any training


def test_a_phone_without_python_is_measured_with_a_benchmark_binary(
    default_run: dict[str, Any], profiles: Path, tmp_path: Path, model: Path
) -> None:
    binary = tmp_path / "benchmark_model"
    binary.write_text(f"#!{sys.executable}\n" + (FAKES / "benchmark_model.py").read_text())
    (profiles / "phone-bench.toml").write_text(
        f'kind = "adb"\nbenchmark = "{binary}"\nthreads = 1\npython = "/no/python/here"\n'
    )
    record = run("phone-bench", model, runs=30)
    lat = record["latency_ms"]
    assert lat["runs"] == 30 and lat["p90"] is None and 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["max"]
    assert record["runtime"]["name"] == "benchmark_model" and record["outputs"] is None
    assert record["machine"] and record["cpu"] and record["init_ms"] > 0
    assert (tmp_path / "phone" / "data/local/tmp/edgepack/benchmark_model").stat().st_mode & 0o111
    # Through validate: no parity (no outputs), and the p95 stands in for a p90 budget.
    recipe = tmp_path / "digits.toml"
    text = (
        (REPO / "recipes" / "digits.toml")
        .read_text()
        .replace('devices = ["host"]', 'devices = ["host", "phone-bench"]')
    )
    recipe.write_text(text.replace("latency_p90_ms = 5.0", "latency_p90_ms = { phone-bench = 1000.0 }"))
    proc = run_cli("--json", "run", str(recipe), "--workdir", str(work_copy(default_run, tmp_path)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["validation"]["phone-bench"]["parity"]["ok"] is None
    gate = next(g for g in report["gate"]["results"] if g["name"] == "latency_p90_ms.phone-bench")
    assert gate["passed"] and "p95, an upper bound of the p90" in gate["detail"]
    assert gate["measured"] == report["validation"]["phone-bench"]["latency_ms"]["p95"]
    # A binary that is not there is a profile mistake.
    (profiles / "phone-bench.toml").write_text('kind = "adb"\nbenchmark = "no/such/benchmark_model"\n')
    result = invoke("devices", "check", "phone-bench")
    assert result.exit_code == 2 and "phone-bench.toml: benchmark" in result.stderr, result.output


def test_the_throughput_grid_runs_over_ssh_and_adb_like_on_host(model: Path, profiles: Path) -> None:
    from edgepack.devices.drivers import run_device

    grid = ((1, 1), (2, 1), (1, 4))
    for name in ("ssh-test", "phone"):
        req = RunRequest(model, None, 5, 1, 1, grid=grid)
        record = run_device(load(name), req, NullReporter(), f"validate {name}")
        cells = record["throughput"]["cells"]
        assert [(c["threads"], c["batch"]) for c in cells] == list(grid), name
        assert [c["error"] for c in cells] == [None, None, None] and min(c["ips"] for c in cells) > 0, name
        assert cells[0]["latency_ms"] == record["latency_ms"], name  # the latency run is its own cell
