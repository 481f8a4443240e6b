"""The runner's plan: which stages a run has, and the mistakes a run says before it loads data or trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BASE_RECIPE, in_recipe_file

from edgepack.errors import BadInputError
from edgepack.pipeline import Pipeline
from edgepack.pipeline.plan import Plan


def test_a_plan_names_its_file_only_for_a_given_model(tmp_path: Path) -> None:
    assert Plan().converts and not Plan().as_given
    assert Plan.measure_given(tmp_path / "m.tflite").as_given
    bundled = Plan.bundle_given(tmp_path / "m.tflite")
    assert not bundled.converts and not bundled.as_given
    with pytest.raises(ValueError, match="given model's file"):
        Plan("recipe", tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="given model's file"):
        Plan("measure-given")


def test_a_search_on_an_emulated_device_is_refused_before_anything_trains(tmp_path: Path, no_data: list[str]) -> None:
    text = (
        BASE_RECIPE
        + '[validate]\ndevices = ["host", "rpi4-emulated"]\n'
        + '[convert.search]\nmodes = ["int8", "float16"]\nmax_drop = 0.01\ndevice = "rpi4-emulated"\n'
    )
    pipeline = Pipeline(in_recipe_file(tmp_path, text), tmp_path / "w")
    with pytest.raises(BadInputError, match="emulated device") as raised:
        pipeline.convert()
    assert raised.value.code == "search-emulated" and no_data == []
