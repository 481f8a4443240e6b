"""The stage cache shared by processes (a work folder several runs, or machines, use at once): two processes
racing on one uncached stage, one builds it while the other waits on its lock and then reads it from the
cache; no process sees a partial stage directory; a killed builder's leftovers are cleaned by the next one.
Each racer is a real process (tests/stage_racer.py) whose stage body waits for this test's signal file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import REPO

from edgepack.fsutil import TMP_MARK

RACER = Path(__file__).resolve().parents[1] / "stage_racer.py"
WAIT_S = 120.0  # how long the test waits for a signal before failing (never a pass condition)


def _racer(root: Path, signals: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(RACER), str(root), str(signals)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert proc.poll() is None, f"the racer ended before {path.name}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {path.name} after {WAIT_S:g} s"
        time.sleep(0.01)


def _finish(proc: subprocess.Popen[str]) -> tuple[list[str], dict[str, Any]]:
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    return lines[:-1], json.loads(lines[-1])


def test_one_process_builds_the_stage_and_the_other_waits_and_reuses_it(tmp_path: Path) -> None:
    root, signals = tmp_path / "work" / "recipe", tmp_path / "signals"
    signals.mkdir()
    first = _racer(root, signals)
    _wait_for(signals / "started", first)  # the first holds the stage's lock and is inside its body
    assert not (root / "convert").exists()  # only its temporary directory: nothing a reader could take
    assert [p.name for p in root.iterdir() if p.name.startswith(f"convert{TMP_MARK}")]
    second = _racer(root, signals)
    assert second.stdout is not None
    said = second.stdout.readline().strip()
    assert said == "stage convert: waiting: another process is building it", said  # blocked on the lock
    assert not (root / "convert").exists() and second.poll() is None
    (signals / "go").write_text("")
    first_events, built = _finish(first)
    second_events, reused = _finish(second)
    assert first_events == ["stage convert: running"] and not built["cached"]
    assert second_events == ["stage convert: cached"] and reused["cached"]  # after its "waiting" line
    assert reused == {**built, "cached": True} and built["file"] == f"built by {built['pid']}"
    assert (signals / "built.log").read_text().split() == [str(built["pid"])]  # built once
    assert not [p for p in root.iterdir() if TMP_MARK in p.name]


def test_a_killed_builders_leftovers_are_cleaned_and_the_stage_built_again(tmp_path: Path) -> None:
    root, signals = tmp_path / "work" / "recipe", tmp_path / "signals"
    signals.mkdir()
    killed = _racer(root, signals)
    _wait_for(signals / "started", killed)
    killed.send_signal(signal.SIGKILL)  # mid-body: its temporary directory stays, its lock goes with it
    killed.communicate(timeout=WAIT_S)
    left = [p for p in root.iterdir() if p.name.startswith(f"convert{TMP_MARK}")]
    assert left and not (root / "convert").exists()
    (signals / "started").unlink()
    (signals / "go").write_text("")
    events, built = _finish(_racer(root, signals))
    assert events == ["stage convert: running"] and not built["cached"]  # nothing half-built was taken
    assert built["pid"] != killed.pid and not [p for p in left if p.exists()]
    assert (signals / "built.log").read_text().split() == [str(killed.pid), str(built["pid"])]
