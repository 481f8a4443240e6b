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
        label = _label(storage, trial_id)
        if label is None or _covered(study, storage, trial_id, label):
            _drop(storage, trial_id, label)
            continue
        storage.set_trial_user_attr(trial_id, WORKER, worker_id())
        try:
            record = run_one(label)
        except BaseException as exc:
            storage.set_trial_user_attr(trial_id, ERROR, f"{type(exc).__name__}: {exc}"[:500])
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
            raise
        storage.set_trial_user_attr(trial_id, RECORD, record)
        value = record.get(objective)
        storage.set_trial_state_values(
            trial_id, optuna.trial.TrialState.COMPLETE, [float("inf") if value is None else float(value)]
        )
        ran.append(label)
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    return StudyResult(name, url, {label: done[label] for label in labels}, tuple(ran), states)


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
    """Whether another trial already covers `label`: complete, or running since before this one (a tie: the
    lower number); two workers' enqueues of one label are run once."""
    from optuna.trial import TrialState

    mine = storage.get_trial(trial_id)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if trial._trial_id == trial_id or trial.user_attrs.get(LABEL) != label:
            continue
        if trial.state == TrialState.COMPLETE:
            return True
        if (trial.datetime_start, trial.number) < (mine.datetime_start, mine.number):
            return True
    return False


def _drop(storage: Any, trial_id: int, label: str | None) -> None:
    """A claimed trial another covers (or not ours): pruned, never run."""
    from optuna.trial import TrialState

    storage.set_trial_user_attr(trial_id, ERROR, f"a duplicate: another trial covers {label!r}")
    storage.set_trial_state_values(trial_id, TrialState.PRUNED)


def _reap_dead_workers(study: Any, storage: Any) -> None:
    """Mark failed the running trials of this machine's workers whose process is gone (killed mid-trial)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    me = worker_id()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER)
        if not isinstance(worker, dict) or (worker.get("host"), worker.get("boot")) != (me["host"], me["boot"]):
            continue
        if _alive(int(worker.get("pid", 0))):
            continue
        storage.set_trial_user_attr(trial._trial_id, ERROR, f"its worker (pid {worker.get('pid')}) died")
        try:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker marked it first


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
