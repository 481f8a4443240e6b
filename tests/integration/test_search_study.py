"""`[convert.search]` as an Optuna study (real Optuna, a journal file): `edgepack search --workers 2` (two
processes) finishes one study, each candidate one complete trial, with the pick and figures of a one-process
search over the same candidates; a `run` whose recipe names the finished study's storage joins it, runs no
trial, and bundles the same pick; a bad storage is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke, run_cli, tiny_recipe, tiny_work

SEARCH = '\n[convert.search]\nmodes = ["int8", "dynamic", "float16"]\nmax_drop = 1.0\n{storage}'
QAT = '[[optimize]]\nkind = "qat"\nepochs = 1\nlearning_rate = 0.0002\n'


def _recipe(folder: Path, storage: str = "") -> Path:
    """The tiny recipe without its QAT stage (a search compares post-training modes) and with the search."""
    path = tiny_recipe(folder, "tinysearch", extra=SEARCH.format(storage=storage))
    text = path.read_text()
    assert QAT in text
    path.write_text(text.replace(QAT, ""))
    return path


def _figures(search: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {c["mode"]: (c["size_bytes"], c["arena_bytes"], c["value"], c["meets"]) for c in search["candidates"]}


@pytest.fixture(scope="module")
def searched(tiny_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The search in one process (no study), and by two workers sharing a journal file."""
    folder = tmp_path_factory.mktemp("study")
    recipe = _recipe(folder)
    reports = {}
    for name, extra in (("one", []), ("two", ["--workers", "2"])):
        work = tiny_work(tiny_run, folder / name, "tinysearch")
        proc = run_cli("--json", "search", str(recipe), "--workdir", str(work), *extra)
        assert proc.returncode == 0, proc.stderr
        reports[name] = json.loads(proc.stdout)
    return {"folder": folder, **reports}


def test_two_workers_finish_one_study_with_the_one_process_pick(searched: dict[str, Any]) -> None:
    import optuna

    from edgepack.pipeline.study import open_storage

    one, two = searched["one"], searched["two"]
    assert "study" not in one and two["chosen"] == one["chosen"]
    assert _figures(two) == _figures(one)  # sizes, arenas and metrics: the same candidates, measured alike
    assert [c["chosen"] for c in two["candidates"]] == [c["chosen"] for c in one["candidates"]]
    # (the Pareto flags weigh each run's own latency: they may differ, as between two one-process runs)
    study = two["study"]
    journal = searched["folder"] / "two" / "tinysearch" / "search.journal"
    assert study["storage"] == f"journal:{journal}" and study["trials"].get("COMPLETE") == 3
    trials = optuna.load_study(study_name=study["name"], storage=open_storage(study["storage"])).trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["candidate"] for t in complete) == ["dynamic", "float16", "int8"]  # each once
    assert not [t for t in trials if t.state.name not in ("COMPLETE", "PRUNED")]  # nothing failed or left
    assert {t.user_attrs["record"]["mode"] for t in complete} == {"dynamic", "float16", "int8"}


def test_a_run_naming_the_finished_study_joins_it_and_bundles_its_pick(
    searched: dict[str, Any], tiny_run: dict[str, Any], tmp_path: Path
) -> None:
    journal = searched["folder"] / "two" / "tinysearch" / "search.journal"
    recipe = _recipe(tmp_path, f'storage = "journal:{journal}"\n')
    work = searched["folder"] / "two"  # the workers' stages: shared, the pick's conversion cached
    result = invoke("--json", "run", str(recipe), "--workdir", str(work), "--out", str(tmp_path / "bundle"))
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["search"]["study"]["ran_here"] == []  # every trial was done: read, not run again
    assert report["search"]["chosen"] == searched["one"]["chosen"]
    assert report["stages"]["convert"]["cached"]
    measured = json.loads((tmp_path / "bundle" / "measurements.json").read_text())
    assert measured["search"]["chosen"] == searched["one"]["chosen"]
    assert measured["search"]["study"]["name"] == searched["two"]["study"]["name"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--storage", "search.db"], 'give "journal:PATH"'),
        (["--storage", "journal:"], '"journal:" needs a path'),
        (["--storage", "nosuchdb://x"], "cannot be opened"),
    ],
)
def test_a_bad_storage_is_a_clear_error(tmp_path: Path, args: list[str], said: str, tiny_run: dict[str, Any]) -> None:
    recipe = _recipe(tmp_path)
    work = tiny_work(tiny_run, tmp_path / "w", "tinysearch")
    result = invoke("search", str(recipe), "--workdir", str(work), *args)
    assert result.exit_code == 2 and "search-storage" in result.stderr and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_recipe_without_a_search_is_told_so(tmp_path: Path) -> None:
    result = invoke("search", str(tiny_recipe(tmp_path)), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "search-none" in result.stderr and "[convert.search]" in result.stderr
