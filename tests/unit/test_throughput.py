"""The throughput grid's parts without a model: the recipe's threads and batch lists, the records (best cell,
JSON round trip), the budget against the best cell, the tables, the request's invoke count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, in_recipe_file, invoke

from edgepack.devices.base import RunRequest, runner_args
from edgepack.devices.runners import runner
from edgepack.errors import BadInputError
from edgepack.gate.budgets import Measurements, check_budgets
from edgepack.records import DeviceRun, Throughput, ThroughputCell
from edgepack.summary.throughput import throughput_tables
from edgepack.table import plain

DIGITS = (REPO / "recipes" / "digits.toml").read_text()


def _cell(threads: int, batch: int, mean: float | None, error: str | None = None) -> ThroughputCell:
    if mean is None:
        return ThroughputCell(threads, batch, None, None, None, error)
    latency = {"p50": mean, "p90": mean, "p99": mean, "mean": mean, "std": 0.0, "min": mean, "max": mean, "runs": 5}
    return ThroughputCell(threads, batch, latency, mean / batch, batch * 1000.0 / mean)


def _run(name: str, throughput: Throughput | None, emulated: bool = False) -> DeviceRun:
    return DeviceRun(name, "local", emulated, {"p50": 1.0, "p90": 1.0, "runs": 5}, threads=1, throughput=throughput)


def test_threads_and_batch_lists_make_the_grid(tmp_path: Path) -> None:
    grid = DIGITS.replace("threads = 1", "threads = [2, 1]\nbatch = [1, 4]")
    validation = in_recipe_file(tmp_path, grid).recipe.validation
    assert validation.grid == ((2, 1), (1, 1), (2, 4), (1, 4)) and validation.latency_threads == 2
    plain_recipe = in_recipe_file(tmp_path, DIGITS).recipe
    assert plain_recipe.validation.grid == () and not plain_recipe.times_throughput
    budget_only = in_recipe_file(tmp_path, DIGITS.replace("min_accuracy = 0.95", "min_throughput_ips = 10.0")).recipe
    assert budget_only.validation.grid == () and budget_only.times_throughput  # the latency run is its one cell


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("threads = 1", "threads = [1, 2, 1]", "validate.threads"),
        ("threads = 1", "threads = []", "at least one value"),
        ("threads = 1", "batch = [0, 8]", "validate.batch"),
        ("min_accuracy = 0.95", "min_throughput_ips = { phone = 10.0 }", "not in validate.devices"),
        ("min_accuracy = 0.95", "min_throughput_ips = -1.0", "must be > 0"),
    ],
)
def test_a_wrong_grid_or_throughput_budget_is_a_recipe_error(tmp_path: Path, old: str, new: str, said: str) -> None:
    assert old in DIGITS
    with pytest.raises(BadInputError) as caught:
        in_recipe_file(tmp_path, DIGITS.replace(old, new))
    assert said in str(caught.value) + str(caught.value.context or "")


def test_a_throughput_budget_on_an_emulated_board_is_refused_before_training(tmp_path: Path) -> None:
    text = DIGITS.replace('devices = ["host"]', 'devices = ["host", "rpi4-emulated"]')
    (tmp_path / "digits.toml").write_text(
        text.replace("min_accuracy = 0.95", "min_throughput_ips = { rpi4-emulated = 5.0 }")
    )
    result = invoke("run", str(tmp_path / "digits.toml"), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "budget-emulated" in result.stderr and "rpi4-emulated" in result.stderr
    assert not (tmp_path / "w" / "digits" / "train").exists()


def test_the_best_cell_and_the_json_round_trip() -> None:
    grid = Throughput((_cell(1, 1, 0.02), _cell(2, 8, 0.08), _cell(4, 8, None, "LiteRT cannot run batch 8")))
    assert grid.best == grid.cells[1]  # 100,000/s against 50,000/s; the failed cell is never the best
    tie = Throughput((_cell(2, 1, 0.01), _cell(1, 1, 0.01)))
    assert tie.best == tie.cells[1]  # equal throughput: fewer threads
    assert Throughput((_cell(1, 8, None, "no"),)).best is None
    run = _run("host", grid)
    data = run.to_dict()
    assert data["throughput"]["cells"][2]["error"] == "LiteRT cannot run batch 8"
    assert DeviceRun.from_dict(data) == run and DeviceRun.from_dict(data).to_dict() == data
    assert "throughput" not in _run("host", None).to_dict()  # a record without a grid keeps its keys
    null = _run("host", None).to_dict() | {"throughput": None}  # a hand-edited or another writer's record
    assert DeviceRun.from_dict(null).throughput is None and DeviceRun.from_dict(null).to_dict() == null


def _measured(validation: dict[str, DeviceRun]) -> Measurements:
    from edgepack.gate.budgets import gated_throughput

    return Measurements(1, None, None, {}, throughput=gated_throughput(validation))


def _budgets(tmp_path: Path, value: str) -> Any:
    """The recipe's budgets with only `min_throughput_ips = value`."""
    text = DIGITS.replace('devices = ["host"]', 'devices = ["host", "host-1core"]')
    text = text[: text.index("[budgets]")] + f"[budgets]\nmin_throughput_ips = {value}\n"
    return in_recipe_file(tmp_path, text).recipe.budgets


def test_the_budget_holds_the_best_cell_and_names_what_was_not_timed(tmp_path: Path) -> None:
    validation = {
        "host": _run("host", Throughput((_cell(1, 1, 0.02), _cell(1, 8, 0.08)))),  # best: 100,000/s
        "host-1core": _run("host-1core", Throughput((_cell(1, 8, None, "the graph fixes batch 1"),))),
        "qemu": _run("qemu", Throughput((_cell(1, 1, 0.001),)), emulated=True),  # the emulator's: never gated
    }
    results = {r.name: r for r in check_budgets(_budgets(tmp_path, "99000.0"), _measured(validation))}
    assert set(results) == {"min_throughput_ips.host", "min_throughput_ips.host-1core"}
    host = results["min_throughput_ips.host"]
    assert host.passed and host.measured == pytest.approx(100_000.0) and "1 thread(s), batch 8" in host.detail
    assert (
        not results["min_throughput_ips.host-1core"].passed
        and "no cell" in results["min_throughput_ips.host-1core"].detail
    )
    above = check_budgets(_budgets(tmp_path, "{ host = 100001.0 }"), _measured(validation))
    assert [(r.name, r.passed) for r in above] == [("min_throughput_ips.host", False)]
    (missing,) = check_budgets(_budgets(tmp_path, "{ host = 1.0 }"), _measured({}))
    assert not missing.passed and missing.measured is None and "timed no grid" in missing.detail


def test_the_tables_mark_the_best_and_say_why_a_cell_or_device_was_not_timed() -> None:
    validation = {
        "host": _run("host", Throughput((_cell(1, 1, 0.02), _cell(1, 8, 0.08), _cell(2, 8, None, "it broke")))),
        "tflm": DeviceRun("tflm", "tflm", True, None, throughput=Throughput((), "TFLM runs no grid")),
    }
    host, untimed = throughput_tables(validation)
    assert "best 1 thread(s), batch 8, 100,000 inferences/s" in plain(host.title)
    rows = [[plain(c) for c in row] for row in host.rows]
    assert rows[1][4:] == ["100,000", "best"] and rows[0][5] == "" and rows[2][2:] == ["-", "-", "-", "it broke"]
    assert [[plain(c) for c in row] for row in untimed.rows] == [["tflm", "TFLM runs no grid"]]
    assert throughput_tables({"host": _run("host", None)}) == []


def test_the_request_counts_the_grid_invokes_and_passes_it_to_the_runner() -> None:
    req = RunRequest(Path("m.tflite"), None, runs=10, warmup=2, threads=1, grid=((1, 1), (2, 1), (1, 8)))
    assert req.invokes == 12 * 3  # the (1 thread, batch 1) cell is the latency run's own
    args = runner_args(req, "m.tflite", None)
    assert args[args.index("--grid") + 1] == "1x1,2x1,1x8"
    assert "--grid" not in runner_args(RunRequest(Path("m.tflite"), None, 10, 2, 1), "m.tflite", None)


def test_a_grid_asked_for_and_not_returned_fails_a_one_figure_budget(tmp_path: Path) -> None:
    """A real device whose runner gave no grid (an older runner over ssh) is unmeasured, not left out."""
    validation = {
        "host": _run("host", Throughput((_cell(1, 1, 0.02),))),
        "host-1core": _run("host-1core", Throughput(())),  # asked for, none came back: no why
    }
    results = {r.name: r for r in check_budgets(_budgets(tmp_path, "10.0"), _measured(validation))}
    assert results["min_throughput_ips.host"].passed
    lost = results["min_throughput_ips.host-1core"]
    assert not lost.passed and lost.measured is None and "its runner gave no grid" in lost.detail
    host, untimed = throughput_tables(validation)  # and the tables say so, with no empty grid
    assert "throughput on host" in plain(host.title)
    assert [plain(c) for c in untimed.rows[0]][0] == "host-1core" and "gave none" in plain(untimed.rows[0][1])


def test_a_nan_rate_is_never_the_best_whatever_its_place() -> None:
    nan = ThroughputCell(1, 1, {"mean": 0.01}, 0.01, float("nan"))
    good = _cell(2, 1, 0.5)  # 2,000/s
    assert Throughput((nan, good)).best == good and Throughput((good, nan)).best == good


def test_a_foreign_cell_without_a_mean_shows_a_dash() -> None:
    cell = ThroughputCell(1, 1, {"p50": 0.01}, 0.01, 100_000.0)  # a hand-edited measurements.json
    (table,) = throughput_tables({"host": _run("host", Throughput((cell,)))})
    assert [plain(c) for c in table.rows[0]][2:5] == ["-", "0.0100 ms", "100,000"]


def test_a_cell_the_timer_could_not_resolve_says_so() -> None:
    cell = runner.throughput_cell(1, 8, [0.0, 0.0, 0.0])
    assert cell["ips"] is None and cell["per_inference_ms"] is None
    assert cell["error"].startswith("the timer resolved no time per invoke")
    assert runner.throughput_cell(1, 8, [2.0, 2.0])["ips"] == pytest.approx(4000.0)
