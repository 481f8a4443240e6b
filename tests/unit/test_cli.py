"""CLI behaviour that needs no training: start-up, help, errors at the boundary (a builder that cannot be
imported, refused by a training command: tests/integration/test_cli.py)."""

from __future__ import annotations

import json
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


HEAVY = {
    "numpy",
    "pydantic",
    "tensorflow",
    "tf_keras",
    "tensorflow_model_optimization",
    "ai_edge_litert",
    "tflite_micro",
    "ethosu",
    "jsonschema",
    "matplotlib",
    "rich",
    "edgepack.recipe.schema",
    "edgepack.devices.profiles",
    "edgepack.report.html",
    "edgepack.bundle.figures",
}


def every_help() -> list[list[str]]:
    """`edgepack --help`, `edgepack CMD --help` for every command and `edgepack GROUP SUB --help`."""
    from edgepack.cli.app import command_paths

    return [["--help"]] + [[*path, "--help"] for path in command_paths()]


def test_help_imports_no_heavy_module() -> None:
    modules = _modules_after(
        "import sys\nfrom edgepack.cli.app import app\nsys.argv = ['edgepack', '--help']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
    )
    assert {"typer", "edgepack.cli.app"} <= modules
    assert not HEAVY & modules, HEAVY & modules
    loaded = sorted(m for m in modules if m.startswith("edgepack.cli."))
    assert loaded == [
        "edgepack.cli.app",
        "edgepack.cli.group",
        "edgepack.cli.output",
        "edgepack.cli.progress",
    ]  # no command module


def test_no_help_of_any_command_imports_a_heavy_module() -> None:
    """Every `--help` in one process, one after another: what they import together is checked."""
    argvs = every_help()
    assert len(argvs) > 20 and ["devices", "check", "--help"] in argvs and ["run", "--help"] in argvs
    code = (
        "import contextlib, io, json, sys\nfrom edgepack.cli.app import app\n"
        f"for argv in json.loads({json.dumps(json.dumps(argvs))}):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n            app(argv, prog_name='edgepack')\n"
        "        except SystemExit as exc:\n            assert exc.code == 0, (argv, exc.code)\n"
        "    assert out.getvalue().startswith('Usage: edgepack ' + ' '.join(argv[:-1])), (argv, out.getvalue())\n"
    )
    modules = _modules_after(code)
    assert {"edgepack.cli.stages", "edgepack.cli.devices", "edgepack.cli.compare"} <= modules  # each was loaded
    assert not HEAVY & modules, HEAVY & modules


def test_the_command_list_is_each_commands_own_first_paragraph() -> None:
    """`edgepack --help` lists the commands from a table (no module imported): it must say what each
    command's own help says, and name every command the modules define."""
    from edgepack.cli.app import COMMANDS, _module_group
    from edgepack.cli.group import first_paragraph

    by_module: dict[str, set[str]] = {}
    for name, (module, attribute, summary) in COMMANDS.items():
        group = _module_group(module, attribute)
        command = group if attribute is not None else group.commands[name]
        assert first_paragraph(command.help) == summary, name
        if attribute is None:
            by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        assert set(_module_group(module, None).commands) == names, module
    for argv in (["--help"], ["recipes", "--help"], ["devices", "--help"]):
        listed = invoke(*argv).stdout.split("Commands:")[1]
        assert "..." not in listed  # wrapped, not cut
    listed = " ".join(invoke("--help").stdout.split())
    assert "train Build and train the recipe's model (the float reference)." in listed


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


def test_a_mistyped_command_is_exit_2_with_a_suggestion() -> None:
    result = invoke("rn")
    assert result.exit_code == 2
    assert "No such command 'rn'. Did you mean 'run'?" in result.stderr
    nested = invoke("recipes", "lst")
    assert nested.exit_code == 2 and "Did you mean 'list'?" in nested.stderr


def test_no_command_shows_the_help_on_stdout_with_exit_2() -> None:
    for argv in ([], ["recipes"], ["devices"], ["manifest"]):
        result = invoke(*argv)
        assert result.exit_code == 2, argv
        assert result.stdout.startswith("Usage: edgepack " + " ".join(argv)), (argv, result.stdout)
        assert "Commands:" in result.stdout
