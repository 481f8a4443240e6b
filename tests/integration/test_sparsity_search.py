"""`final_sparsity = "auto"`: the largest sparsity of the grid whose fine-tuned model holds the recipe's
accuracy budget, each try its own cached stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke, tiny_recipe, tiny_work

pytestmark = pytest.mark.slow

GRID = [0.2, 0.5, 0.9, 0.99]


def _run(recipe: Path, work: Path) -> tuple[int, dict[str, Any]]:
    result = invoke("--json", "run", str(recipe), "--workdir", str(work))
    assert result.stdout.strip(), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def searched(tiny_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny digits recipe (its trained model from the session's run) with final_sparsity = "auto"."""
    folder = tmp_path_factory.mktemp("sparsity")
    work = tiny_work(tiny_run, folder / "work", "auto")
    recipe = tiny_recipe(folder, name="auto", extra="\n[budgets]\nmax_accuracy_drop = 0.05\n")
    text = recipe.read_text().replace("final_sparsity = 0.5", f'final_sparsity = "auto"\nsparsity_grid = {GRID}')
    recipe.write_text(text)
    code, report = _run(recipe, work)
    return {"recipe": recipe, "work": work, "code": code, "report": report}


def test_the_search_stops_at_the_largest_grid_value_that_holds_the_budget(searched: dict[str, Any]) -> None:
    report = searched["report"]
    search = report["sparsity_search"]
    tries = search["tries"]
    float_accuracy = report["stages"]["train"]["test_metrics"]["accuracy"]
    for t in tries:  # each try judged by the budget: float accuracy minus its fine-tuned model's, at most 0.05
        assert t["holds"] == (float_accuracy - t["metrics"]["accuracy"] <= 0.05 + 1e-9)
    assert [t["final_sparsity"] for t in tries] == GRID[: len(tries)]  # ascending, from the first
    assert all(t["holds"] for t in tries[:-1]) and not tries[-1]["holds"]  # stopped at its first miss
    assert 2 <= len(tries) <= len(GRID) - 1  # on this model: some values hold, a larger one does not
    chosen = tries[-2]
    assert chosen["chosen"] and search["chosen"] == chosen["final_sparsity"] and search["met"]
    assert f"{tries[-1]['final_sparsity']:g} breaks max_accuracy_drop" in search["why"]
    # the kept try is the run's optimize stage, and its zeros reached the .tflite
    optimized = report["stages"]["optimize"]
    assert optimized["dir"].endswith(f"optimize-sparsity-{chosen['final_sparsity']:g}")
    prune = optimized["stages"][0]
    assert prune["kind"] == "prune" and prune["kernel_zeros"] >= chosen["final_sparsity"] - 0.02
    bundle = Path(report["bundle"][0])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["optimization"]["sparsity_search"]["chosen"] == chosen["final_sparsity"]
    page = invoke("report", str(bundle), "--out", str(searched["work"] / "report.html"))
    assert page.exit_code == 0, page.output
    html = (searched["work"] / "report.html").read_text()
    assert 'id="sparsity"' in html and f"{tries[-1]['final_sparsity']:g} breaks max_accuracy_drop" in html


def test_a_second_run_is_fully_cached(searched: dict[str, Any]) -> None:
    code, report = _run(searched["recipe"], searched["work"])
    assert code == searched["code"]
    tries = report["sparsity_search"]["tries"]
    assert [t["final_sparsity"] for t in tries] == [
        t["final_sparsity"] for t in searched["report"]["sparsity_search"]["tries"]
    ]
    assert all(t["cached"] for t in tries)
    assert all(report["stages"][t["stage_name"]]["cached"] for t in tries) and report["stages"]["train"]["cached"]
    assert report["sparsity_search"]["chosen"] == searched["report"]["sparsity_search"]["chosen"]
