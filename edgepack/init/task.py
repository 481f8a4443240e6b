"""Which task the data serves, with the model's outputs: classification, regression, anomaly or fidelity.

`--task` is checked against the model (its outputs must be able to serve it) and the data (an array
of labels or targets must be there, named in the refusal); without `--task` the task is guessed, in
the order anomaly, classification, regression, fidelity (which needs only the inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgepack import tasks
from edgepack.errors import BadInputError, DatasetError, ModelError
from edgepack.init.model import ModelInfo, Shape, autoencoder, one_score, same_shape
from edgepack.tasks.base import shape_text

if TYPE_CHECKING:
    from edgepack.init.arrays import Array

TASK_KINDS = tuple(tasks.TASKS)


@dataclass(frozen=True)
class Fit:
    """How the data serves a task: its target keys, classes, and why it was chosen."""

    kind: str
    why: str
    y_key: str | list[str] | None = None
    anomaly_key: str | None = None
    classes: int | None = None  # the model's class count (classification)
    data_classes: int | None = None  # classes the labels reach (max + 1)
    normal_classes: list[str] | None = None  # a folder's anomaly task
    others: list[str] = field(default_factory=list)  # other arrays that could have been the target


def check_task(task: str | None) -> None:
    """Refuse a --task edgepack does not know, listing the known ones."""
    if task is not None and task not in TASK_KINDS:
        raise BadInputError(
            f"--task {task}: unknown task",
            context="--task",
            hint=f"choose one of: {', '.join(TASK_KINDS)}",
            code="task-unknown",
        )


def model_problem(task: str, model: ModelInfo) -> str | None:
    """Why the model's outputs cannot serve `task`, whatever the data (None: they can)."""
    problem = _MODEL_PROBLEMS.get(task)
    return problem(model) if problem else None


def _classifier_problem(model: ModelInfo) -> str | None:
    outs = model.outputs
    if len(outs) != 1:
        return f"a classifier has one output of class scores; the model has {len(outs)}"
    if not outs[0].shape or outs[0].shape[-1] is None or outs[0].shape[-1] < 2:
        return f"the model's output {outs[0].text} is not one score per class"
    return None


def _anomaly_problem(model: ModelInfo) -> str | None:
    ins, outs = model.inputs, model.outputs
    if len(ins) != 1 or len(outs) != 1:
        return f"an anomaly model has one input and one output; this one has {len(ins)} and {len(outs)}"
    if not autoencoder(model) and not one_score(model):
        return (
            f"the model's output {outs[0].text} is neither shaped like its input "
            f"({shape_text(ins[0].shape)}, an autoencoder) nor one score"
        )
    return None


_MODEL_PROBLEMS = {"classification": _classifier_problem, "anomaly": _anomaly_problem}  # the others take any outputs


def unfit(task: str, where: Path | str, problem: str, context: str, model_side: bool) -> BadInputError:
    """The error for data (or a model) that cannot serve `--task`."""
    kind, what = (ModelError, "the model") if model_side else (DatasetError, "the data")
    return kind(
        f"{where}: {what} cannot serve --task {task}: {problem}",
        context=context,
        hint=tasks.get(task).data_hint,
        code="task-unfit",
    )


def check_model_serves(task: str | None, model: ModelInfo, where: Path | str, context: str) -> None:
    """Refuse a `--task` the model's outputs cannot serve, whatever the data (`where`: the file named first)."""
    if task is not None and (problem := model_problem(task, model)):
        raise unfit(task, where, problem, context, model_side=True)


def fit_arrays(task: str | None, path: Path, arrays: list[Array], rest: list[Array], model: ModelInfo) -> Fit:
    """The task the arrays serve: `task` (refused, naming the file and keys, when they cannot), else a guess."""
    listing = "arrays: " + ", ".join(a.text for a in arrays)
    if task is not None:
        check_model_serves(task, model, path, f"MODEL {model.path}; {listing}")
        found = FITTERS[task](rest, model, True)
        if isinstance(found, str):
            raise unfit(task, path, found, listing, model_side=False)
        return found
    for kind, fitter in FITTERS.items():  # in the order a guess tries them
        if model_problem(kind, model) is None:
            found = fitter(rest, model, False)
            if not isinstance(found, str):
                return found
    return _fit_fidelity(rest, model, False)


def _named_first(arrays: list[Array], words: Sequence[str]) -> list[Array]:
    """`arrays` with those whose key contains one of `words` first (in the words' order)."""

    def rank(a: Array) -> int:
        hits = [i for i, w in enumerate(words) if w in a.key.lower()]
        return hits[0] if hits else len(words)

    return sorted(arrays, key=rank)


def _fit_classification(rest: list[Array], model: ModelInfo, explicit: bool) -> Fit | str:
    classes = int(model.outputs[0].shape[-1])  # type: ignore[arg-type]
    labels = [a for a in rest if not _not_labels(a, classes)]
    if not labels:
        why = "; ".join(f"{a.text}: {_not_labels(a, classes)}" for a in rest) or "no array besides the inputs"
        return f"no integer label array of shape (samples,) with values 0..{classes - 1} ({why})"
    ordered = _named_first(labels, ("label", "class", "y", "target"))
    chosen = ordered[0]
    data_classes = int(chosen.high or 0) + 1
    why = f"integer labels '{chosen.key}' (0..{data_classes - 1}) and a {classes}-way output"
    return Fit(
        "classification",
        why,
        y_key=chosen.key,
        classes=classes,
        data_classes=data_classes,
        others=[a.key for a in ordered[1:]],
    )


def _not_labels(array: Array, classes: int) -> str:
    """Why `array` cannot be a classifier's labels ("": it can)."""
    if not array.integer:
        return f"{array.dtype}, not integer labels"
    if len(array.shape) != 1:
        return "not one label per sample"
    if (array.low or 0) < 0 or (array.high or 0) >= classes:
        return f"values {array.low:g}..{array.high:g}, outside 0..{classes - 1}"
    return ""


def _fit_regression(rest: list[Array], model: ModelInfo, explicit: bool) -> Fit | str:
    keys: list[str] = []
    others: list[str] = []
    for out in model.outputs:
        left = [a for a in rest if a.key not in keys]
        fits = [a for a in left if not _not_targets(a, out.shape)]
        if not fits:
            why = "; ".join(f"{a.text}: {_not_targets(a, out.shape)}" for a in left) or "no array besides the inputs"
            return f"no float array shaped like the model's output {out.text} ({why})"
        keys.append(fits[0].key)
        others += [a.key for a in fits[1:]]
    why = "float targets " + ", ".join(f"'{k}'" for k in keys) + " shaped like the model's output(s)"
    return Fit("regression", why, y_key=keys[0] if len(keys) == 1 else keys, others=sorted(set(others) - set(keys)))


def _not_targets(array: Array, want: Shape) -> str:
    """Why `array` cannot be the float targets of an output shaped `want` ("": it can)."""
    shaped = same_shape(array.shape[1:], want) or (len(array.shape) == 1 and tuple(want) == (1,))
    if array.integer:
        return "integer labels, not float targets"
    if not array.dtype.startswith("float"):
        return f"{array.dtype}, not float targets"
    if not shaped:
        return f"{shape_text(array.shape[1:]) or 'one value'} per sample, not {shape_text(want)}"
    return ""


def _fit_anomaly(rest: list[Array], model: ModelInfo, explicit: bool) -> Fit | str:
    binary = [a for a in rest if a.binary]
    named = [
        a for a in _named_first(binary, ("anomal", "label")) if "anomal" in a.key.lower() or "label" in a.key.lower()
    ]
    if not explicit and not autoencoder(model):  # a one-score model: only labels named as anomalies say so
        binary = named = [a for a in named if "anomal" in a.key.lower()]
    chosen = named[0] if named else (binary[0] if len(binary) == 1 or (explicit and binary) else None)
    if chosen is None:
        why = "; ".join(a.text for a in rest) or "no array besides the inputs"
        return f"no 0/1 anomaly label array of shape (samples,) ({why})"
    kind = "an autoencoder (output shaped like the input)" if autoencoder(model) else "a one-score model"
    return Fit(
        "anomaly",
        f"0/1 labels '{chosen.key}' and {kind}",
        anomaly_key=chosen.key,
        others=[a.key for a in binary if a.key != chosen.key],
    )


def _fit_fidelity(rest: list[Array], model: ModelInfo, explicit: bool) -> Fit:
    why = "--task fidelity" if explicit else "no array fits as labels or targets"
    return Fit("fidelity", why + ": the int8 model is judged against the float model alone")


FITTERS = {  # in the order a guess tries them: fidelity, which needs only the inputs, last
    "anomaly": _fit_anomaly,
    "classification": _fit_classification,
    "regression": _fit_regression,
    "fidelity": _fit_fidelity,
}


def fit_placeholder(model: ModelInfo, task: str | None) -> Fit:
    """No data to look at: the task (--task, else what the outputs suggest) and the target keys a `data.npz`
    should hold for it."""
    check_model_serves(task, model, model.path, f"MODEL {model.path}")
    kind, why = task or "classification", "--task, no --data"
    if task is None:
        kind = (
            "classification"
            if model_problem("classification", model) is None
            else "anomaly"
            if autoencoder(model)
            else "regression"
        )
        why = _PLACEHOLDER_WHY[kind]
    chosen = tasks.get(kind)
    y_key: str | list[str] | None = "y" if chosen.y_text is not None else None
    if chosen.several_targets and len(model.outputs) > 1:
        y_key = [t.name for t in model.outputs]
    classes = int(model.outputs[0].shape[-1] or 0) if chosen.class_scores else None
    return Fit(kind, why, y_key=y_key, anomaly_key="anomaly" if chosen.anomaly_labels else None, classes=classes)


_PLACEHOLDER_WHY = {  # the guess without data, and why
    "classification": "no --data: the default, for a model with one output of class scores",
    "anomaly": "no --data: the model's output is shaped like its input (an autoencoder)",
    "regression": "no --data: the model's outputs are not class scores",
}


def fit_folder(root: Path, classes: list[str], model: ModelInfo, task: str | None) -> Fit:
    """The task a folder of class sub-folders serves: `task` (refused when it cannot), else a guess."""
    check_model_serves(task, model, root, f"MODEL {model.path}")
    if task is None:
        return _folder_classes(classes, model) or _folder_fidelity(root, classes, model, None)
    return FOLDER_FITTERS[task](root, classes, model, task)


def _folder_classes(classes: list[str], model: ModelInfo) -> Fit | None:
    """The classification a folder serves when the model has one score per class folder (None: it has not)."""
    if model_problem("classification", model) is None and model.outputs[0].shape[-1] == len(classes):
        return Fit(
            "classification",
            f"{len(classes)} class folders and a {len(classes)}-way output",
            classes=len(classes),
            data_classes=len(classes),
        )
    return None


def _folder_classification(root: Path, classes: list[str], model: ModelInfo, task: str | None) -> Fit:
    if found := _folder_classes(classes, model):
        return found
    outputs = ", ".join(t.text for t in model.outputs)
    raise unfit(
        "classification",
        root,
        f"{len(classes)} class folders ({', '.join(classes)}) but the model's output is {outputs}",
        "--data",
        model_side=False,
    )


def _folder_regression(root: Path, classes: list[str], model: ModelInfo, task: str | None) -> Fit:
    raise unfit("regression", root, "a folder of images holds classes, not float targets", "--data", model_side=False)


def _folder_anomaly(root: Path, classes: list[str], model: ModelInfo, task: str | None) -> Fit:
    return Fit("anomaly", f"--task anomaly: class '{classes[0]}' taken as the normal one", normal_classes=[classes[0]])


def _folder_fidelity(root: Path, classes: list[str], model: ModelInfo, task: str | None) -> Fit:
    outputs = ", ".join(t.text for t in model.outputs)
    why = "--task fidelity" if task else f"{len(classes)} class folders but the model's output is {outputs}"
    return Fit("fidelity", why + ": the int8 model is judged against the float model alone")


FOLDER_FITTERS = {
    "classification": _folder_classification,
    "regression": _folder_regression,
    "anomaly": _folder_anomaly,
    "fidelity": _folder_fidelity,
}
