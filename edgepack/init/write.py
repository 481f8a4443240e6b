"""Writing the starter recipe: never over an existing file, not even one another process made a moment ago."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgepack.errors import BadInputError
from edgepack.fsutil import TMP_MARK


def exists_error(target: Path) -> BadInputError:
    """The error for a target that exists."""
    return BadInputError(
        f"'{target}' exists: edgepack init never overwrites a file",
        context=str(target),
        hint="name another file with --out FILE (or move that one away)",
        code="file-exists",
    )


def write_new(target: Path, text: str) -> None:
    """Write `text` to `target`, which must not exist: a complete temp file beside it, hard-linked into place
    (a link fails if the name exists, even when another process made it a moment ago)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{target.name}{TMP_MARK}", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise exists_error(target) from None
        except OSError:  # a filesystem without hard links: an exclusive create instead
            _create_exclusive(target, text)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_exclusive(target: Path, text: str) -> None:
    try:
        handle = open(target, "x", encoding="utf-8")
    except FileExistsError:
        raise exists_error(target) from None
    try:
        with handle:
            handle.write(text)
    except BaseException:  # the file is this call's own, half written: it would block the next `edgepack init`
        target.unlink(missing_ok=True)
        raise
