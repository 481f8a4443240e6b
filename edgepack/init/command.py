"""The whole of `edgepack init`: the model read, the data planned, the normalization guessed, the draft
measured beside the target (so its relative paths hold), the recipe rendered, checked to load, and
written once.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from edgepack import tasks
from edgepack.fsutil import TMP_MARK
from edgepack.init.data import plan_data
from edgepack.init.measure import Measured, budgets_from, measure
from edgepack.init.model import read_model
from edgepack.init.normalization import guess_normalization, measured_normalization
from edgepack.init.render import IO_WHY, Starter, render
from edgepack.init.task import check_task
from edgepack.init.write import exists_error, write_new
from edgepack.progress import NullReporter, Reporter

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def recipe_name(text: str) -> str:
    """`text` lowercased into the recipe name pattern ^[a-z0-9][a-z0-9._-]*$ (64 characters at most)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    name = re.sub(r"^[^a-z0-9]+", "", name)[:64]
    return name if NAME_RE.match(name) else "model"


@dataclass(frozen=True)
class StarterResult:
    """What `edgepack init` wrote and measured."""

    path: Path
    starter: Starter

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        s = self.starter
        fit = s.plan.fit
        return {
            "recipe": str(self.path),
            "name": s.name,
            "task": fit.kind,
            "why": fit.why,
            "model": {
                "path": str(s.model.path),
                "saved_by": s.model.saved_by,
                "params": s.model.params,
                "inputs": [asdict(t) for t in s.model.inputs],
                "outputs": [asdict(t) for t in s.model.outputs],
                "optimize_available": s.model.bridge_problem is None,
                "why_not": s.model.bridge_problem,
            },
            "dataset": {
                "kind": s.plan.kind,
                "path": None if s.plan.path is None else str(s.plan.path),
                "samples": s.plan.samples,
                "x_key": s.plan.x_keys,
                "y_key": fit.y_key,
                "anomaly_key": fit.anomaly_key,
                "normal_classes": fit.normal_classes,
            },
            "normalization": {
                "mean": s.norm.mean,
                "std": s.norm.std,
                "pixel_range": s.norm.pixel_range,
                "guess": s.norm.guess,
                "why": s.norm.why,
            },
            "layout": {"layout": s.plan.layout, "why": s.plan.layout_why or None},
            "normalization_check": None if s.check is None else s.check.to_dict(),
            "warning": s.warning,
            "convert": {"mode": "int8", "io": s.io, "io_why": IO_WHY, "calibration_samples": s.calibration_samples},
            "measured": None if s.measured is None else s.measured.to_dict(),
            "budgets": None if s.budgets is None else {b.key: b.value for b in s.budgets if not b.unset},
            "unmeasured_why": s.unmeasured_why or None,
        }


def write_starter(
    model: Path,
    data: Path | None = None,
    task: str | None = None,
    out: Path | None = None,
    name: str | None = None,
    measure_it: bool = True,
    reporter: Reporter | None = None,
    quiet_native: bool = True,
    workdir: Path | None = None,
    imports: tuple[str, ...] = (),
) -> StarterResult:
    """Write the starter recipe for `model` (and `data`) to `out` (default ./NAME.toml), measured unless told not."""
    from edgepack.recipe.load import parse_recipe

    stem = model.name if model.is_dir() else model.stem
    recipe = recipe_name(name or stem)
    target = out if out is not None else Path(f"{recipe}.toml")
    if os.path.lexists(target):
        raise exists_error(target)
    check_task(task)
    info = read_model(model, imports)
    plan = plan_data(data, info, task)
    why = "no --data" if data is None else ("--no-measure" if not measure_it else "")
    starter = Starter(recipe, target, info, plan, guess_normalization(plan, info), None, why or "measuring")
    if data is not None:
        starter = _checked(starter)
    if data is not None and measure_it and not starter.at_chance:
        figures = _measure_draft(starter, reporter or NullReporter(), quiet_native, workdir)
        starter = replace(starter, measured=figures)
        if starter.at_chance:  # the run's own float figure (the whole test split) is near chance
            starter = replace(starter, unmeasured_why=CHANCE_WHY)
        else:
            starter = replace(starter, budgets=budgets_from(figures), unmeasured_why="")
    text = render(starter)
    parse_recipe(text, target)  # what is written loads
    write_new(target, text)
    return StarterResult(target, starter)


CHANCE_WHY = "the float model scores near chance, so budgets from this run would hold a broken preprocessing"


def _checked(starter: Starter) -> Starter:
    """The starter with its normalization measured on the data (or with the reason it could not be)."""
    from edgepack.init.candidates import check_normalization, not_checked
    from edgepack.recipe.load import parse_recipe

    if not tasks.get(starter.plan.fit.kind).trainable:
        check = not_checked("no labels or targets (a fidelity task) to judge the float model by")
    else:  # the recipe's relative paths go through its folder, which must exist to be walked through
        starter.target.parent.mkdir(parents=True, exist_ok=True)
        check = check_normalization(
            parse_recipe(render(starter), starter.target), starter.model, starter.plan.fit.classes
        )
    norm = measured_normalization(check, starter.plan) if check.best is not None else starter.norm
    starter = replace(starter, check=check, norm=norm)
    return replace(starter, unmeasured_why=CHANCE_WHY) if check.at_chance else starter


def _measure_draft(starter: Starter, reporter: Reporter, quiet_native: bool, workdir: Path | None) -> Measured:
    """The draft (no budgets) written beside the target, so its relative paths hold, measured, removed."""
    from edgepack.recipe.load import parse_recipe

    text = render(starter)
    parse_recipe(text, starter.target)
    starter.target.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(prefix=f"{starter.target.stem}{TMP_MARK}", suffix=".toml", dir=starter.target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return measure(Path(draft), workdir, reporter, quiet_native)
    finally:
        Path(draft).unlink(missing_ok=True)
