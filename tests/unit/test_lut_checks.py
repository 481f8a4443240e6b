"""`compression = "lut"`'s checks: a recipe for TFLite Micro alone validates (metadata left out, not refused
by default); before training, a device of another kind under any name is refused naming its runtime, and a
missing tflite-micro names the install command."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import BASE_RECIPE as BASE

from edgepack.convert.lut import INSTALL_HINT, check_lut
from edgepack.errors import DeviceUnreachable, RecipeError
from edgepack.recipe.load import load_recipe

GOOD = (
    BASE
    + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm"]\n'
    + '[budgets]\nfits = ["pico"]\n[bundle]\nformats = ["c-array", "zip"]\n'
)


def test_a_recipe_for_tflm_alone_validates(tmp_path: Path) -> None:
    path = tmp_path / "lut.toml"
    path.write_text(GOOD)
    recipe = load_recipe(str(path)).recipe
    assert recipe.convert.compression == "lut" and recipe.bundle.metadata  # the default: left out, said why


def test_the_shipped_default_is_no_compression(tmp_path: Path) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(BASE)
    assert load_recipe(str(path)).recipe.convert.compression == "none"


@pytest.mark.parametrize(
    ("kind", "runtime"), [("local", "LiteRT"), ("ssh", "LiteRT"), ("adb", "LiteRT"), ("ethos-u", "Vela")]
)
def test_a_profile_of_another_kind_under_any_name_is_refused(kind: str, runtime: str) -> None:
    devices = [SimpleNamespace(name="tflm", kind="tflm"), SimpleNamespace(name="bench", kind=kind)]
    with pytest.raises(RecipeError) as caught:
        check_lut("ae", devices)
    assert f"'bench' (kind {kind}: {runtime}" in caught.value.message
    assert caught.value.code == "recipe-invalid" and "tflm" in (caught.value.hint or "")


def test_a_missing_tflite_micro_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "tflite_micro" else real(name))
    with pytest.raises(DeviceUnreachable) as caught:
        check_lut("ae", [SimpleNamespace(name="tflm", kind="tflm")])
    assert caught.value.hint == INSTALL_HINT and "tflite-micro" in caught.value.message


@pytest.mark.parametrize(("compression", "label"), [(None, "with its TFLite metadata"), ({"method": "lut"}, "LUT")])
def test_the_shipped_size_is_labelled_from_the_compression_record(compression: Any, label: str) -> None:
    from rich.console import Console

    from edgepack.cli.output import rich_table
    from edgepack.summary.run import results_table

    evaluate = SimpleNamespace(metric="rmse", float=None, metrics={"tflite": {}, "float": {}}, tflite=None,
                               drop=None, fidelity={})  # fmt: skip
    convert = SimpleNamespace(mode="int8", io="int8", size_bytes=1256, gzip_bytes=900, calibration=None)
    console = Console(width=200, record=True)
    console.print(
        rich_table(results_table(evaluate, convert, {}, 1488, compression))
    )  # a compressed file may be larger
    assert label in console.export_text()


def test_each_refused_device_is_named_with_its_own_runtime() -> None:
    devices = [SimpleNamespace(name="npu", kind="ethos-u"), SimpleNamespace(name="bench", kind="local")]
    with pytest.raises(RecipeError) as caught:
        check_lut("ae", devices)
    assert "'npu' (kind ethos-u: Vela" in caught.value.message and "'bench' (kind local: LiteRT" in caught.value.message


def test_a_recipe_naming_both_kinds_of_shipped_profile_names_each_runtime(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    path.write_text(BASE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["ethos-u55-128", "host"]\n')
    with pytest.raises(RecipeError) as caught:
        load_recipe(str(path))
    text = str(caught.value.message) + str(caught.value.context)
    assert "'ethos-u55-128' (Vela leaves" in text and "'host' (LiteRT refuses" in text


@pytest.mark.parametrize("name", ["host-tflm", "rpi4-tflm", "android-mcu", "ssh-board"])
def test_a_user_profile_whose_name_starts_like_a_shipped_one_is_not_refused_by_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "named.toml"
    path.write_text(BASE + f'[convert]\ncompression = "lut"\n[validate]\ndevices = ["{name}"]\n')
    assert load_recipe(str(path)).recipe.validation.devices == [name]  # its kind is checked before training


def test_a_failed_measurement_of_the_uncompressed_arena_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgepack.devices.toolchains import tflm_arena
    from edgepack.errors import StageError
    from edgepack.pipeline.compress import uncompressed_arena
    from edgepack.pipeline.plan import Plan
    from edgepack.pipeline.shipment import Shipment
    from edgepack.progress import NullReporter

    calls = []

    def fails(*args: Any) -> Any:
        calls.append(args)
        raise StageError("TFLM lacks an op", code="tflm-failed")

    monkeypatch.setattr(tflm_arena, "measure_arena", fails)
    assert uncompressed_arena(Path("m.tflite"), None) == (None, "TFLM lacks an op")  # type: ignore[arg-type]
    path = tmp_path / "lut.toml"
    path.write_text(GOOD)
    loaded = load_recipe(str(path))
    inputs: Any = SimpleNamespace(recipe=loaded.recipe, plan=Plan(), reporter=NullReporter())
    shipment = Shipment(inputs, Path("m.tflite"), lambda: None, dict)  # no conversion: the shipment's memo alone
    assert [shipment.plain_arena() for _ in range(4)] == [(None, "TFLM lacks an op")] * 4
    assert len(calls) == 2  # one for the function, one for the shipment (it keeps the failure)


def test_switching_compression_keeps_the_convert_stage_id() -> None:
    from edgepack.pipeline.convert import convert_stage
    from edgepack.recipe.convert import ConvertSettings

    configs: list[Any] = []
    cache = SimpleNamespace(stage_id=lambda name, config, inputs: configs.append(config) or "id", run=lambda *a: a[1])
    inputs: Any = SimpleNamespace(recipe=SimpleNamespace(seed=0), fingerprints={"calibration": "c"}, cache=cache)
    optimized: Any = SimpleNamespace(id="opt")
    for compression in ("none", "lut"):
        convert_stage(inputs, ConvertSettings(mode="int8", compression=compression), optimized, optimized)
    assert configs[0] == configs[1] and "compression" not in configs[0] and configs[0]["mode"] == "int8"


@pytest.mark.parametrize(
    ("given", "bundled", "as_given"), [(False, False, False), (True, False, True), (True, True, False)]
)
def test_only_a_model_given_to_validate_is_measured_as_given_and_left_uncompressed(
    tmp_path: Path, given: bool, bundled: bool, as_given: bool
) -> None:
    from edgepack.pipeline import Pipeline
    from edgepack.pipeline.compress import applies
    from edgepack.pipeline.plan import Plan

    path = tmp_path / "lut.toml"
    path.write_text(GOOD)
    loaded = load_recipe(str(path))
    plan = None
    if given:
        plan = (Plan.bundle_given if bundled else Plan.measure_given)(tmp_path / "m.tflite")
    pipeline = Pipeline(loaded, tmp_path / "w", plan=plan)
    assert pipeline.plan.as_given is as_given and applies(pipeline.recipe, pipeline.plan) is not as_given
