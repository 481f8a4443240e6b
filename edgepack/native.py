"""Keep native (C++) log lines of TensorFlow and LiteRT off the terminal, but not lost.

TensorFlow's and LiteRT's C++ code writes straight to file descriptor 2 (absl and oneDNN notes,
the converter's statistics line, XNNPACK's delegate note), which Python cannot filter. While a
stage runs, fd 2 points at a temporary file; the tail of that file goes into the error when the
stage fails. Rich output keeps a duplicate of the real stderr (`terminal_stderr`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from edgepack.errors import EdgepackError

_terminal: dict[int, IO[str]] = {}


def terminal_stderr() -> IO[str]:
    """A file on the original stderr that stays there while fd 2 is redirected.

    Without a real descriptor (a test runner's captured stream), that stream itself.
    """
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError, AttributeError):
        return sys.stderr
    if fd not in _terminal:
        _terminal[fd] = os.fdopen(os.dup(fd), "w", buffering=1)
    return _terminal[fd]


@contextmanager
def captured_native_logs(enabled: bool = True) -> Iterator[None]:
    """Send fd 2 to a temporary file for the duration; add its tail to a failing EdgepackError."""
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError, AttributeError):
        fd = None
    if not enabled or fd is None:
        yield
        return
    terminal_stderr()
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(log.fileno(), fd)
        try:
            yield
        except EdgepackError as exc:
            _attach_tail(exc, log)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)


def _attach_tail(exc: EdgepackError, log: IO[bytes]) -> None:
    log.flush()
    log.seek(0)
    lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    if lines:
        tail = "\n".join(lines[-8:])
        exc.context = f"{exc.context}\nnative log (last lines):\n{tail}" if exc.context else f"native log:\n{tail}"
