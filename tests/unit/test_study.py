"""The search's Optuna study (pipeline/study.py) with real Optuna on a journal file, worked by real
processes (tests/study_worker.py): two workers share the trials, each candidate run once, and both read
the same records; a worker killed mid-trial leaves it failed, and the next worker runs it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import REPO

WORKER = REPO / "tests" / "study_worker.py"
LABELS = ["a", "b", "c", "d", "e"]
EXPECTED = {label: {"label": label, "size": i + 1} for i, label in enumerate(LABELS)}
WAIT_S = 120.0


def _worker(tmp_path: Path, workers: int, hold: str | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), str(tmp_path / "study.journal"), "s1", str(tmp_path), str(workers)]
    return subprocess.Popen(
        args + ([hold] if hold else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    return dict(json.loads(out))


def _trials(tmp_path: Path) -> list[Any]:
    """The study's trials, read from its journal."""
    import optuna

    from edgepack.pipeline.study import open_storage

    return list(
        optuna.load_study(study_name="s1", storage=open_storage(f"journal:{tmp_path / 'study.journal'}")).trials
    )


def _ran(tmp_path: Path) -> list[tuple[str, int]]:
    return [(line.split()[0], int(line.split()[1])) for line in (tmp_path / "ran.log").read_text().splitlines()]


def test_two_workers_share_one_study_and_run_each_candidate_once(tmp_path: Path) -> None:
    first, second = _worker(tmp_path, 2), _worker(tmp_path, 2)
    one, two = _result(first), _result(second)
    assert one["records"] == two["records"] == EXPECTED  # both read every record from the study
    ran = _ran(tmp_path)
    assert sorted(label for label, _ in ran) == LABELS  # each candidate run once, by one of them
    assert sorted(one["ran"] + two["ran"]) == LABELS
    assert {pid for _, pid in ran} <= {first.pid, second.pid}
    assert two["trials"]["COMPLETE"] == 5 and "FAIL" not in two["trials"]
    again = _result(_worker(tmp_path, 1))  # a finished study: a new worker runs nothing, reads the same
    assert again["records"] == EXPECTED and again["ran"] == [] and len(_ran(tmp_path)) == 5


def test_a_killed_worker_leaves_its_trial_failed_and_a_rerun_resumes(tmp_path: Path) -> None:
    killed = _worker(tmp_path, 1, hold="c")
    deadline = time.monotonic() + WAIT_S
    while not (tmp_path / "holding-c").exists():  # it is inside trial "c", which waits for a "go" never given
        assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=WAIT_S)
    (left,) = [t for t in _trials(tmp_path) if t.user_attrs["candidate"] == "c"]
    assert left.state.name == "RUNNING" and left.user_attrs["worker"]["pid"] == killed.pid  # left, not lost
    resumed = _result(_worker(tmp_path, 1))
    assert resumed["records"] == EXPECTED
    ran = _ran(tmp_path)
    assert ran.count(("c", killed.pid)) == 1 and [label for label, pid in ran if pid != killed.pid].count("c") == 1
    killed_ran = [label for label, pid in ran if pid == killed.pid]
    assert sorted(resumed["ran"]) == sorted(set(LABELS) - set(killed_ran) | {"c"})  # the rest, and "c" again
    assert resumed["trials"]["FAIL"] == 1 and resumed["trials"]["COMPLETE"] == 5
    (failed,) = [t for t in _trials(tmp_path) if t.state.name == "FAIL"]
    assert failed.number == left.number and failed.user_attrs["error"] == f"its worker (pid {killed.pid}) died"


def _study(tmp_path: Path) -> tuple[Any, Any, str]:
    import optuna

    from edgepack.pipeline.study import open_storage

    url = f"journal:{tmp_path / 'in.journal'}"
    storage = open_storage(url)
    return optuna.create_study(storage=storage, study_name="s2", load_if_exists=True), storage, url


def test_a_failing_candidate_fails_its_trial_and_the_next_worker_tries_it_again(tmp_path: Path) -> None:
    import pytest

    from edgepack.pipeline.study import run_study

    url = f"journal:{tmp_path / 'in.journal'}"

    def broken(label: str) -> dict[str, Any]:
        if label == "b":
            raise RuntimeError("the converter crashed")
        return {"size": 1}

    with pytest.raises(RuntimeError, match="the converter crashed"):  # the trial's own error surfaces
        run_study(url, "s2", ["a", "b"], broken, "size")
    (failed,) = [t for t in _study(tmp_path)[0].trials if t.state.name == "FAIL"]
    assert failed.user_attrs["candidate"] == "b" and failed.user_attrs["error"] == "RuntimeError: the converter crashed"
    again = run_study(url, "s2", ["a", "b"], lambda label: {"size": 2}, "size")
    assert again.ran_here == ("b",) and again.records == {"a": {"size": 1}, "b": {"size": 2}}
    with pytest.raises(TypeError):  # a record the storage cannot keep fails its trial too
        run_study(url, "s3", ["c"], lambda label: {"size": object()}, "size")
    import optuna

    from edgepack.pipeline.study import open_storage

    (c,) = optuna.load_study(study_name="s3", storage=open_storage(url)).trials
    assert c.state.name == "FAIL" and c.user_attrs["error"].startswith("TypeError")


def test_a_duplicate_trial_is_pruned_unrun(tmp_path: Path) -> None:
    from edgepack.pipeline.study import run_study

    study, storage, url = _study(tmp_path)
    for _ in range(2):  # two workers' enqueues of one label, as a race between them leaves
        study.enqueue_trial({}, user_attrs={"candidate": "a"})
    ran: list[str] = []
    result = run_study(url, "s2", ["a"], lambda label: ran.append(label) or {"size": 1}, "size")
    assert ran == ["a"] and result.records == {"a": {"size": 1}}
    states = sorted(t.state.name for t in _study(tmp_path)[0].trials)
    assert states == ["COMPLETE", "PRUNED"]


def test_a_trial_claimed_by_no_one_is_failed_and_run_again(tmp_path: Path, monkeypatch: Any) -> None:
    from optuna.trial import TrialState

    from edgepack.pipeline import study as study_module

    study, storage, url = _study(tmp_path)
    study.enqueue_trial({}, user_attrs={"candidate": "a"})
    (waiting,) = study.trials
    assert storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)  # claimed; its claimer died
    monkeypatch.setattr(study_module, "ORPHAN_S", 0.0)  # (the product waits a minute: here, no wait)
    result = study_module.run_study(url, "s2", ["a"], lambda label: {"size": 1}, "size")
    assert result.ran_here == ("a",)
    orphan = [t for t in _study(tmp_path)[0].trials if t.number == waiting.number][0]
    assert orphan.state.name == "FAIL" and orphan.user_attrs["error"].startswith("no worker named itself")


def test_two_workers_reaping_one_dead_trial_do_not_fail(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    from edgepack.pipeline import study as study_module

    study, storage, url = _study(tmp_path)
    study.enqueue_trial({}, user_attrs={"candidate": "a"})
    (trial,) = study.trials
    assert storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING)
    dead = {**study_module.worker_id(), "pid": 2**22 + 1}  # above Linux's pid_max: never a live process
    storage.set_trial_user_attr(trial._trial_id, "worker", dead)
    stale = study.get_trials(deepcopy=False)  # what a second worker listed before the first reaped

    class Stale:
        def get_trials(self, deepcopy: bool, states: Any) -> list[Any]:
            return [t for t in stale if t.state in states]

    study_module._reap_dead_workers(study, storage)
    study_module._reap_dead_workers(Stale(), storage)  # its listing says running; the storage says failed
    (reaped,) = _study(tmp_path)[0].trials
    assert reaped.state.name == "FAIL" and reaped.user_attrs["error"] == f"its worker (pid {dead['pid']}) died"
