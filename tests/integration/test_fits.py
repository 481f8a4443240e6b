"""Boards (kind "mcu") and the `fits` budget: flash = the model + the board's firmware allowance, RAM = the
arena TFLM measured + the input/output buffers + the RAM allowance; exit 3 naming the board when it
does not fit, the headroom when it does; `devices check BOARD --model` answers without a recipe."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, run_cli, without_module

from integration.test_tflm import exact_need

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tflite_micro") is None,
    reason="tflite-micro has wheels for Linux x86-64 only; not installed here",
)

RUNTIME_RAM = 4096
RUNTIME_FLASH = 65_536


def io_bytes(model: Path) -> int:
    """The model's input and output tensor bytes, as LiteRT sees them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    details = interpreter.get_input_details() + interpreter.get_output_details()
    return sum(int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize for d in details)


@pytest.fixture(scope="module")
def boards(default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two boards around the digits model's RAM need: `tight` 1 KiB short of it, `roomy` 4 KiB over."""
    folder = tmp_path_factory.mktemp("boards")
    model = default_run["bundle"] / "model.tflite"
    arena = -(-exact_need(model) // 16) * 16  # TFLM's own bisection, to the 16 bytes edgepack reports
    need = arena + io_bytes(model) + RUNTIME_RAM
    (folder / "devices").mkdir()
    for name, ram in (("tight", need - 1024), ("roomy", need + 4096)):
        (folder / "devices" / f"{name}.toml").write_text(
            f'kind = "mcu"\nboard = "Test board {name}"\ncore = "cortex-m4"\nclock_mhz = 80\nflash = "1 MiB"\n'
            f"ram = {ram}\nruntime_flash = {RUNTIME_FLASH}\nruntime_ram = {RUNTIME_RAM}\n"
        )
    return {
        "folder": folder,
        "model": model,
        "arena": arena,
        "need": need,
        "size": model.stat().st_size,
        "converted": default_run["manifest"]["model"]["converted_size_bytes"],
    }


def test_a_board_1_kib_short_fails_fits_naming_it_and_one_with_room_shows_the_headroom(
    boards: dict[str, Any], default_run: dict[str, Any]
) -> None:
    folder = boards["folder"]
    recipe = (REPO / "recipes" / "digits.toml").read_text().replace("[budgets]", '[budgets]\nfits = ["tight", "roomy"]')
    assert 'fits = ["tight", "roomy"]' in recipe
    (folder / "fits.toml").write_text(recipe)
    junit = folder / "junit.xml"
    proc = run_cli(
        "--json", "gate", str(default_run["bundle"]), "--recipe", "fits.toml", "--junit", str(junit), cwd=folder
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    results = {r["name"]: r for r in json.loads(proc.stdout)["results"]}
    tight, roomy = results["fits.tight.ram"], results["fits.roomy.ram"]
    assert tight["passed"] is False and tight["measured"] == boards["need"] and tight["margin"] == -1024
    assert roomy["passed"] is True and roomy["measured"] == boards["need"] and roomy["margin"] == 4096
    assert f"the arena ({boards['arena']:,} B" in roomy["detail"] and "Test board roomy" in roomy["detail"]
    for name in ("tight", "roomy"):  # flash: the converted model (the c-array's bytes) plus the firmware allowance
        flash = results[f"fits.{name}.flash"]
        assert boards["converted"] < boards["size"]  # the shipped file also holds the TFLite metadata
        assert flash["passed"] is True and flash["measured"] == boards["converted"] + RUNTIME_FLASH
        assert flash["margin"] == (1 << 20) - boards["converted"] - RUNTIME_FLASH
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    failure = cases["fits.tight.ram"].find("failure")
    assert failure is not None and "over by 1024 bytes" in failure.get("message", "")
    assert "Test board tight" in failure.get("message", "")
    assert [name for name, case in cases.items() if case.find("failure") is not None] == ["fits.tight.ram"]
    table = run_cli("gate", str(default_run["bundle"]), "--recipe", "fits.toml", cwd=folder)
    assert table.returncode == 3 and "fits.tight.ram" in table.stderr and "over by 1024 bytes" in table.stderr
    assert "+4,096 B" in table.stdout  # the roomy board's headroom in the budgets table


def test_devices_check_answers_for_a_board_and_a_model_without_a_recipe(boards: dict[str, Any]) -> None:
    folder, model = boards["folder"], str(boards["model"])
    roomy = run_cli("--json", "devices", "check", "roomy", "--model", model, cwd=folder)
    assert roomy.returncode == 0, roomy.stdout + roomy.stderr
    fit = json.loads(roomy.stdout)
    assert fit["fits"] is True and fit["arena_bytes"] == boards["arena"] and fit["ram_headroom"] == 4096
    assert fit["ram_need"] == boards["need"]  # the bundle's model: flash is the converted model its manifest lists
    assert fit["flash_need"] == boards["converted"] + RUNTIME_FLASH and "converted model" in fit["flash_basis"]
    alone = boards["folder"] / "alone.tflite"  # the same file without its bundle: counted as it is
    alone.write_bytes(boards["model"].read_bytes())
    single = json.loads(run_cli("--json", "devices", "check", "roomy", "--model", str(alone), cwd=folder).stdout)
    assert single["flash_need"] == boards["size"] + RUNTIME_FLASH and "metadata included" in single["flash_basis"]
    as_json = run_cli("--json", "devices", "check", "tight", "--model", model, cwd=folder)
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["ram_headroom"] == -1024  # one document
    tight = run_cli("devices", "check", "tight", "--model", model, cwd=folder)
    assert tight.returncode == 3, tight.stdout + tight.stderr
    assert "does not fit Test board tight: ram short by 1,024 B" in tight.stderr and "Traceback" not in tight.stderr
    assert "-1,024 short" in tight.stdout
    board = run_cli("devices", "check", "nucleo-l4r5zi", cwd=folder)
    assert board.returncode == 0, board.stderr
    assert "ST NUCLEO-L4R5ZI" in board.stdout and "cortex-m4 at 120 MHz" in board.stdout and "655,360 B" in board.stdout
    host = run_cli("devices", "check", "host", "--model", model, cwd=folder)
    assert host.returncode == 2 and "--model is for boards" in host.stderr


def test_a_board_check_without_tflite_micro_says_how_to_install_it(boards: dict[str, Any], tmp_path: Path) -> None:
    env = without_module("tflite_micro", tmp_path)
    proc = run_cli("devices", "check", "roomy", "--model", str(boards["model"]), cwd=boards["folder"], env=env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "tflite-micro is not installed" in proc.stderr and "pip install tflite-micro" in proc.stderr
    # a recipe with fits is not a budget failure (exit 3) without it, but exit 4, before anything trains
    recipe = boards["folder"] / "needs-tflm.toml"
    recipe.write_text(
        (REPO / "recipes" / "digits.toml").read_text().replace("[budgets]", '[budgets]\nfits = ["roomy"]')
    )
    run = run_cli("run", str(recipe), "--workdir", str(tmp_path / "w"), cwd=boards["folder"], env=env)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "budgets.fits: tflite-micro, which measures the arena" in run.stderr
    assert not (tmp_path / "w" / "digits" / "train").exists()
