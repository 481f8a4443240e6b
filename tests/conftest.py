"""Shared fixtures: tiny recipes, a CLI runner, and one real run of the default recipe per session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgepack.cli.app import app

REPO = Path(__file__).resolve().parents[1]
EDGEPACK = Path(sys.executable).with_name("edgepack")

TINY = """
name = "{name}"
description = "tiny test recipe"
seed = {seed}

[dataset]
kind = "digits"
normalization = {{ mean = 0.0, std = 16.0 }}

[model]
kind = "builder"
builder = "edgepack.models.zoo:digits_cnn"
args = {{ width = 8 }}

[train]
epochs = 3
learning_rate = 0.003

[[optimize]]
kind = "prune"
final_sparsity = 0.5
epochs = 1
learning_rate = 0.0005

[[optimize]]
kind = "qat"
epochs = 1
learning_rate = 0.0002

[convert]
mode = "int8"
calibration_samples = {calibration}

[validate]
warmup = 2
runs = 20
"""


def tiny_recipe(folder: Path, name: str = "tiny", seed: int = 0, calibration: int = 64,
                extra: str = "") -> Path:
    """Write a tiny digits recipe (seconds to run) and return its path."""
    path = folder / f"{name}.toml"
    path.write_text(TINY.format(name=name, seed=seed, calibration=calibration) + extra)
    return path


def invoke(*args: str) -> Any:
    """Run the CLI in-process; returns click's Result (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, list(args))


def run_cli(*args: str, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the installed `edgepack` console script in a subprocess."""
    return subprocess.run([str(EDGEPACK), *args], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real `edgepack run` of the shipped default recipe, with its JSON report and files."""
    work = tmp_path_factory.mktemp("default")
    junit = work / "junit.xml"
    proc = run_cli("--json", "run", "--workdir", str(work), "--junit", str(junit), cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    bundle = Path(report["bundle"][0])
    return {"work": work, "report": report, "bundle": bundle, "junit": junit,
            "manifest": json.loads((bundle / "manifest.json").read_text())}


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real OpenSSH server on 127.0.0.1 with its own keys, for the ssh device tests."""
    from sshd import sshd_binary, start_sshd

    if sshd_binary() is None:
        pytest.skip("sshd is not installed (Debian: apt install openssh-server); .ci/run installs it")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
