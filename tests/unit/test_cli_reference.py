"""docs/cli.md is generated from the Typer commands (edgepack/cli/reference.py): it must match them."""

from __future__ import annotations

import subprocess
import sys

from edgepack.cli import reference


def test_docs_cli_md_is_the_generated_reference() -> None:
    expected = reference.generate()
    current = reference.PAGE.read_text(encoding="utf-8") if reference.PAGE.exists() else ""
    assert current == expected, (
        f"docs/cli.md differs from the commands' help: regenerate it with `{reference.REGENERATE}` "
        "(or `python -m edgepack.cli.reference > docs/cli.md`) and commit it"
    )


def test_the_reference_lists_every_command_with_its_usage_and_options() -> None:
    from edgepack.cli.app import command_paths

    text = reference.generate()
    for path in command_paths():
        words = " ".join(["edgepack", *path])
        assert f"`{words}`" in text, words  # a heading per command and subcommand
        assert f"\n{words} [OPTIONS]" in text, words  # and its usage line
    assert "| `-w, --workdir <path>` | Where stage outputs are cached. | build |" in text
    assert "| `--no-cache` | Re-run every stage even when its inputs are unchanged. | off |" in text


def test_the_reference_is_independent_of_the_terminal_and_imports_no_numpy_or_tensorflow() -> None:
    probe = (
        "import sys\nfrom edgepack.cli import reference\ntext = reference.generate()\n"
        "heavy = sorted(m for m in ('numpy', 'tensorflow', 'tf_keras', 'ai_edge_litert') if m in sys.modules)\n"
        "assert not heavy, heavy\nsys.stdout.write(text)\n"
    )
    for columns in ("40", "250"):
        env = {"COLUMNS": columns, "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(p for p in sys.path if p)}
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
        assert out.stdout == reference.generate(), columns
