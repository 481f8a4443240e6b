"""The machine lock (devices/machines.py): an edgepack process never runs on a machine another edgepack
process on this computer is running on. The test holds this machine's lock as another job would; a real
`edgepack validate` on host says it waits, produces nothing while the lock is held (the lock, not a timer,
keeps it out), and finishes once it is released."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import EDGEPACK, fast_tflite

from edgepack.devices.machines import THIS_MACHINE, lock_path, machine
from edgepack.devices.profiles import load_device
from edgepack.fsutil import locked

WAIT_S = 300.0


def test_a_run_waits_for_the_machine_another_process_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgepack.models.tf import load

    keras = load().keras
    model = fast_tflite(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), tmp_path / "m.tflite", True)
    monkeypatch.setenv("EDGEPACK_LOCK_DIR", str(tmp_path / "locks"))  # this test's locks, and the child's
    held = lock_path(machine(load_device("host")))
    assert machine(load_device("host")) == THIS_MACHINE and held == tmp_path / "locks" / "this-machine.lock"
    out = tmp_path / "out.txt"
    with locked(held), open(out, "w") as stdout:  # another job validating on this machine
        proc = subprocess.Popen(
            [str(EDGEPACK), "validate", "--model", str(model), "--device", "host"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "400"},
        )
        assert proc.stderr is not None
        said = []
        for line in proc.stderr:  # until it says it waits (it blocks on the lock right after)
            said.append(line)
            if "waiting for this machine" in line:
                break
        assert "another edgepack process is running on it" in said[-1], "".join(said)
        assert proc.poll() is None and out.read_text() == ""  # nothing ran, nothing printed, while it is held
    rest = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=WAIT_S) == 0, rest
    assert "host" in out.read_text() and "p90" in out.read_text(), out.read_text()
