"""CLI errors at the boundary of a training command, which loads TensorFlow before it refuses (the rest of
the CLI boundary: tests/unit/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BASE_RECIPE, invoke, run_cli, tiny_recipe


def test_unknown_builder_module_is_exit_2(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path).read_text().replace("edgepack.models.zoo:digits_cnn", "no_such_mod:build")
    path = tmp_path / "bad.toml"
    path.write_text(recipe)
    proc = run_cli("train", str(path), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot import builder module 'no_such_mod'" in proc.stderr
    assert "Traceback" not in proc.stderr


BUILDERS = """
def value(input_shape, size, width: int = 8):
    raise ValueError(f"width {width} is not a multiple of 3")


def memory(input_shape, size, width: int = 8):
    raise MemoryError("Unable to allocate 7.28 EiB for an array with shape (1000000000000000000, 8)")
"""


@pytest.mark.parametrize(
    "function, code, words",
    [
        ("value", "builder-failed", "failed: ValueError: width 8 is not a multiple of 3"),
        ("memory", "builder-out-of-memory", "ran out of memory building the model: MemoryError: Unable to allocate"),
    ],
)
def test_a_builder_that_raises_while_building_is_exit_2_naming_it_before_training(
    tmp_path: Path, function: str, code: str, words: str
) -> None:
    (tmp_path / "raising_builders.py").write_text(BUILDERS)
    path = tmp_path / "raising.toml"
    path.write_text(
        BASE_RECIPE.replace("edgepack.models.zoo:digits_cnn", f"raising_builders:{function}") + "args = { width = 8 }\n"
    )
    result = invoke("run", str(path), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2, result.output
    assert (
        f"error ({code}): builder 'raising_builders:{function}' with model.args = {{'width': 8}} {words}"
        in result.stderr
    )
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / "w").rglob("stage.json"))  # nothing trained


LUT_RECIPE = BASE_RECIPE + '[convert]\ncompression = "lut"\n[validate]\ndevices = ["tflm", "bench"]\n'


@pytest.mark.parametrize(
    ("command", "device", "named"),
    [("bundle", None, "'bench' (kind local: "), ("validate", "host", "'host' (kind local: ")],
)
def test_a_lut_recipe_on_a_device_not_tflm_is_exit_2_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, device: str | None, named: str
) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "bench.toml").write_text('kind = "local"\n')  # a user's LiteRT profile, any name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lut.toml").write_text(LUT_RECIPE)
    result = invoke(command, "lut.toml", "--workdir", "w", *(["--device", device] if device else []))
    assert result.exit_code == 2, result.output
    assert "error (recipe-invalid)" in result.stderr and named in result.stderr and "LiteRT" in result.stderr
    assert not list((tmp_path / "w").rglob("stage.json")) and not list((tmp_path / "w").rglob("train*"))
