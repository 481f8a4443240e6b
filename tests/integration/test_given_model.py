"""A `.tflite` given to `validate --model` or `bundle --model` that is no model is refused before any data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_RECIPE, in_recipe_file

from edgepack.errors import ModelError
from edgepack.pipeline import Pipeline
from edgepack.pipeline.plan import Plan


@pytest.mark.parametrize("plan", [Plan.measure_given, Plan.bundle_given])
def test_a_given_file_that_is_no_model_is_refused_before_any_data(
    tmp_path: Path, no_data: list[str], plan: Any
) -> None:
    junk = tmp_path / "m.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    pipeline = Pipeline(in_recipe_file(tmp_path, BASE_RECIPE), tmp_path / "w", plan=plan(junk))
    with pytest.raises(ModelError, match="m.tflite"):
        pipeline.convert()
    assert no_data == []
