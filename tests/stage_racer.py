"""One process of the shared-stage-cache race (tests/integration/test_shared_cache.py): it asks the real
`StageCache` under ROOT for the stage `convert`, whose body says it started (SIGNALS/started, and a line in
SIGNALS/built.log), waits for the test's SIGNALS/go, and only then writes its file; stage events go to stdout,
one per line, and the stage it got last, as JSON.

    python tests/stage_racer.py ROOT SIGNALS
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack.pipeline.cache import StageCache
from edgepack.records import Record

GO_DEADLINE_S = 300.0  # a test that never says go has failed already; the body stops waiting then


@dataclass(frozen=True)
class Made(Record):
    pid: int


class Printer:
    """A reporter that prints each stage event on its own line, at once."""

    def stage(self, name: str, detail: str) -> None:
        print(f"stage {name}: {detail}", flush=True)

    def task(self, description: str, total: int | None) -> Any:
        return nullcontext()

    def note(self, message: str) -> None:
        print(f"note {message}", flush=True)


def main(root: Path, signals: Path) -> None:
    def body(tmp: Path) -> Made:
        with open(signals / "built.log", "a") as log:
            log.write(f"{os.getpid()}\n")
        (signals / "started").write_text(str(os.getpid()))
        deadline = time.monotonic() + GO_DEADLINE_S
        while not (signals / "go").exists():  # the test's signal, not a timer
            if time.monotonic() > deadline:
                sys.exit(9)
            time.sleep(0.01)
        (tmp / "model.bin").write_text(f"built by {os.getpid()}")
        return Made(os.getpid())

    stage = StageCache(root, Printer()).run("convert", "id-1", Made, body)
    data = {"cached": stage.cached, "pid": stage.record.pid, "file": (stage.dir / "model.bin").read_text()}
    print(json.dumps(data), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
