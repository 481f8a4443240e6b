"""The search's pick over candidates from several optimize tries: by the objective among those that meet,
ties and "the best" by the metric against the trained float model (not each try's own), the Pareto front
over size, latency, arena and metric; and the tune report when the search picks another try."""

from __future__ import annotations

from typing import Any

import pytest

from edgepack.pipeline.search import pick


def candidate(mode: str, size: int, drop_from_float: float, meets: bool = True, **figures: Any) -> dict[str, Any]:
    # `drop` is against the candidate's own try: deliberately unlike drop_from_float, which ranks
    return {
        "mode": mode,
        "size_bytes": size,
        "latency_p50_ms": figures.get("latency", 1.0),
        "arena_bytes": figures.get("arena", 1000),
        "drop": figures.get("drop", 0.0),
        "drop_from_float": drop_from_float,
        "worst_sqnr_db": figures.get("sqnr", 30.0),
        "meets": meets,
    }


def test_the_smallest_that_meets_wins_even_when_a_smaller_try_fails() -> None:
    candidates = [
        candidate("int8 @ rank 32", 160_000, 0.001),
        candidate("int4 @ rank 32", 110_000, 0.004),
        candidate("int8 @ rank 8", 84_000, 0.03, meets=False),
        candidate("int4 @ rank 8", 70_000, 0.05, meets=False),
    ]
    chosen = pick(candidates, "size", by_sqnr=False)
    assert chosen["mode"] == "int4 @ rank 32"
    assert [c["mode"] for c in candidates if c["chosen"]] == ["int4 @ rank 32"]


def test_ties_go_to_the_better_metric_against_the_float_model_not_against_each_try() -> None:
    # equal in every figure; the sparser try's conversion lost nothing against ITS model (drop 0) but is
    # 1.5 points worse than the other against the trained float model
    sparse = candidate("int8 @ sparsity 0.8", 50_000, 0.015, drop=0.0)
    dense = candidate("int8 @ sparsity 0.5", 50_000, 0.0, drop=0.004)
    chosen = pick([sparse, dense], "size", by_sqnr=False)
    assert chosen is dense
    assert dense["pareto"] and not sparse["pareto"]  # dense is as small, fast and light, and better


def test_with_none_meeting_the_best_in_the_metric_is_kept() -> None:
    candidates = [candidate("a", 10, 0.2, meets=False), candidate("b", 20, 0.1, meets=False)]
    assert pick(candidates, "size", by_sqnr=False)["mode"] == "b"


@pytest.mark.parametrize(("minimize", "expected"), [("size", "small"), ("latency", "fast"), ("arena", "light")])
def test_each_objective_picks_by_its_figure_and_all_three_are_on_the_front(minimize: str, expected: str) -> None:
    candidates = [
        candidate("small", 10, 0.0, latency=3.0, arena=300),
        candidate("fast", 30, 0.0, latency=1.0, arena=200),
        candidate("light", 20, 0.0, latency=2.0, arena=100),
        candidate("beaten", 30, 0.01, latency=3.0, arena=300),
    ]
    assert pick(candidates, minimize, by_sqnr=False)["mode"] == expected
    assert {c["mode"]: c["pareto"] for c in candidates} == {"small": True, "fast": True, "light": True, "beaten": False}


def test_a_fidelity_criterion_ranks_by_sqnr() -> None:
    low, high = candidate("low", 10, 0.0, sqnr=12.0), candidate("high", 10, 0.0, sqnr=25.0)
    assert pick([low, high], "size", by_sqnr=True) is high


def test_the_tune_report_says_when_the_search_kept_another_try() -> None:
    from edgepack.pipeline.tune import Tuned, picked_by_search
    from edgepack.recipe.optimize import KNOBS

    report = {"chosen": 8, "why": "2 breaks max_rmse_increase; 8 is the smallest that holds"}
    report["tries"] = [{"rank": r, "chosen": r == 8} for r in (32, 8, 2)]
    tuned = Tuned(stage=None, report=report, held={}, knob=KNOBS["low-rank"])  # type: ignore[arg-type]
    picked_by_search(tuned, 8)  # the same try: the grid's reason stands
    assert report["why"] == "2 breaks max_rmse_increase; 8 is the smallest that holds"
    picked_by_search(tuned, 32)
    assert report["chosen"] == 32 and [t["rank"] for t in report["tries"] if t["chosen"]] == [32]
    assert report["why"].startswith("32 chosen by convert.search") and "8 is the smallest that holds" in report["why"]
