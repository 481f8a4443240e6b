"""Same seed, same figures; a run killed during conversion leaves no partial bundle or stage."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, tiny_recipe, tiny_work

from edgepack.fsutil import TMP_MARK

pytestmark = pytest.mark.slow


def _run_json(recipe: Path, work: Path) -> dict:
    proc = run_cli("--json", "run", str(recipe), "--workdir", str(work), "--no-cache")
    assert proc.returncode in (0, 3), proc.stderr
    return json.loads(proc.stdout)


def test_two_runs_with_the_same_seed_give_the_same_model_bytes_and_build_section(
    tiny_run: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "y").mkdir()
    first = tiny_run["report"]  # the session's run of the same recipe, elsewhere, from nothing, in another process
    second = _run_json(tiny_recipe(tmp_path / "y"), tmp_path / "b")
    bundles = [Path(first["bundle"][0]), Path(second["bundle"][0])]
    assert bundles[0] != bundles[1]
    assert (bundles[0] / "model.tflite").read_bytes() == (bundles[1] / "model.tflite").read_bytes()
    assert (bundles[0] / "manifest.json").read_bytes() == (bundles[1] / "manifest.json").read_bytes()
    runs = [json.loads((b / "measurements.json").read_text()) for b in bundles]  # measured twice: its own file
    assert (
        runs[0]["model_sha256"]
        == runs[1]["model_sha256"]
        == hashlib.sha256((bundles[0] / "model.tflite").read_bytes()).hexdigest()
    )
    assert all(run["measured_at"] and run["host"]["machine"] and run["validation"]["host"] for run in runs)
    for stage in ("train", "evaluate"):
        keys = ("test_accuracy",) if stage == "train" else ("float", "optimized", "tflite")
        assert [first["stages"][stage][k] for k in keys] == [second["stages"][stage][k] for k in keys]
    qat_a, qat_b = first["stages"]["optimize"]["stages"][-1], second["stages"]["optimize"]["stages"][-1]
    assert qat_a["test_accuracy"] == qat_b["test_accuracy"]
    assert first["stages"]["train"]["id"] == second["stages"]["train"]["id"]


@pytest.fixture(scope="module")
def optimized(tiny_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder with the tiny recipe trained and optimized (recipe name `shared`; the session's
    `tiny_run` stages): the tests below change only what comes after (conversion, bundle), on their own
    copies."""
    return tiny_work(tiny_run, tmp_path_factory.mktemp("optimized") / "w", "shared")


def test_bundling_the_same_artifacts_twice_gives_the_same_zip(optimized: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, name="shared", extra='\n[bundle]\nformats = ["android", "c-array", "zip"]\n')
    shutil.copytree(optimized, tmp_path / "w")
    zips = []
    for out in ("one", "two"):
        proc = run_cli("--json", "bundle", str(recipe), "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / out))
        assert proc.returncode == 0, proc.stderr
        zips.append((tmp_path / f"{out}.zip").read_bytes())
        assert (tmp_path / out / "measurements.json").is_file()  # beside the bundle, not in the zip
    assert zips[0] == zips[1]
    with zipfile.ZipFile(io.BytesIO(zips[0])) as archive:
        names = archive.namelist()
        assert names == sorted(names) and "measurements.json" not in names
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    measured = [json.loads((tmp_path / out / "measurements.json").read_text()) for out in ("one", "two")]
    assert all(run["validation"]["host"]["latency_ms"]["runs"] == 20 for run in measured)  # each bundling measured


# `edgepack run` with the conversion held once the model is written inside the stage's temporary directory:
# the held process says where on the file descriptor in HOLD_FD and waits for a stdin that never comes.
HELD_RUN = """
import os, sys
import edgepack.convert.isolated as isolated
real = isolated.convert_isolated
def held(*args, **kwargs):
    result = real(*args, **kwargs)
    os.write(int(os.environ["HOLD_FD"]), (str(args[3]) + "\\n").encode())
    sys.stdin.read()
    return result
isolated.convert_isolated = held
from edgepack.cli.app import main
sys.argv = ["edgepack", *sys.argv[1:]]
main()
"""


def test_killing_run_during_conversion_leaves_no_partial_bundle(optimized: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, name="shared", calibration=1347)
    work = tmp_path / "w"
    shutil.copytree(optimized, work)  # trained and optimized: the run goes straight to the conversion
    root = work / "shared"
    good = root / "bundle"
    good.mkdir(parents=True)
    (good / "manifest.json").write_text('{"previous": "good bundle"}')
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", HELD_RUN, "run", str(recipe), "--workdir", str(work)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOLD_FD": str(write_end)},
        pass_fds=(write_end,),
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as held:  # no timer: the run is held mid-stage until it is killed
            model = Path(held.readline().strip())
        assert model.is_file() and TMP_MARK in model.parent.name, "the conversion was not held inside its stage"
        assert not (root / "convert").exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()  # type: ignore[union-attr]  # held open for the run, closed after it
    assert (good / "manifest.json").read_text() == '{"previous": "good bundle"}'
    assert sorted(p.name for p in good.iterdir()) == ["manifest.json"]
    assert not (root / "convert").exists(), "a half-done conversion must not look like a finished stage"
    assert (root / "optimize" / "stage.json").is_file()
    # The next run to take the stage's lock clears what the killed one left behind (under the lock: no live
    # writer's temporaries are touched), and converts.
    from edgepack.pipeline import Pipeline
    from edgepack.recipe import load_recipe

    Pipeline(load_recipe(str(recipe)), work).convert()
    assert not list(root.glob(f"*{TMP_MARK}*")) and (root / "convert" / "stage.json").is_file()
