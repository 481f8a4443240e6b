"""Bad recipes are refused with the file, the field path and what is allowed; exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BASE_RECIPE as BASE
from conftest import invoke

from edgepack.recipe.load import load_recipe


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            "{ width_x = 16 }",
            [
                "model.args.width_x: builder 'edgepack.models.zoo:digits_cnn' takes no argument 'width_x'",
                "its arguments besides the input shape and size: width",
            ],
        ),
        (
            '{ width = "ten" }',
            [
                "model.args.width = 'ten': must be a valid integer",
                "builder 'edgepack.models.zoo:digits_cnn' takes 'width': int, > 0 and <= 256",
            ],
        ),
        (
            "{ width = 16.5 }",
            ["model.args.width = 16.5: must be a valid integer"],
        ),
    ],
)
def test_recipes_check_holds_builder_args_to_the_builders_signature(
    tmp_path: Path, args: str, expected: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + f"args = {args}\n")
    assert load_recipe(str(path)).recipe.model.args  # the schema alone lets it through ...
    result = invoke("recipes", "check", str(path))
    assert result.exit_code == 2, result.output  # ... recipes check reads the builder
    assert "builder-args" in result.stderr and str(path) in result.stderr and "Traceback" not in result.stderr
    for fragment in expected:
        assert fragment in result.stderr
    trained = invoke("train", str(path), "--workdir", str(tmp_path / "w"))  # the train stage refuses it the same way
    assert trained.exit_code == 2 and expected[0] in trained.stderr
    assert not (tmp_path / "w" / "bad" / "train").exists()
