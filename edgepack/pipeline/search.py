"""The mode search (`[convert.search]`): every candidate mode converted (its own cached stage),
judged on the test split and timed on the search device; the pick by the objective among those that
meet the criterion (else the best, marked as failing), and the Pareto front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgepack.errors import BadInputError

if TYPE_CHECKING:
    from edgepack.pipeline.run import Pipeline
    from edgepack.recipe.convert import ConvertSettings


def mode_search(p: Pipeline) -> dict[str, Any]:
    """Measured once per run (latency is never cached); the chosen candidate's stage becomes `convert`.
    Its own seconds (judging and timing the candidates) are the run's `search`; each conversion is its
    `convert-MODE` stage's."""
    if p.search_result is None:
        with p.clock.timed("search"):
            p.search_result = _search(p)
    return p.search_result


def _search(p: Pipeline) -> dict[str, Any]:
    from edgepack.devices.base import RunRequest
    from edgepack.devices.drivers import run_device
    from edgepack.pipeline.convert import convert_stage
    from edgepack.pipeline.evaluate import judge
    from edgepack.recipe.convert import ConvertSettings
    from edgepack.tasks.judge import allowed_drop, meets

    search = p.recipe.convert.search
    assert search is not None
    device = p.devices([search.device or p.recipe.validation.devices[0]])[0]
    if device.emulated:
        raise BadInputError(
            f"convert.search measures latency on '{device.name}', an emulated device",
            context=f"recipe '{p.recipe.name}'",
            code="search-emulated",
            hint="set convert.search.device to a real device (local, ssh or adb)",
        )
    referee = judge(p)
    allowed = allowed_drop(search, referee.reference_value)
    base = p.recipe.convert.model_dump(mode="json", exclude={"search"})
    validate = p.recipe.validation
    candidates: list[dict[str, Any]] = []
    for candidate in search_candidates(p.recipe.convert):
        mode, label = candidate.mode, candidate.label
        fields = {
            **base,
            "mode": mode.removesuffix("-fallback"),
            "fallback": None,
            "dense_granularity": candidate.dense,
        }
        if fields["mode"] != "int8":
            fields.update(io="float32", keep_float=[])
        if fields["mode"] in ("float16", "float32", "int16x8"):
            fields["per_channel"] = True
        if mode == "int8-fallback":
            fields["fallback"] = {**search.describe(), "max_ops": search.max_ops}
        stage = convert_stage(p, ConvertSettings.model_validate(fields), candidate.stage)
        path = stage.dir / stage.record.model_file
        verdict = referee.judge(path, p.reporter, f"search {label}")
        record = run_device(
            device,
            RunRequest(path, None, validate.runs, validate.warmup, device.threads or validate.threads, p.recipe.seed),
            p.reporter,
            f"search {label} on {device.name}",
        )
        candidates.append(
            {
                "mode": label,
                "dense_granularity": candidate.dense,
                "size_bytes": stage.record.size_bytes,
                "metric": p.task.metric,
                "value": verdict.value,
                "drop": verdict.drop,
                "worst_sqnr_db": verdict.worst_sqnr_db,
                "latency_p50_ms": _p50_or_mean(record["latency_ms"]),
                "meets": meets(search, allowed, verdict),
                "stage": stage.name,
                "_stage": stage,
                "float_ops": len((stage.record.fallback or {}).get("kept_float", [])),
            }
        )
    key = "size_bytes" if search.objective == "smallest" else "latency_p50_ms"
    meeting = [c for c in candidates if c["meets"]]
    by_sqnr = search.min_sqnr_db is not None
    chosen = (
        min(meeting, key=lambda c: (c[key], -_goodness(c, by_sqnr)))
        if meeting
        else max(candidates, key=lambda c: _goodness(c, by_sqnr))
    )
    for c in candidates:  # on the front when no other candidate is as good on all three and better on one
        c["pareto"] = not any(_dominates(o, c, by_sqnr) for o in candidates if o is not c)
        c["chosen"] = c is chosen
    p.cache.done["convert"] = chosen["_stage"]
    result = {
        "stage": chosen["_stage"],
        "objective": search.objective,
        "device": device.name,
        "metric": p.task.metric,
        "float_value": referee.reference_value,
        "criterion": search.describe(),
        "allowed_drop": allowed,
        "met": chosen["meets"],
        "chosen": chosen["mode"],
        "candidates": [{k: v for k, v in c.items() if k != "_stage"} for c in candidates],
    }
    if not chosen["meets"]:
        from edgepack.tasks.judge import criterion_text

        wanted = criterion_text({**search.describe(), "allowed_drop": allowed}, p.task.metric)
        p.reporter.note(f"search: no mode meets the criterion ({wanted}); keeping the best, {chosen['mode']}")
    return result


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
    with integer weights twice, Dense layers per channel and per tensor (float modes have one way)."""
    assert settings.search is not None
    candidates = []
    for mode in settings.search.modes:
        integer = mode not in ("float16", "float32")
        if integer and settings.dense_granularity == "auto":
            candidates += [Candidate(mode, "per-channel"), Candidate(mode, "per-tensor")]
        else:
            candidates.append(Candidate(mode, settings.dense_granularity if integer else "per-channel"))
    return candidates


def _goodness(c: dict[str, Any], by_sqnr: bool) -> float:
    """Higher is better, in what the criterion judges: the least worse than float in the task's metric,
    or (an SQNR criterion, a fidelity task) the highest worst-output SQNR (identical: the best)."""
    if c["drop"] is not None and not by_sqnr:
        return -float(c["drop"])
    return float("inf") if c["worst_sqnr_db"] is None else float(c["worst_sqnr_db"])


def _p50_or_mean(latency: dict[str, Any]) -> float:
    """The median latency; a benchmark binary without percentiles gives only the mean."""
    return float(latency["p50"] if latency.get("p50") is not None else latency["mean"])


def _dominates(a: dict[str, Any], b: dict[str, Any], by_sqnr: bool) -> bool:
    """`a` is at least as small, fast and good as `b`, and better in one."""
    pairs = (
        (a["size_bytes"], b["size_bytes"]),
        (a["latency_p50_ms"], b["latency_p50_ms"]),
        (-_goodness(a, by_sqnr), -_goodness(b, by_sqnr)),
    )
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)
