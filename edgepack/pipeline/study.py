"""A search's candidates as the trials of one Optuna study that several processes, and machines sharing its
storage, work through together: a journal file (`journal:PATH`, no server) or any database URL Optuna takes.

Each candidate is enqueued as a trial (its label a user attribute); a worker claims a waiting trial
(Optuna's claim is atomic: a trial runs in one worker), runs it, and stores its record in the trial. Workers
enqueue what no trial covers (so the first one fills the study, and a failed trial gets a fresh one); a trial
claimed for a candidate another trial already covers is pruned as a duplicate, unrun. A worker killed
mid-trial leaves it running; the next worker started on the same machine finds its process gone, marks the
trial failed, and the candidate is tried again. When every candidate has a complete trial, every worker
returns the same records, read from the study.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepack.errors import BadInputError

IDLE_S = 0.2  # how often an idle worker looks at the study again, while other workers finish their trials
ORPHAN_S = 60.0  # a running trial with no worker named this long after its claim: its claimer died at once
LABEL, RECORD, WORKER, ERROR = "candidate", "record", "worker", "error"


@dataclass(frozen=True)
class StudyResult:
    """The study's records, one per candidate label, and what this worker did."""

    name: str
    storage: str
    records: dict[str, dict[str, Any]]  # label -> the candidate's record (every worker's, from the study)
    ran_here: tuple[str, ...]  # the labels this worker ran
    trials: dict[str, int]  # trials by state (COMPLETE, FAIL, PRUNED: duplicates, ...)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the search report."""
        return {"name": self.name, "storage": self.storage, "ran_here": list(self.ran_here), "trials": self.trials}


def open_storage(url: str) -> Any:
    """The Optuna storage `url` names: `journal:PATH` (a journal file; its folder made), else a database URL."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy's URL and connection errors, whatever their class
        raise BadInputError(
            f"search storage {url!r} cannot be opened: {str(exc).splitlines()[0]}",
            context="convert.search.storage",
            hint='give "journal:PATH" (a file every worker can reach) or a database URL such as sqlite:///search.db',
            code="search-storage",
        ) from exc


def run_study(
    url: str, name: str, labels: list[str], run_one: Callable[[str], dict[str, Any]], objective: str
) -> StudyResult:
    """Work through the study `name` in the storage `url` until each of `labels` has a complete trial, running
    the claimed ones with `run_one(label)` (its record's `objective` is the trial's value); the records."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    _stop_on_sigterm()
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
    ran: list[str] = []
    while True:
        _reap_dead_workers(study, storage)
        done = _fill(study, labels)
        if done is not None:
            break
        trial_id = _claim(study, storage)
        if trial_id is None:
            time.sleep(IDLE_S)  # the rest are running elsewhere
            continue
        storage.set_trial_user_attr(trial_id, WORKER, worker_id())  # first: a dead claimer can be told
        label = _label(storage, trial_id)
        if label is None or _covered(study, storage, trial_id, label):
            _drop(storage, trial_id, label)
            continue
        try:
            record = run_one(label)
            storage.set_trial_user_attr(trial_id, RECORD, record)  # a record that does not store fails the trial
            value = record.get(objective)
            storage.set_trial_state_values(
                trial_id, optuna.trial.TrialState.COMPLETE, [float("inf") if value is None else float(value)]
            )
        except BaseException as exc:
            _fail(storage, trial_id, f"{type(exc).__name__}: {exc}"[:500])
            raise
        ran.append(label)
    while (extra := _claim(study, storage)) is not None:  # what is still waiting duplicates a complete trial
        _drop(storage, extra, _label(storage, extra))
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    return StudyResult(name, url, {label: done[label] for label in labels}, tuple(ran), states)


def _fail(storage: Any, trial_id: int, why: str) -> None:
    """Mark the trial failed, saying why, best effort: the error that failed it is the one to surface."""
    from optuna.trial import TrialState

    try:
        storage.set_trial_user_attr(trial_id, ERROR, why)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except Exception:  # noqa: BLE001 - the storage failing too must not hide the trial's own error
        pass


def _stop_on_sigterm() -> None:
    """SIGTERM (a parent stopping its workers, a CI job cancelled) as SystemExit, so the trial is marked failed."""
    import signal
    import sys
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def worker_id() -> dict[str, Any]:
    """This process: its machine (host name and boot) and pid, so a worker on the same machine can tell it died."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid()}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _fill(study: Any, labels: list[str]) -> dict[str, dict[str, Any]] | None:
    """The records when every label has a complete trial; else None, after enqueueing each label no trial
    covers (none complete, running or waiting)."""
    from optuna.trial import TrialState

    covered: dict[str, set[TrialState]] = {label: set() for label in labels}
    records: dict[str, dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False):
        label = trial.user_attrs.get(LABEL)
        if label in covered:
            covered[label].add(trial.state)
            if trial.state == TrialState.COMPLETE and label not in records:
                records[label] = trial.user_attrs[RECORD]
    if len(records) == len(labels):
        return records
    live = {TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING}
    for label in labels:
        if not covered[label] & live:
            study.enqueue_trial({}, user_attrs={LABEL: label})
    return None


def _claim(study: Any, storage: Any) -> int | None:
    """A waiting trial, now running in this worker (Optuna's claim: no other worker gets it); None if none."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                return int(trial._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def _label(storage: Any, trial_id: int) -> str | None:
    label = storage.get_trial(trial_id).user_attrs.get(LABEL)
    return label if isinstance(label, str) else None


def _covered(study: Any, storage: Any, trial_id: int, label: str) -> bool:
    """Whether another trial covers `label`: complete, or running. Two workers that claimed duplicates of one
    label at once may both drop theirs (never both run it): the label is enqueued again, by whoever looks."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if trial._trial_id != trial_id and trial.user_attrs.get(LABEL) == label:
            return True
    return False


def _drop(storage: Any, trial_id: int, label: str | None) -> None:
    """A claimed trial another covers (or not ours): pruned, never run."""
    from optuna.trial import TrialState

    storage.set_trial_user_attr(trial_id, ERROR, f"a duplicate: another trial covers {label!r}")
    storage.set_trial_state_values(trial_id, TrialState.PRUNED)


def _reap_dead_workers(study: Any, storage: Any) -> None:
    """Mark failed the running trials whose worker is gone: this machine's whose process has ended, and any
    with no worker named `ORPHAN_S` after its claim (its claimer died between the claim and naming itself)."""
    from datetime import UTC, datetime

    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    me = worker_id()
    now = datetime.now(tz=UTC)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER)
        if not isinstance(worker, dict):
            started = trial.datetime_start
            if started is None or (now - started.astimezone(UTC)).total_seconds() < ORPHAN_S:
                continue
            why = f"no worker named itself {ORPHAN_S:g} s after its claim"
        elif (worker.get("host"), worker.get("boot")) != (me["host"], me["boot"]) or _alive(int(worker.get("pid", 0))):
            continue
        else:
            why = f"its worker (pid {worker.get('pid')}) died"
        try:  # another worker may have marked it first: then it is finished, and both calls are refused
            storage.set_trial_user_attr(trial._trial_id, ERROR, why)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
