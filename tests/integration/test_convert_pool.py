"""The warm conversion worker: reused between conversions, restarted after it dies, killed at a
timeout, and gone when its parent is."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from edgepack.errors import StageError
from edgepack.progress import NullReporter
from edgepack.recipe.convert import ConvertSettings


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tf_keras model's SavedModel export: what the worker converts."""
    from edgepack.models.tf import load

    keras = load().keras
    inputs = keras.Input((6,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, name="y")(keras.layers.Dense(8, activation="relu")(inputs)))
    path = tmp_path_factory.mktemp("pool") / "saved_model"
    with redirect_stdout(io.StringIO()):
        model.export(str(path))
    return path


def _convert(saved_model: Path, out: Path, mode: str = "float32", samples: int = 16) -> None:
    from edgepack.convert.isolated import convert_isolated

    settings = ConvertSettings(mode=mode, io="float32" if mode != "int8" else "int8", error_report=False)
    calibration = np.random.default_rng(0).normal(size=(samples, 6)).astype(np.float32)
    convert_isolated(saved_model, settings, calibration, out, NullReporter())


def _gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def test_one_worker_serves_conversions_in_turn_and_a_dead_one_is_replaced(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgepack.convert.pool import WORKER

    _convert(saved_model, tmp_path / "a.tflite")
    assert WORKER.proc is not None
    first = WORKER.proc.pid
    _convert(saved_model, tmp_path / "b.tflite", "int8")
    assert WORKER.proc.pid == first  # warm: no new TensorFlow import
    monkeypatch.chdir(tmp_path)  # the worker keeps its own working directory: paths go to it absolute
    _convert(saved_model, Path("relative.tflite"))
    assert WORKER.proc.pid == first and (tmp_path / "relative.tflite").is_file()
    assert (tmp_path / "a.tflite").read_bytes()[4:8] == b"TFL3" and (tmp_path / "b.tflite").stat().st_size > 0
    os.kill(first, signal.SIGKILL)  # dies between conversions
    WORKER.proc.wait()
    _convert(saved_model, tmp_path / "c.tflite")
    assert WORKER.proc.pid != first and (tmp_path / "c.tflite").is_file()


class _KillOnFirstProgress:
    """A reporter whose progress bar kills the worker the first time the worker reports progress.

    No timer: while the parent is inside `advance` it reads nothing more from the worker, and the worker
    cannot finish without writing one `progress N` line per calibration sample, far more bytes than the
    parent's read chunk and the pipe hold together. So the worker is mid-conversion when it dies, on any
    machine, however fast."""

    def __init__(self) -> None:
        self.killed: int | None = None

    def stage(self, name: str, detail: str) -> None:
        return None

    def note(self, message: str) -> None:
        return None

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[_KillOnFirstProgress]:
        yield self

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        from edgepack.convert.pool import WORKER

        if self.killed is None and WORKER.proc is not None:
            self.killed = WORKER.proc.pid
            os.kill(self.killed, signal.SIGKILL)  # as a converter segfault ends it


def test_a_worker_killed_mid_conversion_is_a_crash_and_the_next_conversion_works(
    saved_model: Path, tmp_path: Path
) -> None:
    from edgepack.convert.isolated import convert_isolated
    from edgepack.convert.pool import WORKER

    samples = 100_000
    progress_bytes = sum(len(f"progress {n}\n") for n in range(1, samples + 1))
    assert progress_bytes > 8 * 65536  # the parent's read chunk (64 KiB) and a pipe (64 KiB) hold far less
    WORKER.start()
    reporter = _KillOnFirstProgress()
    calibration = np.random.default_rng(0).normal(size=(samples, 6)).astype(np.float32)
    settings = ConvertSettings(mode="int8", io="int8", error_report=False)
    with pytest.raises(StageError, match=r"crashed \(SIGKILL\)") as error:
        convert_isolated(saved_model, settings, calibration, tmp_path / "dead.tflite", reporter)
    assert reporter.killed is not None
    assert error.value.code == "converter-crashed"
    assert not (tmp_path / "dead.tflite").exists()
    _convert(saved_model, tmp_path / "alive.tflite")
    assert WORKER.proc is not None and WORKER.proc.pid != reporter.killed and (tmp_path / "alive.tflite").is_file()


def test_a_conversion_past_its_timeout_kills_the_worker(saved_model: Path, tmp_path: Path) -> None:
    from edgepack.convert.isolated import convert_isolated
    from edgepack.convert.pool import WORKER

    WORKER.start()
    pid = WORKER.proc.pid
    settings = ConvertSettings(mode="int8", error_report=False)
    with pytest.raises(StageError, match="did not finish in 0 s") as error:
        convert_isolated(
            saved_model,
            settings,
            np.zeros((16, 6), np.float32),
            tmp_path / "slow.tflite",
            NullReporter(),
            timeout_s=0.01,
        )
    assert error.value.code == "convert-timeout" and WORKER.proc is None
    assert _gone(pid)


def test_the_worker_dies_with_its_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from edgepack.convert.pool import WORKER; WORKER.start(); print(WORKER.proc.pid, "
            "flush=True); import time; time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # no atexit, no end of stdin handling: the kernel tells the worker
        parent.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if _gone(worker):
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the worker outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()  # type: ignore[union-attr]


def test_a_worker_started_from_a_thread_outlives_that_thread(saved_model: Path, tmp_path: Path) -> None:
    """Linux kills a PR_SET_PDEATHSIG child when the *thread* that forked it ends: a library user's
    thread that prewarms and ends must not take the worker (and a later conversion) with it."""
    from edgepack.convert.pool import WORKER

    def prewarm_then_work() -> None:
        WORKER.start()
        # A served conversion proves the worker has asked for its parent-death signal (it does so before
        # serving), so the thread ends after that, on any machine.
        _convert(saved_model, tmp_path / "in-thread.tflite")

    WORKER.stop()
    starter = threading.Thread(target=prewarm_then_work)
    starter.start()
    starter.join()
    assert WORKER.proc is not None and (tmp_path / "in-thread.tflite").is_file()
    pid = WORKER.proc.pid
    _convert(saved_model, tmp_path / "after.tflite")
    assert WORKER.proc is not None and WORKER.proc.pid == pid and (tmp_path / "after.tflite").is_file()
