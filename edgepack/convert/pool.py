"""The conversion worker process, kept warm and reused.

Every conversion runs in a child process (a converter crash must not take edgepack down), but
starting one costs a TensorFlow import (3-4 s here), more than converting a small model. So one
worker is started per edgepack process (`prewarm` starts it early, while training runs) and
serves each conversion in turn: the request's path on its stdin; progress lines, the JSON
report and a `done N` line on its stdout. When it dies (a native crash: a signal), the
conversion is reported as before and the next one starts a fresh worker. It dies with its parent
(Linux: PR_SET_PDEATHSIG, set by the worker itself), and exits at the end of its stdin. The kernel
sends that signal when the *thread* that started the child ends, so workers are started from the
main thread or from one spawner thread that lives as long as the process; one lock serves one
conversion at a time.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from edgepack.errors import StageError


class _Spawner:
    """Starts child processes from one daemon thread that lives as long as the process, for callers
    that are not the main thread (their thread may end before the child should)."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[list[str], dict[str, Any], queue.Queue[Any]]] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        if threading.current_thread() is threading.main_thread():
            return subprocess.Popen(cmd, **kwargs)
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name="edgepack-spawner", daemon=True)
                self.thread.start()
        answer: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.jobs.put((cmd, kwargs, answer))
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _serve(self) -> None:
        while True:
            cmd, kwargs, answer = self.jobs.get()
            try:
                answer.put(subprocess.Popen(cmd, **kwargs))
            except BaseException as exc:  # handed to the caller's thread, raised there
                answer.put(exc)


SPAWNER = _Spawner()


class Worker:
    """One conversion worker: started on first use (or by `prewarm`), restarted after it dies."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[str] | None = None
        self.buffer = b""
        self.lock = threading.RLock()

    def start(self) -> None:
        """Start the worker unless one is alive (it imports TensorFlow at once, then waits)."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                return
            self._release()
            self.log = tempfile.TemporaryFile("w+")
            self.buffer = b""
            self.proc = SPAWNER.popen(
                [sys.executable, "-m", "edgepack.convert.worker", "--serve", str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log,
            )

    def convert(
        self, request: str, on_line: Callable[[str], None], timeout_s: float
    ) -> tuple[int, dict[str, Any], str]:
        """Serve one request: (exit status, the JSON report, the worker's log lines of this request).

        The status is the worker's for the request (0 written, 1 refused), or the negative signal
        number when it died (then the next request starts a new worker)."""
        with self.lock:
            return self._serve(request, on_line, timeout_s)

    def _serve(self, request: str, on_line: Callable[[str], None], timeout_s: float) -> tuple[int, dict[str, Any], str]:
        self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.log is not None
        offset = os.fstat(self.log.fileno()).st_size
        report: dict[str, Any] = {}
        try:
            self.proc.stdin.write(request.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died before reading: the end of its stdout says how
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._line(deadline)
            if line is None:  # it died: a native crash
                code = self.proc.wait()
                log = self._log_since(offset)
                self._release()
                return (code if code < 0 else code or 1), report, log
            if line.startswith("done "):
                return int(line.split()[1]), report, self._log_since(offset)
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                except json.JSONDecodeError:
                    pass  # a line of the converter's own that looks like JSON: not the report
            on_line(line)

    def _line(self, deadline: float) -> str | None:
        """The next stdout line, None at its end; a `StageError` (and the worker killed) after the deadline."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self.stop()
                raise StageError(
                    "the TFLite converter did not finish in time",
                    code="convert-timeout",
                    hint="a very large model or calibration sample; or report a hang",
                )
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def _log_since(self, offset: int) -> str:
        assert self.log is not None
        self.log.flush()
        with open(self.log.fileno(), closefd=False) as handle:
            handle.seek(offset)
            return handle.read()

    def stop(self) -> None:
        """Kill the worker (a timeout, or the end of this process)."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._release()

    def _release(self) -> None:
        """Close a finished worker's pipes and log."""
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass  # a broken pipe to a dead worker
        if self.log is not None:
            self.log.close()
        self.proc, self.log = None, None


WORKER = Worker()
atexit.register(WORKER.stop)


def prewarm() -> None:
    """Start the worker now, so its TensorFlow import overlaps with what runs before the conversion."""
    WORKER.start()
