"""The normalization a starter recipe writes, measured rather than guessed: the float model is judged on a
bounded sample of the test split under each candidate (the values as stored; [0, 1] and [-1, 1] from the
data's range; the data's mean and std; per feature; and, when the model has one, its own Normalization or
Rescaling layer, which is the values as stored), and the best figure wins. A best figure near chance (a
classifier within 2x of chance, a regression no better than predicting the mean, an anomaly AUC of 0.55 or
less) says that no candidate is the preprocessing the model was trained with: no budgets are set from it.

The data is read by the pipeline's own loader (`datasets.core.load_dataset`, the recipe's split and
layout) with the identity normalization, so each candidate is the very `(x - mean) / std` a run applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepack import tasks
from edgepack.errors import DatasetError, EdgepackError
from edgepack.init.model import ModelInfo
from edgepack.init.stats import feature_stats, sample_rows, sig
from edgepack.tasks.base import Chance

MAX_SAMPLES = 256  # test samples the candidates are judged on: enough to tell right from wrong, and fast
TIE = {"accuracy": 0.005, "auc": 0.005}  # closer than this to the best: the earlier candidate is kept
RMSE_TIE = 0.01  # RMSE within 1 % of the best


@dataclass(frozen=True)
class Candidate:
    """One normalization tried: its name, mean and std, and the float model's metric under it."""

    name: str
    mean: float | list[float]
    std: float | list[float]
    value: float


@dataclass(frozen=True)
class NormCheck:
    """The candidates measured (or why they could not be), the chosen one, and whether it is near chance."""

    checked: bool
    why: str  # checked: what the figures are of; not checked: why not
    metric: str = ""
    higher_is_better: bool = True
    samples: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    chosen: int | None = None
    chance: Chance | None = None
    stats: str = ""  # which train samples the candidates' range and statistics come from

    @property
    def best(self) -> Candidate | None:
        """The chosen candidate."""
        return None if self.chosen is None else self.candidates[self.chosen]

    @property
    def at_chance(self) -> bool:
        """The best candidate's figure is near chance: none is how the model was trained."""
        best, chance = self.best, self.chance
        if best is None or chance is None:
            return False
        if not np.isfinite(best.value):  # no candidate gave a figure at all
            return True
        return best.value <= chance.limit if self.higher_is_better else best.value >= chance.limit

    def warning(self) -> str | None:
        """The warning for a float metric near chance (None: it is not)."""
        if not self.at_chance or self.best is None or self.chance is None:
            return None
        return (
            f"the float model's {self.metric} is {self.best.value:.4g} at best ({self.best.name}), near chance "
            f"({self.chance.why}): no normalization tried is the one it was trained with, so no budgets are "
            "written; set dataset.normalization to the training's preprocessing and run init again"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "checked": self.checked,
            "why": self.why,
            "metric": self.metric or None,
            "samples": self.samples,
            "stats_from": self.stats or None,
            "candidates": [
                {"name": c.name, "mean": c.mean, "std": c.std, self.metric: c.value, "chosen": i == self.chosen}
                for i, c in enumerate(self.candidates)
            ],
            "chance": None
            if self.chance is None
            else {"level": self.chance.level, "limit": self.chance.limit, "why": self.chance.why},
            "at_chance": self.at_chance,
            "warning": self.warning(),
        }


def not_checked(why: str) -> NormCheck:
    """No check was possible: say why."""
    return NormCheck(False, why)


def check_normalization(recipe: Any, model: ModelInfo, classes: int | None) -> NormCheck:
    """Judge the float model under each candidate normalization on `recipe`'s data (a `LoadedRecipe`)."""
    from edgepack import tasks
    from edgepack.datasets.core import integers_are_ids, load_dataset
    from edgepack.recipe.schema import Normalization

    spec, task = recipe.recipe.dataset, recipe.recipe.task
    impl = tasks.get(task.kind)
    if not impl.trainable or model.loaded is None:  # fidelity: nothing to judge by but the float model
        return not_checked("no labels or targets to judge the float model by")
    try:
        # the identity, with integer arrays read as the recipe reads them: readings become floats to scale
        ids = "ids" if integers_are_ids(spec) else "readings"
        raw = spec.model_copy(update={"normalization": Normalization(), "integers": ids})
        data = load_dataset(raw, recipe.recipe.seed, recipe.base_dir, task)
    except DatasetError as exc:
        return not_checked(f"the data did not load for it: {exc.message}")
    rng = np.random.default_rng(recipe.recipe.seed)
    count = min(MAX_SAMPLES, data.test_samples)
    pick = np.sort(rng.choice(data.test_samples, size=count, replace=False))
    x = [np.asarray(v)[pick] for v in data.test_inputs]
    y = [np.asarray(v)[pick] for v in data.y_test] if isinstance(data.y_test, list) else np.asarray(data.y_test)[pick]
    scaled = [np.issubdtype(v.dtype, np.floating) for v in data.train_inputs]  # integer indices stay as they are
    if not any(scaled):
        return not_checked("the inputs are integer indices, fed as they are")
    train, stats = sample_rows([v for v, s in zip(data.train_inputs, scaled) if s], recipe.recipe.seed)
    found = []
    for name, mean, std in _candidates(train, model.normalizer, data.image):
        norm = Normalization(mean=mean, std=std)
        xs = [_normalize(v, norm) if s else v for v, s in zip(x, scaled)]
        try:
            value = float(impl.metrics(_predict(model.loaded, xs), _split(xs, y))[impl.metric])
        except (ValueError, EdgepackError):  # outputs that are no numbers there (an overflow), or one kind only
            value = float("nan")
        found.append(Candidate(name, mean, std, round(value, 6)))
    higher = bool(impl.higher_is_better)
    split = "test samples" if count == data.test_samples else f"of {data.test_samples} test samples"
    return NormCheck(
        True,
        f"float {impl.metric} on {count} {split}",
        impl.metric,
        higher,
        count,
        found,
        _choose(found, impl.metric, higher),
        chance_of(task.kind, y, classes),
        f"range and statistics from {stats.replace('samples', 'train samples', 1)}",
    )


def _split(x: list[np.ndarray], y: Any) -> Any:
    from edgepack.tasks.base import Split

    return Split(x, y)


def _normalize(x: np.ndarray, norm: Any) -> np.ndarray:
    from edgepack.datasets.core import normalize

    return normalize(x, norm)


def _predict(model: Any, x: list[np.ndarray]) -> list[np.ndarray]:
    from edgepack.optimize.loop import predict
    from edgepack.progress import NullReporter

    return predict(model, x if len(x) > 1 else x[0], NullReporter(), "normalization candidates")


def _candidates(
    arrays: list[np.ndarray], normalizer: str | None, image: bool
) -> list[tuple[str, float | list[float], float | list[float]]]:
    """(name, mean, std) of each candidate, from the train split's raw values (a bounded sample of them);
    equal ones merged."""
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    stored = "as stored" + (f" ({normalizer} in the model)" if normalizer else "")
    found: list[tuple[str, float | list[float], float | list[float]]] = [(stored, 0.0, 1.0)]
    if high > low:
        found.append((f"[0, 1] from {low:g}..{high:g}", sig(low), sig(high - low)))
        found.append((f"[-1, 1] from {low:g}..{high:g}", sig((low + high) / 2), sig((high - low) / 2)))
    flat = np.concatenate([a.reshape(-1).astype(np.float64) for a in arrays])
    std = float(flat.std())
    found.append(("mean/std", sig(float(flat.mean())), sig(std) if std > 0 else 1.0))
    mean, stds = feature_stats(arrays)
    if isinstance(mean, list):
        found.append(("per-channel mean/std" if image else "per-feature mean/std", mean, stds))
    merged: list[tuple[str, float | list[float], float | list[float]]] = []
    for name, m, s in found:
        same = next((i for i, (_, m2, s2) in enumerate(merged) if m2 == m and s2 == s), None)
        if same is None:
            merged.append((name, m, s))
        else:
            merged[same] = (f"{merged[same][0]} = {name}", m, s)
    return merged


def _choose(found: list[Candidate], metric: str, higher: bool) -> int:
    """The best candidate; one within the tie margin of the best that comes earlier is kept instead."""
    values = [c.value if np.isfinite(c.value) else (-np.inf if higher else np.inf) for c in found]
    best = max(values) if higher else min(values)
    for index, value in enumerate(values):
        if higher and value >= best - TIE.get(metric, 0.005):
            return index
        if not higher and value <= best * (1 + RMSE_TIE):
            return index
    return values.index(best)


def chance_of(kind: str, y: Any, classes: int | None) -> Chance | None:
    """The chance level of a task on targets `y` (None: the task has none)."""
    return tasks.get(kind).chance(y, classes)
