"""The stage cache: content-addressed stage ids, and stage directories written atomically.

A stage's id is the sha256 of its name, its resolved settings, the ids of the stages it reads, the
toolchain versions and a fingerprint of edgepack's own code (every `.py` file of the package), so an
upgraded or edited edgepack never reuses a stale stage. Its outputs live in `WORKDIR/RECIPE/STAGE/` with a `stage.json`; when that
file holds the same id (and a record that reads back), the stage is a cache hit. Each stage
directory is written to a temporary directory and renamed into place, so an interrupted run never
leaves a half-written stage.

The cache may be shared by processes and machines (a work folder on NFS): a stage is looked up and
built under its lock (`WORKDIR/RECIPE/.locks/STAGE.lock`), so of two processes that need the same
uncached stage one builds it and the other waits, then reads it from the cache. Only the lock's holder
writes a stage's temporary directory, so it removes those a killed writer left, and no one else's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from edgepack.bundle.manifest import toolchain_versions
from edgepack.fsutil import clean_stale_temps, locked, replace_dir, temp_dir_beside
from edgepack.native import captured_native_logs
from edgepack.pipeline.timing import StageClock
from edgepack.progress import Reporter
from edgepack.recipe.load import canonical_json
from edgepack.records import Record

STAGE_FILE = "stage.json"
LOCKS = ".locks"  # a recipe's stage locks, beside its stages
R = TypeVar("R", bound=Record)


@dataclass
class StageOutput(Generic[R]):
    """What a stage produced: its id, its directory, its record, and whether it came from the cache."""

    name: str
    id: str
    dir: Path
    record: R
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The stage as `--json` shows it: id, cache state, directory and the record's fields."""
        return {"id": self.id, "cached": self.cached, "dir": str(self.dir), **self.record.to_dict()}


class StageCache:
    """The stages of one recipe's run under `root`, each run at most once per process."""

    def __init__(self, root: Path, reporter: Reporter, use_cache: bool = True, quiet_native: bool = True) -> None:
        self.root = root
        self.reporter = reporter
        self.use_cache = use_cache
        self.quiet_native = quiet_native
        self.done: dict[str, StageOutput[Any]] = {}
        self.clock = StageClock()  # each stage's own wall seconds (pipeline/timing.py)
        root.mkdir(parents=True, exist_ok=True)

    def stage_id(self, name: str, config: Any, inputs: dict[str, str]) -> str:
        """The content hash of a stage: its settings, its inputs' ids, the toolchain and edgepack's code."""
        payload = {
            "stage": name,
            "config": config,
            "inputs": inputs,
            "toolchain": toolchain_versions(),
            "edgepack_code": code_fingerprint(),
        }
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]

    def adopt(self, name: str, stage: StageOutput[R]) -> StageOutput[R]:
        """Make `stage` this run's stage `name` (a choice's pick: `convert-dense-per-tensor` as `convert`)."""
        self.done[name] = stage
        return stage

    def run(self, name: str, stage_id: str, kind: type[R], body: Callable[[Path], R]) -> StageOutput[R]:
        """The stage from the cache when its id matches, else `body(tmp_dir)` written atomically."""
        if name in self.done:
            return self.done[name]
        with self.clock.timed(name):
            out = self._run(name, stage_id, kind, body)
        self.done[name] = out
        return out

    def _run(self, name: str, stage_id: str, kind: type[R], body: Callable[[Path], R]) -> StageOutput[R]:
        def waiting() -> None:
            self.reporter.stage(name, "waiting: another process is building it")

        with locked(self.root / LOCKS / f"{name}.lock", waiting):
            clean_stale_temps(self.root, name)  # a killed writer's: only the lock's holder writes them
            return self._build(name, stage_id, kind, body)

    def _build(self, name: str, stage_id: str, kind: type[R], body: Callable[[Path], R]) -> StageOutput[R]:
        target = self.root / name
        cached = self._load(target, stage_id, kind)
        if cached is not None:
            self.reporter.stage(name, "cached")
            out = StageOutput(name, stage_id, target, cached, cached=True)
        else:
            self.reporter.stage(name, "running")
            tmp = temp_dir_beside(target)
            try:
                with captured_native_logs(self.quiet_native):
                    record = body(tmp)
                (tmp / STAGE_FILE).write_text(json.dumps({"id": stage_id, "record": record.to_dict()}, indent=2))
                replace_dir(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            out = StageOutput(name, stage_id, target, record)
        return out

    def _load(self, target: Path, stage_id: str, kind: type[R]) -> R | None:
        if not self.use_cache:
            return None
        try:
            saved = json.loads((target / STAGE_FILE).read_text())
            return kind.from_dict(saved["record"]) if saved.get("id") == stage_id else None
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            return None


@functools.lru_cache(maxsize=4)
def code_fingerprint(package: Path | None = None) -> str:
    """sha256 over the package's Python files (relative names and bytes, sorted): any edit changes it."""
    root = package or Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        if "__pycache__" not in file.parts:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest()
