"""The commented TOML text of a starter recipe: every section, each line saying where its value came
from, what to fix (TODO) and what to check (GUESS).
"""

from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from edgepack import tasks
from edgepack.init.candidates import NormCheck
from edgepack.init.data import SEED, TEST_FRACTION, DataPlan, arrays_by_key
from edgepack.init.measure import Budget, Measured
from edgepack.init.model import ModelInfo
from edgepack.init.normalization import NormGuess
from edgepack.init.task import Fit
from edgepack.init.tomlvalue import toml_value
from edgepack.tasks.base import shape_text

MAX_CALIBRATION = 256
# One rule for every task: the app's values cross the model's edge as floats, as the float model takes them.
IO_WHY = (
    "float32 I/O for every task (int8 inside): the app feeds and reads the float model's values (one quantize "
    'and one dequantize op); set io = "int8" for an app that holds int8 values (scale and zero point: the manifest)'
)
COMMENT_COLUMN = 29
WIDTH = 120  # recipe lines wrap their comments here


def _line(text: str, comment: str | list[str] = "") -> list[str]:
    """`text` with its comment aligned at the comment column (more comment lines below it)."""
    comments = [comment] if isinstance(comment, str) else comment
    comments = [c for c in comments if c]
    if not comments:
        return [text]
    pad = max(COMMENT_COLUMN - len(text), 2)
    column = len(text) + pad
    wrapped = [part for c in comments for part in textwrap.wrap(c, max(40, WIDTH - column - 2))]
    return [f"{text}{' ' * pad}# {wrapped[0]}", *[f"{' ' * column}# {c}" for c in wrapped[1:]]]


def _comment(text: str) -> list[str]:
    """A comment paragraph, wrapped."""
    return [f"# {part}" for part in textwrap.wrap(text, WIDTH - 2)]


@dataclass(frozen=True)
class Starter:
    """Everything the starter recipe says."""

    name: str
    target: Path
    model: ModelInfo
    plan: DataPlan
    norm: NormGuess
    budgets: list[Budget] | None  # None: not measured
    unmeasured_why: str = ""
    measured: Measured | None = None
    check: NormCheck | None = None  # the normalization candidates measured on the data

    @property
    def io(self) -> str:
        """float32 input and output tensors, for every task (IO_WHY)."""
        return "float32"

    @property
    def at_chance(self) -> bool:
        """The float model scores near chance: in the normalization check, or in the first measurement."""
        if self.check is None:
            return False
        if self.check.at_chance:
            return True
        m, chance = self.measured, self.check.chance
        if m is None or m.float_value is None or chance is None:
            return False
        return m.float_value <= chance.limit if self.check.higher_is_better else m.float_value >= chance.limit

    @property
    def warning(self) -> str | None:
        """The loud warning of a float model near chance (None: there is none)."""
        if not self.at_chance or self.check is None:
            return None
        said = self.check.warning()
        if said is not None:
            return said
        value = self.measured.float_value if self.measured else None
        return (
            f"the first measurement's float {self.check.metric} is {value:.4g}, near chance "
            f"({self.check.chance.why if self.check.chance else ''}): no budgets are written; check "
            "dataset.normalization against the training's preprocessing"
        )

    @property
    def calibration_samples(self) -> int:
        """min(256, the train split's samples)."""
        if self.plan.kind == "none":
            return MAX_CALIBRATION
        return max(1, min(MAX_CALIBRATION, self.plan.train_samples))

    def relative(self, path: Path) -> str:
        """`path` as the recipe names it: relative to the recipe's folder."""
        return Path(os.path.relpath(path.resolve(), self.target.parent.resolve())).as_posix()


def render(s: Starter) -> str:
    """The commented starter recipe."""
    sections = [
        _head(s),
        _task_section(s),
        _dataset_section(s),
        _model_section(s),
        _optimize_section(s),
        _convert_section(s),
        _validate_section(),
        _budgets_section(s),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _head(s: Starter) -> list[str]:
    lines = [
        f"# A starter recipe for {s.model.path.name}, written by `edgepack init` on {date.today().isoformat()}.",
        *_comment(f"The model: {s.model.summary()}."),
        "# Read every comment; fix what says TODO and check what says GUESS. Then:",
        f"#   edgepack recipes check {s.target.name}    # validates it, runs nothing",
        f"#   edgepack run {s.target.name}              # convert, evaluate, validate, gate, bundle",
    ]
    description = f"{s.model.path.name}: {s.plan.fit.kind}, post-training full-integer int8"
    return lines + [
        f"name = {toml_value(s.name)}",
        f"description = {toml_value(description)}",
        *_line('version = "0.1.0"', "the model's semantic version, recorded in the manifest"),
        *_line(f"seed = {SEED}", "one seed for the split and the calibration sample: same seed, same figures"),
    ]


def _task_section(s: Starter) -> list[str]:
    fit = s.plan.fit
    lines = [
        "# What the model is judged on: classification (accuracy) | regression (RMSE) | anomaly (ROC AUC)",
        "# | fidelity (no labels: the int8 model against the float model, SQNR per output).",
        "[task]",
        *_line(f"kind = {toml_value(fit.kind)}", f"why: {fit.why}"),
    ]
    if fit.normal_classes:
        lines += _line(
            f"normal_classes = {toml_value(fit.normal_classes)}",
            "TODO: the classes that are normal; the others are the anomalies",
        )
    return lines


def _dataset_section(s: Starter) -> list[str]:
    plan = s.plan
    lines = [
        "# The data: inputs for the model and the task's targets, split with the seed into test",
        "# (test_fraction) and train samples (calibration is drawn from these).",
        "[dataset]",
    ]
    if plan.kind == "folder":
        lines += _line('kind = "folder"', "one sub-folder of images per class; the sub-folder name is the label")
        lines += _line(f"path = {toml_value(s.relative(plan.path))}", "relative to this file")  # type: ignore[arg-type]
        lines += _line(f"image_size = {toml_value(list(plan.image_size or ()))}", "[height, width]: the model's input")
        lines += _line(f"color_mode = {toml_value(plan.color_mode)}", "grayscale | rgb")
        lines += [f"# classes (labels, in this order): {', '.join(plan.class_names)}"]
    else:
        lines += _npz_lines(s)
    test = math.ceil(plan.samples * TEST_FRACTION)
    lines += _line(
        f"test_fraction = {TEST_FRACTION}",
        f"{test} test samples of {plan.samples}" if plan.samples else "a seeded share of the samples",
    )
    return lines + _norm_lines(s)


def _npz_lines(s: Starter) -> list[str]:
    plan, fit = s.plan, s.plan.fit
    task = tasks.get(fit.kind)
    by_key = arrays_by_key(plan.arrays)
    if plan.kind == "none":
        lines = _line(
            'kind = "npz"',
            "TODO: no --data was given: save your arrays beside this file as "
            "data.npz (numpy.savez), or change path and the keys",
        )
        lines += _line('path = "data.npz"', "relative to this file")
    else:
        lines = _line('kind = "npz"', "arrays: " + ", ".join(a.text for a in plan.arrays))
        lines += _line(f"path = {toml_value(s.relative(plan.path))}", "relative to this file")  # type: ignore[arg-type]
    x_key: Any = plan.x_keys[0] if len(plan.x_keys) == 1 else plan.x_keys
    inputs = ", ".join(f"'{t.name}' ({shape_text(t.shape)} per sample)" for t in s.model.inputs)
    which = "input" if len(s.model.inputs) == 1 else "inputs, in order:"
    lines += _line(f"x_key = {toml_value(x_key)}", [f"feeds the model's {which} {inputs}", *plan.x_notes])
    if plan.kind == "npz" and plan.layout_why:
        how = "read as stored, no image channel added" if plan.layout == "tensors" else "images or feature vectors"
        lines += _line(f"layout = {toml_value(plan.layout)}", f"{how}: {plan.layout_why}")
    if plan.kind == "npz" and plan.integers_why:
        lines += _line(f"integers = {toml_value(plan.integers)}", plan.integers_why)
    if fit.y_key is not None:
        shapes = ", ".join(f"{by_key[k].dtype} {by_key[k].shape}" for k in _keys(fit.y_key) if k in by_key)
        also = f"; also possible: {', '.join(map(repr, fit.others))}" if fit.others else ""
        what = task.y_text or ""
        lines += _line(f"y_key = {toml_value(fit.y_key)}", f"{what}{': ' + shapes if shapes else ''}{also}")
    elif task.y_text is None:
        lines.append(f"# (no y_key: a {fit.kind} task reads no class labels or targets)")
    if fit.anomaly_key is not None:
        also = f"; also 0/1: {', '.join(map(repr, fit.others))}" if fit.others else ""
        lines += _line(f"anomaly_key = {toml_value(fit.anomaly_key)}", f"0 normal, 1 anomalous, one per sample{also}")
    if task.class_scores and fit.classes:
        lines += _labels_lines(fit)
    return lines


def _keys(value: str | list[str] | None) -> list[str]:
    return [] if value is None else ([value] if isinstance(value, str) else list(value))


def _labels_lines(fit: Fit) -> list[str]:
    classes = fit.classes or 0
    names = [str(i) for i in range(classes)]
    if fit.data_classes is not None and fit.data_classes < classes:
        return _line(
            f"labels = {toml_value(names)}",
            f"the model has {classes} classes, the labels reach {fit.data_classes - 1}: one name per "
            "output, in class-index order (TODO: name them)",
        )
    return _line(
        f"# labels = {toml_value(names)}",
        f"{classes} classes: name them, in class-index order (default: their indices)",
    )


def _norm_lines(s: Starter) -> list[str]:
    norm, checked = s.norm, s.check
    lead = "GUESS" if norm.guess else ("MEASURED" if checked is not None and checked.best else "From the model")
    check = "; check it matches how the model was trained" if norm.guess else ""
    lines = [*_comment(f"{lead}: {norm.why}{check}.")]
    if checked is not None and not checked.checked:
        lines += _comment(f"NOT CHECKED: {checked.why}, so this normalization could not be tried on the float model.")
    if checked is not None and checked.candidates:
        lines += [f"# Candidates ({checked.why}):"]
        for index, c in enumerate(checked.candidates):
            mark = "  <- written" if index == checked.chosen else ""
            lines += [f"#   {c.name}: mean {toml_value(c.mean)}, std {toml_value(c.std)}: {c.value:.4g}{mark}"]
    if s.warning:
        lines += _comment(f"WARNING: {s.warning}.")
    lines += [
        "# x' = (x - mean) / std is applied to every input before the model (and recorded in the manifest).",
    ]
    value = {"mean": norm.mean, "std": norm.std}
    lines.append(f"normalization = {toml_value(value)}")
    if norm.pixel_range is not None:
        lines += _line(
            f"pixel_range = {toml_value([_compact(v) for v in norm.pixel_range])}",
            "the raw values of black and white: the app metadata's normalization is for 8-bit pixels",
        )
    elif s.plan.images:
        lines += _line("# pixel_range = [0, 255]", "TODO: the raw values of black and white, for the app metadata")
    return lines


def _compact(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _model_section(s: Starter) -> list[str]:
    m = s.model
    lines = [
        "# The trained model, taken as it is (no [train] table: a saved model is not trained again).",
        "[model]",
        'kind = "saved"',
    ]
    lines += _line(f"path = {toml_value(s.relative(m.path))}", f"{m.saved_by}, {m.container}; {m.params:,} parameters")
    if m.imports:
        lines += _line(
            f"imports = {toml_value(list(m.imports))}",
            "modules registering its custom Keras 3 layers (found beside this recipe, or installed)",
        )
    elif m.keras == 3:
        lines += _line('# imports = ["mylayers"]', "modules registering custom Keras 3 layers, if it has any")
    return lines


def _optimize_section(s: Starter) -> list[str]:
    if not tasks.get(s.plan.fit.kind).trainable:
        return ["# No [[optimize]] stages: a fidelity task has no targets to fine-tune on."]
    if s.model.bridge_problem:
        return _comment(
            "[[optimize]] stages (prune, qat, cluster) are not available for this model: they need a "
            f"tf_keras model, and this Keras 3 model cannot be rebuilt in tf_keras: "
            f"{s.model.bridge_problem}. It is converted from Keras 3 directly."
        )
    bridged = " (the Keras 3 model is rebuilt in tf_keras for them)" if s.model.keras == 3 else ""
    return [
        *_comment(
            f"Training-time optimization{bridged}: uncomment to fine-tune on the train split before "
            "converting. Stages run in order; qat comes last."
        ),
        "# [[optimize]]",
        *_line('# kind = "prune"', "magnitude pruning; zeros compress (gzip) and sparse kernels"),
        "# final_sparsity = 0.5",
        "# epochs = 2",
        "#",
        "# [[optimize]]",
        *_line('# kind = "qat"', "quantization-aware training: the int8 model usually loses less"),
        "# epochs = 2",
    ]


def _convert_section(s: Starter) -> list[str]:
    return [
        "# Post-training full-integer quantization, calibrated on a sample of the train split.",
        "[convert]",
        *_line('mode = "int8"', "int8 | int16x8 | dynamic | float16 | float32"),
        *_line(f"io = {toml_value(s.io)}", IO_WHY),
        *_line(f"calibration_samples = {s.calibration_samples}", "drawn from the train split with the seed"),
    ]


def _validate_section() -> list[str]:
    return [
        "# Where the .tflite is measured: latency p50/p90/p99, memory, output parity.",
        "[validate]",
        *_line('devices = ["host"]', "this machine; `edgepack devices list` shows the others (adb, ssh)"),
        *_line("warmup = 20", "runs before timing"),
        *_line("runs = 200", "timed runs"),
        *_line("threads = 1", "interpreter threads"),
    ]


def _budgets_section(s: Starter) -> list[str]:
    lines = ["# Limits that fail `edgepack run` (exit 3) when exceeded."]
    if s.budgets is None:
        lines += [
            *_comment(
                f"Not measured ({s.unmeasured_why}): after a first `edgepack run`, set them from its "
                "figures, for example:"
            ),
            "[budgets]",
            '# max_size = "64 KB"',
            "# latency_p90_ms = { host = 5.0 }",
            *[f"# {line}" for line in tasks.get(s.plan.fit.kind).budget_examples],
        ]
        return lines
    lines += ["# Set from a first measurement of this recipe, with room to spare.", "[budgets]"]
    for budget in s.budgets:  # one line each, however long: the comment says what was measured, and when
        text = f"{'# ' if budget.unset else ''}{budget.key} = {budget.toml}"
        lines.append(f"{text}{' ' * max(COMMENT_COLUMN - len(text), 2)}# {budget.comment}")
    return lines
