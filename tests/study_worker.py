"""One worker of the study tests (tests/unit/test_study.py): it joins the study NAME in the journal file
JOURNAL over the labels a..e with the real `run_study`; each trial appends "LABEL PID" to SIGNALS/ran.log.
It first says it is here (SIGNALS/here-PID) and runs no trial until SIGNALS holds WORKERS such files, so the
workers race for the trials; the label HOLD (if given) waits for SIGNALS/go, which the kill test never gives.
It prints its result as JSON.

    python tests/study_worker.py JOURNAL NAME SIGNALS WORKERS [HOLD]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from edgepack.pipeline.study import run_study

LABELS = ["a", "b", "c", "d", "e"]
DEADLINE_S = 300.0  # a signal that never comes: the test has failed already


def wait_for(check: Any) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():  # the test's (or the other worker's) signal, not a timer
        if time.monotonic() > deadline:
            sys.exit(9)
        time.sleep(0.01)


def main(journal: str, name: str, signals: Path, workers: int, hold: str | None) -> None:
    (signals / f"here-{os.getpid()}").write_text("")
    wait_for(lambda: len(list(signals.glob("here-*"))) >= workers)

    def run_one(label: str) -> dict[str, Any]:
        with open(signals / "ran.log", "a") as log:
            log.write(f"{label} {os.getpid()}\n")
        if label == hold:
            (signals / f"holding-{label}").write_text(str(os.getpid()))
            wait_for((signals / "go").exists)
        return {"label": label, "size": LABELS.index(label) + 1}

    result = run_study(f"journal:{journal}", name, LABELS, run_one, "size")
    print(json.dumps({"records": result.records, "ran": list(result.ran_here), "trials": result.trials}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
