"""Tasks: what a model is trained and judged for (numpy only: no TensorFlow here).

`get(kind)` returns the task object; a kind it does not know lists the known ones.
"""

from __future__ import annotations

from edgepack.tasks.anomaly import Anomaly
from edgepack.tasks.base import RawData, Split, Targets, Task, as_list, take, worsening
from edgepack.tasks.classification import Classification
from edgepack.tasks.fidelity import Fidelity
from edgepack.tasks.regression import Regression

TASKS: dict[str, Task] = {task.kind: task for task in (Classification(), Regression(), Anomaly(), Fidelity())}
ALL_TASK_BUDGETS = frozenset().union(*(task.budgets for task in TASKS.values()))


def get(kind: str) -> Task:
    """The task of `kind`."""
    try:
        return TASKS[kind]
    except KeyError:
        raise KeyError(f"unknown task kind '{kind}'; known: {', '.join(TASKS)}") from None


__all__ = ["ALL_TASK_BUDGETS", "RawData", "Split", "TASKS", "Targets", "Task", "as_list", "get", "take", "worsening"]
