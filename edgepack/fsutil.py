"""Atomic file and directory writes: write beside the target, then rename into place."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}{TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of `atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def temp_dir_beside(target: Path) -> Path:
    """A fresh empty directory next to `target`, to fill and then `replace_dir` into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{target.name}{TMP_MARK}", dir=target.parent))


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished directory `tmp` to `target`, replacing what was there.

    The old directory is renamed aside first and removed only after the new one is in place,
    so an interruption leaves either the old complete directory or the new complete one.
    """
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{target.name}{TMP_MARK}old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_stale_temps(folder: Path, name: str | None = None) -> None:
    """Remove the temporary entries an interrupted run left in `folder`; only `name`'s when given (a caller
    holding `name`'s lock knows no live writer has one: `convert` does not own `convert-dense.tmp-...`)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.startswith(f"{name}{TMP_MARK}") if name is not None else TMP_MARK in entry.name:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@contextmanager
def locked(path: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive lock on the file `path` across processes, and across machines that share its folder
    (on NFS, Linux turns `flock` into a POSIX lock the server keeps). `waiting()` is called once, before
    blocking, when another holder has it. Where there is no `fcntl` (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - POSIX everywhere edgepack is tested
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def path_digest(path: Path) -> str:
    """sha256 over a file, or over every file of a directory (names and bytes)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []:
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
