"""What every device driver shares: the run request, the runner's command line, its exit codes.

The runner (`runners/runner.py`) is the only code that runs on a device. Each driver ships it with the
model (and the inputs), runs it with the arguments built here, and turns its exit status into
one of edgepack's errors with `runner_failure`.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack.errors import DeviceUnreachable, EdgepackError, StageError

EXIT_NO_RUNTIME = 3  # the runner's own exit codes (see runner.py)
EXIT_MEMORY = 5
EXIT_BAD_MODEL = 6
EXIT_TIMEOUT = 124  # coreutils `timeout`
EXIT_NOT_FOUND = 127  # the shell: command not found
TAIL_LINES = 12
# the timing fields of a record from a device whose figures are not a board's timings (tflm: the host with
# reference kernels; ethos-u: an estimate, nothing runs)
UNTIMED: dict[str, Any] = {"latency_ms": None, "init_ms": None, "warmup": 0, "threads": 1, "peak_rss_kb": None}


@dataclass(frozen=True)
class RunRequest:
    """One benchmark run: the model, the inputs (.npz, or None for seeded random ones), counts."""

    model: Path
    inputs: Path | None
    runs: int
    warmup: int
    threads: int
    seed: int = 0
    work_dir: Path | None = None  # where a driver that writes files (ethos-u: Vela's output) keeps them
    grid: tuple[tuple[int, int], ...] = ()  # the throughput cells (threads, batch) to time besides; () none

    @property
    def invokes(self) -> int:
        """How many invokes the runner makes: warmup and runs, once more per grid cell besides the run's own."""
        extra = [cell for cell in self.grid if cell != (self.threads, 1)]
        return (self.warmup + self.runs) * (1 + len(extra))

    @property
    def what(self) -> str:
        """The run in a few words, for a progress bar: its runs, and the grid's cells."""
        return f"{self.runs} runs" + (f" + a throughput grid of {len(self.grid)} cells" if self.grid else "")


def runner_args(
    req: RunRequest,
    model: str,
    inputs: str | None,
    runtime: str = "auto",
    cpus: list[int] | None = None,
    memory_limit: int | None = None,
) -> list[str]:
    """The runner's arguments after the script path, with `model`/`inputs` as the device sees them."""
    args = [
        model,
        "--runs",
        str(req.runs),
        "--warmup",
        str(req.warmup),
        "--threads",
        str(req.threads),
        "--seed",
        str(req.seed),
        "--runtime",
        runtime,
    ]
    if inputs:
        args += ["--inputs", inputs]
    if req.grid:
        args += ["--grid", ",".join(f"{threads}x{batch}" for threads, batch in req.grid)]
    if cpus:
        args += ["--cpus", ",".join(str(c) for c in cpus)]
    if memory_limit:
        args += ["--memory-limit", str(memory_limit)]
    return args


def shell_join(argv: list[str]) -> str:
    """`argv` quoted for a POSIX shell on the device."""
    return " ".join(shlex.quote(a) for a in argv)


def parse_result(stdout: str, label: str) -> dict[str, Any]:
    """The runner's JSON object (its last non-empty stdout line)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        record = json.loads(lines[-1])
        if not isinstance(record, dict):
            raise ValueError("not an object")
        return record
    except (IndexError, ValueError) as exc:
        raise StageError(
            f"{label}: the runner's output is not its JSON result",
            context=tail(stdout) or "(no output)",
            code="runner-output",
        ) from exc


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` non-empty lines of `text`."""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def runner_failure(
    label: str, returncode: int, stderr: str, *, timeout_s: float | None = None, python: str = "python3"
) -> EdgepackError:
    """The error for a runner that exited with `returncode` (negative: killed by that signal)."""
    context = tail(stderr) or "(no output)"
    if returncode == EXIT_NO_RUNTIME:
        return DeviceUnreachable(
            f"{label}: no LiteRT runtime on the device",
            context=context,
            hint="install one on the device: pip install ai-edge-litert (or tflite-runtime on older boards)",
            code="device-no-runtime",
        )
    if returncode == EXIT_NOT_FOUND:
        return DeviceUnreachable(
            f"{label}: '{python}' was not found on the device",
            context=context,
            hint="install Python 3 and numpy there, or set `python = ...` in the profile",
            code="device-no-python",
        )
    if returncode == EXIT_MEMORY:
        return StageError(
            f"{label}: the model does not fit the device's memory limit",
            context=context,
            hint="raise memory_limit in the device profile, or make the model smaller",
            code="runner-memory",
        )
    if returncode == EXIT_BAD_MODEL:
        return StageError(
            f"{label}: the device's runtime cannot load the model",
            context=context,
            hint="check that its runtime version supports the model's ops (`edgepack devices check`)",
            code="runner-model",
        )
    if returncode == EXIT_TIMEOUT:
        limit = f" in {timeout_s:g} s" if timeout_s else ""
        return StageError(
            f"{label}: the runner did not finish{limit} and was stopped on the device",
            context=context,
            hint="raise run_timeout_s in the device profile, or lower validate.runs",
            code="device-timeout",
        )
    if returncode < 0 or returncode > 128:
        number = -returncode if returncode < 0 else returncode - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return StageError(
            f"{label}: the runner was killed by {name} (a crash in the native runtime, or stopped from outside)",
            context=context,
            hint="run `edgepack validate --debug` for the whole log",
            code="runner-crashed",
        )
    return StageError(
        f"{label}: the runner failed (exit {returncode})",
        context=context,
        hint="run `edgepack validate --debug` for the whole log",
        code="runner-failed",
    )


def follow_progress(lines: Iterable[str], task: Any) -> list[str]:
    """Advance `task` on the runner's `progress DONE TOTAL` lines; the other stderr lines, returned."""
    done, other = 0, []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "progress" and parts[1].isdigit():
            task.advance(int(parts[1]) - done)
            done = int(parts[1])
        else:
            other.append(line.rstrip())
    return other


def collect(
    proc: subprocess.Popen[bytes], payload: bytes | None, timeout_s: float, task: Any = None
) -> tuple[str, str]:
    """Feed `payload` to the child, follow its progress on stderr, read stdout; (stdout, other stderr).

    stdout is read in a thread (a large JSON result must not block the child while stderr is
    followed); past `timeout_s` the child is killed and `subprocess.TimeoutExpired` raised.
    """
    assert proc.stdout is not None and proc.stderr is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout_s, expire)
    timer.start()
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        if proc.stdin is not None:
            try:
                if payload:
                    proc.stdin.write(payload)
                proc.stdin.close()
            except BrokenPipeError:  # the child ended before reading: its stderr says why
                pass
        lines = (line.decode(errors="replace") for line in proc.stderr)
        other = follow_progress(lines, task) if task is not None else [line.rstrip() for line in lines]
        reader.join()
        proc.wait()
    finally:
        timer.cancel()
        _close_pipes(proc, reader)
    if expired.is_set():
        raise subprocess.TimeoutExpired(proc.args, timeout_s)
    return b"".join(chunks).decode(errors="replace"), "\n".join(other)


def _close_pipes(proc: subprocess.Popen[bytes], reader: threading.Thread) -> None:
    """The child's pipes closed once read (left open they leak a descriptor each, a ResourceWarning);
    stdout stays open while the reader thread may still be reading it (after an error mid-way)."""
    streams = [proc.stdin, proc.stderr] + ([] if reader.is_alive() else [proc.stdout])
    for stream in streams:
        if stream is not None:
            with contextlib.suppress(OSError):  # stdin: a child that ended before reading (BrokenPipeError)
                stream.close()
