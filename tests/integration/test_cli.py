"""CLI errors at the boundary of a training command, which loads TensorFlow before it refuses (the rest of
the CLI boundary: tests/unit/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, tiny_recipe


def test_unknown_builder_module_is_exit_2(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path).read_text().replace("edgepack.models.zoo:digits_cnn", "no_such_mod:build")
    path = tmp_path / "bad.toml"
    path.write_text(recipe)
    proc = run_cli("train", str(path), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot import builder module 'no_such_mod'" in proc.stderr
    assert "Traceback" not in proc.stderr
