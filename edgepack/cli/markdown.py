"""The Markdown summary file (`--markdown FILE` on `run` and `gate`): written to FILE and appended to
`$GITHUB_STEP_SUMMARY` when it is set. The text is `output.summary_markdown`'s: the tables the terminal
shows, as GitHub-flavoured Markdown, so the file holds the same rows as the terminal.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgepack.fsutil import atomic_write_text

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def write_summary(path: Path | None, text: str) -> list[Path]:
    """Write `text` to `path` (atomically) and append it to `$GITHUB_STEP_SUMMARY` when that is set (never
    overwriting it, even when `path` is that file); returns the files written."""
    written = []
    step = os.environ.get(STEP_SUMMARY)
    step_path = Path(step) if step else None
    if path is not None and not (step_path is not None and _same(path, step_path)):
        atomic_write_text(path, text)
        written.append(path)
    if step_path is not None and path is not None:
        with open(step_path, "a", encoding="utf-8") as handle:
            handle.write(("\n" if step_path.is_file() and step_path.stat().st_size else "") + text)
        written.append(step_path)
    return written


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()
