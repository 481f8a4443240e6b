"""CLI behaviour that needs no training: start-up, help, errors at the boundary (a builder that cannot be
imported, refused by a training command: tests/integration/test_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, run_cli


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_help_imports_no_heavy_module() -> None:
    modules = _modules_after(
        "import sys\nfrom edgepack.cli.app import app\nsys.argv = ['edgepack', '--help']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert {"typer", "rich", "edgepack.cli.stages", "edgepack.cli.devices", "edgepack.cli.summary"} <= modules
    heavy = {
        "numpy",
        "pydantic",
        "tensorflow",
        "tf_keras",
        "tensorflow_model_optimization",
        "ai_edge_litert",
        "jsonschema",
        "edgepack.recipe.schema",
        "edgepack.devices.profiles",
    }
    assert not heavy & modules, heavy & modules


def test_recipes_commands_do_not_import_tensorflow() -> None:
    modules = _modules_after(
        "import sys\nfrom edgepack.cli.app import app\nsys.argv = ['edgepack', 'recipes', 'check', 'digits']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert "tensorflow" not in modules


def test_console_script_help_and_version() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0 and "run" in proc.stdout and "gate" in proc.stdout
    import tomllib

    from edgepack import __version__

    declared = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == declared  # one version, said twice: keep them equal
    assert run_cli("--version").stdout.strip() == f"edgepack {declared}"


def test_missing_dataset_file_is_exit_2_with_field_and_no_traceback(tmp_path: Path) -> None:
    recipe = tmp_path / "npz.toml"
    recipe.write_text(
        '[dataset]\nkind = "npz"\npath = "nowhere.npz"\n'
        '[model]\nkind = "builder"\nbuilder = "edgepack.models.zoo:digits_cnn"\n'
    )
    result = invoke("train", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2
    assert "dataset path 'nowhere.npz' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_npz_missing_key_names_the_keys_present(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8)), y=np.zeros(4, dtype=np.int64))
    recipe = tmp_path / "npz.toml"
    recipe.write_text(
        '[dataset]\nkind = "npz"\npath = "d.npz"\n'
        '[model]\nkind = "builder"\nbuilder = "edgepack.models.zoo:digits_cnn"\n'
    )
    result = invoke("--json", "train", str(recipe), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2
    assert "no array named 'x'" in result.stdout and "images" in result.stdout


def test_unknown_device_lists_the_known_ones() -> None:
    from edgepack.devices.profiles import load_device
    from edgepack.errors import BadInputError

    with pytest.raises(BadInputError) as info:
        load_device("pi-zero")
    assert "unknown device 'pi-zero'" in info.value.message and "host" in (info.value.hint or "")


def test_gate_on_a_garbled_manifest_is_exit_2_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"schema_version": 2, "model": {}}')
    result = invoke("gate", str(tmp_path))
    assert result.exit_code == 2
    assert "bundle-invalid" in result.stderr and "lacks or garbles the budgets: 'recipe'" in result.stderr


def test_json_and_debug_are_taken_after_the_command_as_before_it() -> None:
    import json

    before, after = invoke("--json", "recipes", "list"), invoke("recipes", "list", "--json")
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout) == json.loads(before.stdout) and json.loads(after.stdout)[0]["name"]
    error = invoke("devices", "check", "no-such-device", "--json")
    assert error.exit_code == 2 and json.loads(error.stdout)["error"] == "device-unknown"
    nested = invoke("recipes", "show", "digits", "--debug", "--json")  # both, in any order, after a subcommand
    assert nested.exit_code == 0 and json.loads(nested.stdout)["recipe"]["name"] == "digits"
    table = invoke("recipes", "list")
    assert table.exit_code == 0 and not table.stdout.lstrip().startswith("[")  # no flag: the table


def test_help_does_not_import_matplotlib() -> None:
    modules = _modules_after(
        "import sys\nfrom edgepack.cli.app import app\nsys.argv = ['edgepack', '--help']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert "edgepack.cli.compare" in modules  # the report and compare commands are registered ...
    assert not {"matplotlib", "edgepack.report.html", "edgepack.bundle.figures"} & modules  # ... without their imports
