"""Devices without a model: output parity, profiles and their mistakes, a real sshd on 127.0.0.1 that cannot
be reached or is not trusted, a fake adb without a usable phone, emulator and wheel checks, scheduling, and
benchmark_model's logs (runs of a real model on each device: tests/integration/test_devices.py).

The ssh tests talk to a real OpenSSH server the suite starts (the `sshd` fixture). No phone can be
attached here: the adb tests use tests/fakes/adb, which replays recorded adb output and runs
`adb shell` commands on this machine."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKES, REPO, invoke

from edgepack.devices.base import RunRequest
from edgepack.errors import DeviceUnreachable, StageError
from edgepack.progress import NullReporter


def load(name: str) -> Any:
    from edgepack.devices.profiles import load_device

    return load_device(name)


def run(name: str, model: Path, inputs: Path | None = None, runs: int = 20, **changes: Any) -> dict[str, Any]:
    from edgepack.devices.drivers import run_device

    device = load(name).model_copy(update=changes)
    return run_device(device, RunRequest(model, inputs, runs, 2, 1), NullReporter(), f"validate {name}")


def test_parity_flags_a_different_int8_output() -> None:
    from edgepack.validate.parity import parity

    out = {"shape": [1, 2], "dtype": "int8", "values": [1, 2], "sha256": "a"}
    assert parity([out], [{**out, "values": [1, 3], "sha256": "b"}])["ok"] is False
    float_out = {"shape": [2], "dtype": "float32", "values": [1.0, 2.0], "sha256": "a"}
    near = parity([float_out], [{**float_out, "values": [1.0, 2.0 + 1e-7], "sha256": "b"}])
    assert near["ok"] and not near["identical"]
    assert parity([float_out], [{**float_out, "values": [1.0, 2.1], "sha256": "c"}])["ok"] is False
    # Every output is checked: the second of two differs, and is named, though the first is identical.
    both = parity([out, float_out], [out, {**float_out, "values": [1.0, 2.1], "sha256": "c"}])
    assert both["ok"] is False and both["why"].startswith("output 1:")
    assert [row["ok"] for row in both["outputs"]] == [True, False]


def test_unreachable_board_is_exit_4_within_the_connect_timeout(profiles: Path, sshd: Any) -> None:
    from sshd import free_port

    (profiles / "closed.toml").write_text(sshd.profile("closed", sys.executable, port=free_port()))
    (profiles / "blackhole.toml").write_text(
        sshd.profile("blackhole", sys.executable, host="10.255.255.1", connect_timeout_s=2)
    )
    for name, limit in (("closed", 1.0), ("blackhole", 2.0)):
        start = time.monotonic()
        result = invoke("devices", "check", name)
        elapsed = time.monotonic() - start
        assert result.exit_code == 4, result.output
        assert "cannot reach" in result.stderr and "Traceback" not in result.stderr
        assert elapsed <= limit + 1.0, f"{name}: {elapsed:.1f} s"


def test_a_changed_or_unknown_host_key_is_refused_naming_known_hosts(profiles: Path, sshd: Any, tmp_path: Path) -> None:
    from sshd import keygen

    other = keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text().split(" edgepack")[0]
    changed = tmp_path / "known_hosts_changed"
    changed.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    for name, known, words in (
        ("changed", changed, "does not match the one recorded in"),
        ("unknown", empty, "is not in"),
    ):
        (profiles / f"{name}.toml").write_text(sshd.profile(name, sys.executable, known_hosts=str(known)))
        with pytest.raises(DeviceUnreachable) as info:
            run(name, Path(os.devnull))
        assert words in info.value.message and str(known) in info.value.message
        assert info.value.code == f"ssh-host-key-{name}"
    assert "127.0.0.1" not in empty.read_text()  # never accepted silently


@pytest.mark.parametrize(("state", "code"), [("none", "adb-no-device"), ("unauthorized", "adb-unauthorized")])
def test_adb_without_a_usable_phone_is_exit_4(
    profiles: Path, monkeypatch: pytest.MonkeyPatch, state: str, code: str
) -> None:
    monkeypatch.setenv("FAKE_ADB_STATE", state)
    result = invoke("devices", "check", "phone")
    assert result.exit_code == 4, result.output
    assert f"error ({code})" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def test_adb_not_installed_says_so(profiles: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = invoke("devices", "check", "phone")
    assert result.exit_code == 4 and "`adb` is not installed" in result.stderr and "apt install adb" in result.stderr


def test_devices_list_shows_shipped_and_project_profiles(profiles: Path) -> None:
    result = invoke("--json", "devices", "list")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"host", "host-1core", "rpi4", "android", "ssh-test", "phone"} <= set(rows)
    assert rows["ssh-test"]["kind"] == "ssh" and rows["ssh-test"]["path"] == str(profiles / "ssh-test.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('kind = "ssh"\n', "host"),
        ('kind = "local"\ncpus = []\n', "cpus"),
        ('kind = "qemu-arm64"\ncpu = "max"\n', "wrong int8 results"),
        ('kind = "qemu-arm64"\ncpu = "cortex-a99"\n', "unknown core 'cortex-a99'; one of: cortex-a35"),
        ('kind = "qemu-arm64"\nwheel = "no/such.whl"\n', "cannot read the wheel"),
        ('kind = "local"\nthreadz = 2\n', "threadz"),
        ('kind = "serial"\n', "kind"),
    ],
)
def test_a_bad_profile_names_the_file_and_field(profiles: Path, text: str, expected: str) -> None:
    (profiles / "bad.toml").write_text(text)
    result = invoke("devices", "check", "bad")
    assert result.exit_code == 2, result.output
    assert str(profiles / "bad.toml") in result.stderr and expected in result.stderr


def test_the_runner_names_arm_cores_from_cpuinfo(tmp_path: Path) -> None:
    """Arm kernels write no "model name": the core comes from "CPU part", the board from "Model"."""
    sys.path.insert(0, str(REPO / "edgepack" / "devices" / "runners"))
    try:
        import runner
    finally:
        sys.path.pop(0)
    # laid out as a Raspberry Pi 4's /proc/cpuinfo under a 64-bit kernel
    assert runner.cpu_description(str(FAKES / "rpi4_cpuinfo.txt")) == "Raspberry Pi 4 Model B Rev 1.4, Cortex-A72"
    bare = tmp_path / "cpuinfo"
    bare.write_text("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n")
    assert runner.cpu_description(str(bare)) == "Cortex-A76"
    bare.write_text(
        "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nprocessor\t: 1\n"
        "CPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nprocessor\t: 7\nCPU implementer\t: 0x41\n"
        "CPU part\t: 0xd44\n"
    )
    assert runner.cpu_description(str(bare)) == "Cortex-A55 + Cortex-X1"  # a big.LITTLE phone
    bare.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n")
    assert runner.cpu_description(str(bare)) == "Intel(R) Xeon(R) CPU @ 2.20GHz"


def test_a_missing_emulator_names_the_debian_packages(
    profiles: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("EDGEPACK_CACHE", str(tmp_path / "cache"))
    result = invoke("devices", "check", "rpi4-emulated")
    assert result.exit_code == 4, result.output
    assert "qemu-aarch64-static and mmdebstrap are not installed" in result.stderr
    assert "apt install qemu-user-static mmdebstrap" in result.stderr
    assert not (tmp_path / "cache").exists()  # nothing half-built


def test_a_wheel_with_entries_outside_its_folder_is_refused(tmp_path: Path) -> None:
    import zipfile

    from edgepack.devices.toolchains.qemu_rootfs import _unpack
    from edgepack.errors import BadInputError

    for name, entry in (("evil.whl", "../../etc/evil"), ("other.whl", "numpy/__init__.py")):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr(entry, "x")
        with pytest.raises(BadInputError, match="outside its folder|not an ai-edge-litert wheel"):
            _unpack(tmp_path / name, tmp_path / "site", "device 'x'")
    assert not (tmp_path / "etc").exists() and not (tmp_path / "site").exists()


def test_different_machines_run_at_once_and_one_machines_devices_in_turn() -> None:
    from edgepack.devices.profiles import AdbDevice, LocalDevice, SshDevice
    from edgepack.validate.schedule import THIS_MACHINE, machine, run_all

    devices = [
        LocalDevice(name="host", kind="local"),
        SshDevice(name="loop", kind="ssh", host="127.0.0.1"),
        SshDevice(name="pi-a", kind="ssh", host="pi-a.local"),
        AdbDevice(name="phone", kind="adb"),
        LocalDevice(name="host-1core", kind="local", cpus=[0]),
    ]
    assert [machine(d) for d in devices] == [
        THIS_MACHINE,
        THIS_MACHINE,
        "ssh pi-a.local",
        "adb (the one attached)",
        THIS_MACHINE,
    ]
    first_of_each = threading.Barrier(3, timeout=20)  # breaks unless the 3 machines run at the same time
    lock, busy, overlaps = threading.Lock(), set(), []

    def work(device: Any) -> str:
        key = machine(device)
        with lock:
            if key in busy:
                overlaps.append(device.name)
            busy.add(key)
        if device.name in ("host", "pi-a", "phone"):
            first_of_each.wait()
        time.sleep(0.05)
        with lock:
            busy.discard(key)
        return f"{device.name} done"

    results = run_all(devices, work)
    assert list(results) == [d.name for d in devices] and results["phone"] == "phone done"
    assert overlaps == []  # this machine's three devices never overlapped

    def fail_on(name: str) -> Any:
        def work(device: Any) -> str:
            if device.name == name:
                raise DeviceUnreachable(f"{name} is off")
            return device.name

        return work

    with pytest.raises(DeviceUnreachable, match="pi-a is off"):
        run_all(devices, fail_on("pi-a"))
    # Phones: an emulator is this machine; a profile without a serial may be any phone named elsewhere.
    assert machine(AdbDevice(name="emu", kind="adb", serial="emulator-5554")) == THIS_MACHINE
    assert machine(AdbDevice(name="tcp", kind="adb", serial="127.0.0.1:5555")) == THIS_MACHINE
    phones = [AdbDevice(name="any", kind="adb"), AdbDevice(name="pixel", kind="adb", serial="R58M41XYZAB")]
    order: list[str] = []
    run_all(phones, lambda d: order.append(f"start {d.name}") or time.sleep(0.05) or order.append(f"end {d.name}"))
    assert order in (
        ["start any", "end any", "start pixel", "end pixel"],
        ["start pixel", "end pixel", "start any", "end any"],
    )


TRANSCRIPTS = FAKES / "benchmark_model_transcripts"


def test_benchmark_model_logs_are_read_in_both_layouts() -> None:
    from edgepack.devices.toolchains.benchmark_model import parse

    new = parse((TRANSCRIPTS / "with-percentiles.txt").read_text(), 50, "phone")
    assert new["latency_ms"] == pytest.approx(
        {
            "p50": 1239.807,
            "p90": None,
            "p95": 1247.415,
            "p99": None,
            "p5": 1238.753,
            "mean": 1240.27,
            "std": 2.565,
            "min": 1238.588,
            "max": 1252.566,
            "runs": 50,
            "source": "benchmark_model",
        }
    )
    assert new["init_ms"] == pytest.approx(5.579) and new["memory_delta_kb"] == round(109.832 * 1024)
    assert new["peak_rss_kb"] is None and new["outputs"] is None
    old = parse((TRANSCRIPTS / "without-percentiles.txt").read_text(), 50, "phone")
    assert old["latency_ms"]["p50"] is None and old["latency_ms"]["mean"] == pytest.approx(249.684)
    assert old["latency_ms"]["min"] == pytest.approx(247.067) and old["latency_ms"]["runs"] == 50
    assert old["peak_rss_kb"] == round(138.809 * 1024) and old["init_ms"] == pytest.approx(16.242)
    with pytest.raises(StageError, match="printed no timings"):
        parse("ERROR: Could not open 'model.tflite'.\n", 50, "phone")
    # An op-profiling summary printed after the timings is not the invoke latency.
    profiled = (TRANSCRIPTS / "with-percentiles.txt").read_text() + (
        "INFO: Profiling Info for Benchmark Initialization:\n"
        "INFO: Timings (microseconds): count=50 first=600000 curr=600000 min=600000 max=600000 avg=600000 std=0\n"
    )
    assert parse(profiled, 50, "phone")["latency_ms"]["mean"] == pytest.approx(1240.27)
    # The warm-up line is never taken for the measured one, even with as many warm-up runs.
    same = (TRANSCRIPTS / "with-percentiles.txt").read_text().replace("at least 1 iterations", "at least 50 iterations")
    same = same.replace("count=1 curr=1357602", "count=50 first=9 curr=9 min=9 max=9 avg=9 std=0")
    assert parse(same, 50, "phone")["latency_ms"]["min"] == pytest.approx(1238.588)
    cut = parse((TRANSCRIPTS / "with-percentiles.txt").read_text(), 80, "phone")["latency_ms"]
    assert cut["runs"] == 50 and "ran 50 of the 80 runs" in cut["note"]
