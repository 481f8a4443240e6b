"""The search (`[convert.search]`): every candidate conversion (a mode, its Dense granularity, int4
kernels; each "auto" optimize try that held the budgets as its source) converted as its own cached
stage, judged on the test split against its Keras model, timed on the search device and its arena read
from the file; the pick minimizes `minimize` among those that meet the criterion (else the best, marked
as failing), and the Pareto front over size, latency, arena and the metric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.errors import BadInputError

if TYPE_CHECKING:
    from edgepack.pipeline.cache import StageOutput
    from edgepack.pipeline.inputs import RunInputs
    from edgepack.pipeline.tune import Tuned
    from edgepack.recipe.convert import ConvertSettings
    from edgepack.recipe.schema import Recipe
    from edgepack.records import ConvertRecord, OptimizeRecord, TrainRecord

KEYS = {"size": "size_bytes", "latency": "latency_p50_ms", "arena": "arena_bytes"}
"""The candidate's figure each `minimize` value picks by."""


@dataclass(frozen=True)
class Source:
    """A model the search converts: the run's optimize stage, or one try of an "auto" optimize value."""

    stage: StageOutput[OptimizeRecord]
    field: str | None = None  # the "auto" value's field (final_sparsity, rank), its word, this try's value
    word: str | None = None
    value: float | None = None
    held: bool = True  # a try that held the recipe's budgets (the run's own optimize stage always does)

    @property
    def suffix(self) -> str:
        """What a candidate's label and stage name get for this source: ` @ rank 8`, `-rank-8`."""
        return "" if self.word is None else f" @ {self.word} {self.value:g}"

    @property
    def stage_suffix(self) -> str:
        """Its try's stage name's tail: `-rank-8` (the try is `optimize-rank-8`)."""
        return "" if self.word is None else f"-{self.word}-{self.value:g}"


@dataclass(frozen=True)
class SearchResult:
    """What the search found: the pick's conversion (the run's convert stage), the model it was converted
    from (a try of an "auto" value: the run's optimize stage) and the search as plain data."""

    stage: StageOutput[ConvertRecord]
    source: Source
    report: dict[str, Any]  # manifest, measurements.json, the summary and report.html


def tried_sources(tuned: Tuned) -> list[Source]:
    """The sources of an "auto" optimize value's search: each try that held the budgets (else its pick)."""
    held = tuned.held or {tuned.report["chosen"]: tuned.stage}
    knob = tuned.knob
    return [Source(stage, knob.field, knob.word, value, value in tuned.held) for value, stage in held.items()]


def check_search_device(recipe: Recipe, device: Any) -> None:
    """The search times candidates on `device`: an emulated one's latency is the emulator's (exit 2)."""
    if device.emulated:
        raise BadInputError(
            f"convert.search measures latency on '{device.name}', an emulated device",
            context=f"recipe '{recipe.name}'",
            code="search-emulated",
            hint="set convert.search.device to a real device (local, ssh or adb)",
        )


def search(p: RunInputs, device: Any, sources: list[Source], trained: StageOutput[TrainRecord]) -> SearchResult:
    """Every candidate from every source on `device` (measured once per run: latency is never cached; the
    runner has checked the device with `check_search_device`). With `search.storage`, the candidates are the
    trials of an Optuna study every worker sharing the storage works through (pipeline/study.py), and the
    pick is made from the study's records, the same in every worker."""
    settings = p.recipe.convert.search
    assert settings is not None
    from edgepack.pipeline.evaluate import judge

    search = settings
    tasks = {c.label + s.suffix: (s, c) for s in sources for c in search_candidates(p.recipe.convert)}
    referees: dict[int, Any] = {}  # one judge per source (its Keras model's outputs on the test split), made once

    def run_one(label: str) -> dict[str, Any]:
        source, candidate = tasks[label]
        key = sources.index(source)
        if key not in referees:
            referees[key] = judge(p, source.stage, trained)
        return _measured(p, device, source, referees[key], candidate, trained)

    study = None
    if search.storage is None:
        candidates = [run_one(label) for label in tasks]
    else:
        from edgepack.pipeline.study import run_study

        url = storage_url(search.storage, p.loaded.base_dir)
        name = study_name(p, device, sources, list(tasks))
        study = run_study(url, name, list(tasks), lambda label: _public(run_one(label)), KEYS[search.minimize])
        candidates = [dict(study.records[label]) for label in tasks]
    chosen = pick(candidates, search.minimize, search.min_sqnr_db is not None)
    meeting = [c for c in candidates if c["meets"]]
    result = {
        "minimize": search.minimize,
        "device": device.name,
        "metric": p.task.metric,
        "float_value": chosen["float_value"],
        "criterion": search.describe(),
        "allowed_drop": chosen["allowed_drop"],
        "met": chosen["meets"],
        "chosen": chosen["mode"],
        "why": _why(search.minimize, candidates, meeting, any(s.held for s in sources)),
        "candidates": [_public(c) for c in candidates],
        **({"study": study.to_dict()} if study is not None else {}),
    }
    if not chosen["meets"]:
        from edgepack.evaluate.judge import criterion_text

        wanted = criterion_text({**search.describe(), "allowed_drop": chosen["allowed_drop"]}, p.task.metric)
        p.reporter.note(f"search: no candidate meets the criterion ({wanted}); keeping the best, {chosen['mode']}")
    source, candidate = tasks[chosen["mode"]]
    stage = chosen.get("_stage") or _converted(p, source, candidate, trained)  # from a study: the cached stage
    return SearchResult(stage, source, result)


def _public(candidate: dict[str, Any]) -> dict[str, Any]:
    """A candidate's record as plain data (its stage and source objects left out)."""
    return {k: v for k, v in candidate.items() if not k.startswith("_")}


def storage_url(url: str, base: Path) -> str:
    """`url`, a relative journal path made absolute against `base` (the recipe's folder)."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser()
        return f"journal:{path if path.is_absolute() else (base / path).resolve()}"
    return url


def study_name(p: RunInputs, device: Any, sources: list[Source], labels: list[str]) -> str:
    """The study of this search: the recipe's name and a hash of what decides its trials' records (the
    search settings bar the storage, the conversion, budgets and validate settings, the candidates, their
    sources' stages, the device), so a changed recipe starts a new study in the same storage."""
    import hashlib

    from edgepack.recipe.load import canonical_json

    search = p.recipe.convert.search
    assert search is not None
    payload = {
        "search": search.model_dump(mode="json", exclude={"storage"}),
        "convert": p.recipe.convert.model_dump(mode="json", exclude={"search"}),
        "budgets": p.recipe.budgets.model_dump(mode="json"),
        "validate": p.recipe.validation.model_dump(mode="json"),
        "candidates": labels,
        "sources": [s.stage.id for s in sources],
        "device": device.name,
    }
    return f"{p.recipe.name}-search-{hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:12]}"


def _converted(
    p: RunInputs, source: Source, candidate: Candidate, trained: StageOutput[TrainRecord]
) -> StageOutput[ConvertRecord]:
    """The candidate converted from `source`: its own cached stage."""
    from edgepack.pipeline.convert import convert_stage

    settings = candidate_settings(p.recipe.convert, candidate)
    return convert_stage(p, settings, source.stage, trained, candidate.stage + source.stage_suffix)


def _measured(
    p: RunInputs,
    device: Any,
    source: Source,
    referee: Any,
    candidate: Candidate,
    trained: StageOutput[TrainRecord],
) -> dict[str, Any]:
    """One candidate converted from `source` (its own cached stage), judged by `referee`, timed, its arena read."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.analyze.graph import activation_peak
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers import run_device
    from edgepack.evaluate.judge import allowed_drop, meets
    from edgepack.gate.budgets import candidate_budgets
    from edgepack.tasks import worsening

    search = p.recipe.convert.search
    assert search is not None
    validate = p.recipe.validation
    label = candidate.label + source.suffix
    settings = candidate_settings(p.recipe.convert, candidate)
    stage = _converted(p, source, candidate, trained)
    path = stage.dir / stage.record.model_file
    allowed = allowed_drop(search, referee.reference_value)
    verdict = referee.judge(path, p.reporter, f"search {label}")
    request = RunRequest(
        path, None, validate.runs, validate.warmup, device.threads or validate.latency_threads, p.recipe.seed
    )
    record = run_device(device, request, p.reporter, f"search {label} on {device.name}")
    metrics = trained.record.test_metrics
    holds, budgets = candidate_budgets(p.recipe.budgets, metrics, verdict.metrics, verdict.fidelity)
    reference = metrics.get(p.task.metric)
    from_float = None if reference is None or verdict.value is None else worsening(p.task, reference, verdict.value)
    return {
        "mode": label,
        "dense_granularity": candidate.dense,
        "weights": settings.weights,
        "optimize": None if source.field is None else {"field": source.field, "value": source.value},
        "size_bytes": stage.record.size_bytes,
        "arena_bytes": activation_peak(read_model(path.read_bytes()))[0],
        "metric": p.task.metric,
        "float_value": referee.reference_value,
        "allowed_drop": allowed,
        "value": verdict.value,
        "drop": verdict.drop,  # against its own Keras model: the criterion's
        "drop_from_float": from_float,  # against the trained float model: what candidates are ranked by
        "worst_sqnr_db": verdict.worst_sqnr_db,
        "budgets": budgets,
        "latency_p50_ms": _p50_or_mean(record["latency_ms"]),
        "meets": source.held and holds and meets(search, allowed, verdict),
        "stage": stage.name,
        "_stage": stage,
        "_source": source,
        "float_ops": len((stage.record.fallback or {}).get("kept_float", [])),
    }


def candidate_settings(settings: ConvertSettings, candidate: Candidate) -> ConvertSettings:
    """The recipe's `[convert]` with the candidate's mode, granularity and weights (and what they imply)."""
    from edgepack.recipe.convert import ConvertSettings

    search = settings.search
    assert search is not None
    fields = {
        **settings.model_dump(mode="json", exclude={"search"}),
        "mode": candidate.mode.removesuffix("-fallback").replace("int4", "int8"),
        "fallback": None,
        "dense_granularity": candidate.dense,
        "weights": "int4" if candidate.mode == "int4" else "int8",
    }
    if fields["mode"] != "int8":
        fields.update(io="float32", keep_float=[])
    if fields["mode"] in ("float16", "float32", "int16x8"):
        fields["per_channel"] = True
    if candidate.mode == "int4":  # litert-quantizer's model: int8 I/O, per-channel kernels, nothing kept float
        fields.update(io="int8", keep_float=[], per_channel=True)
    if candidate.mode == "int8-fallback":
        fields["fallback"] = {**search.describe(), "max_ops": search.max_ops}
    return ConvertSettings.model_validate(fields)


def pick(candidates: list[dict[str, Any]], minimize: str, by_sqnr: bool) -> dict[str, Any]:
    """The candidate with the least `minimize` among those that meet (ties: the better metric), else the best
    in the metric; each candidate marked `pareto` (no other is as good in size, latency, arena and metric and
    better in one) and `chosen`."""
    key = KEYS[minimize]
    meeting = [c for c in candidates if c["meets"]]
    chosen = (
        min(meeting, key=lambda c: (c[key], -_goodness(c, by_sqnr)))
        if meeting
        else max(candidates, key=lambda c: _goodness(c, by_sqnr))
    )
    for c in candidates:
        c["pareto"] = not any(_dominates(o, c, by_sqnr) for o in candidates if o is not c)
        c["chosen"] = c is chosen
    return chosen


def _why(minimize: str, candidates: list[dict[str, Any]], meeting: list[dict[str, Any]], tries_held: bool) -> str:
    """Why the pick: the objective among those that meet the criterion and budgets, or the best when none does."""
    from edgepack.evaluate.judge import GOALS

    if not tries_held:
        return (
            "no try of the 'auto' optimize value holds the budgets, so no candidate can: the best in the metric is kept"
        )
    if not meeting:
        return (
            f"none of the {len(candidates)} candidates meets the criterion and the budgets: the best in the metric "
            "is kept"
        )
    return (
        f"the {GOALS[minimize]} of the {len(meeting)} of {len(candidates)} candidates that meet the criterion "
        "and the budgets"
    )


@dataclass(frozen=True)
class Candidate:
    """One conversion the search tries: its mode, its Dense-layer granularity, its label and stage name."""

    mode: str
    dense: str

    @property
    def label(self) -> str:
        """The mode, with ", dense per-tensor" where Dense layers are per tensor and convolutions per channel."""
        return self.mode if self.dense == "per-channel" else f"{self.mode}, dense {self.dense}"

    @property
    def stage(self) -> str:
        """Its stage directory: `convert-int8`, `convert-int8-dense-per-tensor`."""
        return f"convert-{self.mode}" + ("" if self.dense == "per-channel" else f"-dense-{self.dense}")


def search_candidates(settings: ConvertSettings) -> list[Candidate]:
    """The search's candidates: each mode of `search.modes`; with `dense_granularity = "auto"`, each mode
    with integer weights from TFLite's converter twice, Dense layers per channel and per tensor (float
    modes have one way; int4 kernels are per channel)."""
    assert settings.search is not None
    candidates = []
    for mode in settings.search.modes:
        integer = mode not in ("float16", "float32", "int4")
        if integer and settings.dense_granularity == "auto":
            candidates += [Candidate(mode, "per-channel"), Candidate(mode, "per-tensor")]
        else:
            candidates.append(Candidate(mode, settings.dense_granularity if integer else "per-channel"))
    return candidates


def _goodness(c: dict[str, Any], by_sqnr: bool) -> float:
    """Higher is better, in what the criterion judges: the least worse than the trained float model in the
    task's metric (candidates from different optimize tries compare so), or (an SQNR criterion, a fidelity
    task) the highest worst-output SQNR (identical: the best). Records before 0.4 have only `drop`."""
    drop = c.get("drop_from_float", c["drop"])
    if drop is not None and not by_sqnr:
        return -float(drop)
    return float("inf") if c["worst_sqnr_db"] is None else float(c["worst_sqnr_db"])


def _p50_or_mean(latency: dict[str, Any]) -> float:
    """The median latency; a benchmark binary without percentiles gives only the mean."""
    return float(latency["p50"] if latency.get("p50") is not None else latency["mean"])


def _dominates(a: dict[str, Any], b: dict[str, Any], by_sqnr: bool) -> bool:
    """`a` is at least as small, fast, light and good as `b`, and better in one."""
    pairs = [(a[key], b[key]) for key in KEYS.values()] + [(-_goodness(a, by_sqnr), -_goodness(b, by_sqnr))]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)
