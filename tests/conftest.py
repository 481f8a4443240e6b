"""Shared by both tiers: tiny recipes, a CLI runner, one real run of the default recipe per session, the
test sshd, and the order in which the test files run.

tests/unit holds the tests that import none of TensorFlow, tf_keras, Keras, TFMOT, LiteRT, tflite-micro or
Vela (tests/unit/conftest.py makes them fail if they do); tests/integration holds everything that trains,
converts or runs an interpreter. Test modules import the helpers below with `from conftest import ...`:
this folder is on sys.path (put there below, whatever pytest's import mode), and the two tiers are
packages, so their own conftest.py files never take the name `conftest`.
"""

from __future__ import annotations

import fcntl
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgepack.cli.app import app

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
UNIT = TESTS / "unit"
FAKES = TESTS / "fakes"
EDGEPACK = Path(sys.executable).with_name("edgepack")
if str(TESTS) not in sys.path:  # `from conftest import ...`, `from sshd import ...` in either tier
    sys.path.insert(0, str(TESTS))

# What a unit test must not import (tests/unit/conftest.py), and collection must not import either: a module
# imported while collecting is already in sys.modules when the unit tests run, where the check cannot see it.
HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "ai_edge_litert", "tflite_micro", "ethosu")


def heavy_modules() -> set[str]:
    """The modules of HEAVY (and their submodules) imported in this process so far."""
    return {name for name in sys.modules if name.partition(".")[0] in HEAVY}


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


# Integration test files by their time on 2 cores, slowest first (their tests' times summed, from
# `pytest --junitxml`; a file's time includes the session fixtures it is first to ask for).
# pytest-xdist hands whole files to its workers in collection order, so the long files start first
# and the short ones fill the end instead of one worker finishing minutes after the other.
SLOWEST_FIRST = (
    "test_shipped_recipes.py",
    "test_shipped_mobilenet.py",
    "test_reproducible_and_atomic.py",
    "test_optimize.py",
    "test_accuracy_aware.py",
    "test_keras3_pipeline.py",
    "test_tasks.py",
    "test_ethos_u.py",
    "test_devices.py",
    "test_convert_pool.py",
    "test_inspect.py",
    "test_analyze.py",
    "test_fits.py",
    "test_keras3_bridge.py",
    "test_tflm.py",
    "test_init.py",
    "test_metadata.py",
    "test_fold.py",
    "test_default_run.py",
    "test_report.py",
    "test_c_array.py",
    "test_cli.py",
    "test_compare.py",
    "test_signing.py",
)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Any:
    """The unit files first (seconds in all), then the integration files slowest first (a stable sort: the
    order within a file is kept). Under xdist a worker runs its files in this order, so every unit test runs
    before any integration test of its process has imported TensorFlow. The outermost wrapper: after the
    other plugins' reordering (`--ff`, `--nf` put what failed or is new first), the unit files are put first
    again, each tier keeping the order it was given."""
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: (0, 0) if UNIT in item.path.parents else (1, rank.get(item.path.name, len(rank))))
    result = yield
    items.sort(key=lambda item: UNIT not in item.path.parents)
    return result


# Test module -> the HEAVY modules it imported when collected (at its top level); see HEAVY.
COLLECTED_HEAVY: dict[str, set[str]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    before = heavy_modules()
    report = yield
    if isinstance(collector, pytest.Module):
        new = {name.partition(".")[0] for name in heavy_modules() - before}
        if new:
            COLLECTED_HEAVY[collector.nodeid] = new
    return report


# The least a recipe needs: the digits and the zoo CNN (the recipe-validation tests add to it)
BASE_RECIPE = """
[dataset]
kind = "digits"
[model]
kind = "builder"
builder = "edgepack.models.zoo:digits_cnn"
"""

# A recipe on an .npz of features for a task (the tasks tests fill in task, keys and builder)
FEATURES = """
seed = 0
[task]
kind = "{task}"
[dataset]
kind = "npz"
path = "data.npz"
{keys}
[model]
kind = "builder"
builder = "edgepack.models.zoo:{builder}"
[train]
epochs = 1
"""


# The Dense autoencoder's recipe head (tests/models/dense_models.py) on synthetic frames: the granularity,
# int4 and low-rank tests add [train] and what follows
DENSE_AE = """
name = "{name}"
seed = 3

[task]
kind = "regression"

[dataset]
kind = "npz"
path = "{data}"
x_key = "x"
y_key = "x"
normalization = {{ mean = 0.0, std = 1.0 }}

[model]
kind = "builder"
builder = "models.dense_models:dense_bn_autoencoder"
args = {args}
"""


def dense_ae_recipe(folder: Path, name: str, args: str, rest: str, file: str | None = None) -> Path:
    """Write the autoencoder recipe `name` (builder `args`, then `rest`) beside its frames: 480 samples of
    8 latent factors through a fixed mixing, channels of widely varied scale (seeded)."""
    import numpy as np

    data = folder / "frames.npz"
    if not data.exists():
        rng = np.random.default_rng(0)
        latent = rng.normal(size=(480, 8)).astype(np.float32)
        mixing = rng.normal(size=(8, 640)).astype(np.float32) * np.geomspace(0.05, 3.0, 640, dtype=np.float32)
        np.savez(data, x=np.tanh(latent @ mixing).astype(np.float32))
    path = folder / (file or f"{name}.toml")
    path.write_text(DENSE_AE.format(name=name, data=data, args=args) + rest)
    return path


def zip_of(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    """A zip of (name, bytes, unix mode or None) entries, written as given (for archive checks)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def tiny_recipe(folder: Path, name: str = "tiny", seed: int = 0, calibration: int = 64, extra: str = "") -> Path:
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


def without_module(name: str, folder: Path) -> dict[str, str]:
    """An environment for a child process in which `import name` fails, as where the package is not installed
    (a package of that name first on PYTHONPATH that raises ImportError)."""
    hidden = folder / "hide" / name
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", "")])}


def fast_tflite(model: Any, path: Path, int8: bool, samples: int = 2) -> Path:
    """`model` (tf_keras) converted by the real TFLite converter, full int8 (`samples` random calibration
    inputs) or float32, written to `path`.

    The converter is given a SavedModel of one inference function (a tf.Module holding the model's
    variables), not the Keras model: saving a tf_keras model traces every layer for serialization,
    which takes MobileNetV2 40-70 s on 2 cores against 4 s this way; the .tflite is the same graph."""
    import numpy as np

    from edgepack.models.tf import load

    tf = load().tf
    shape = (1, *model.input_shape[1:])
    module = tf.Module()
    module.weights = list(model.variables)
    module.serve = tf.function(
        lambda x: {"output_0": model(x, training=False)},
        input_signature=[tf.TensorSpec(shape, tf.float32, name="input")],
    )
    exported = path.with_suffix(".savedmodel")
    tf.saved_model.save(module, str(exported), signatures={"serving_default": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(exported))
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.random(shape, dtype=np.float32)] for _ in range(samples))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def once_per_session(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, name: str, make: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """`make(folder)` run once per test session, its result (JSON, with Path values at the top) shared.

    Under pytest-xdist the first worker to ask makes it in the session's shared temporary folder; the
    others wait on a lock there and read what it wrote. When making it fails, the others fail saying so
    (they do not make it again in the folder the failure left)."""
    if not hasattr(request.config, "workerinput"):  # one process (no xdist worker)
        return make(factory.mktemp(name))
    shared = factory.getbasetemp().parent  # this session's, shared by its workers
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done, failed = shared / f"{name}.json", shared / f"{name}.failed"
        if failed.is_file():
            pytest.fail(f"the session fixture {name} failed in another worker:\n{failed.read_text()}", pytrace=False)
        if not done.is_file():
            try:
                made = make(shared / name)
            except Exception as exc:  # (a skip is not a failure: the next worker tries)
                failed.write_text(f"{type(exc).__name__}: {exc}"[-4000:])
                raise
            paths = [k for k, v in made.items() if isinstance(v, Path)]
            done.write_text(
                json.dumps({"paths": paths, "made": {k: str(v) if k in paths else v for k, v in made.items()}})
            )
            return made
        record = json.loads(done.read_text())
    return {k: Path(v) if k in record["paths"] else v for k, v in record["made"].items()}


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    """One real `edgepack run` of the shipped default recipe, with its JSON report and files.

    Made once per test session (`once_per_session`). It is read-only: a test that runs commands on
    its work folder runs them on `work_copy(default_run, tmp_path)`."""
    return once_per_session(request, tmp_path_factory, "default-run", _default_run)


def _default_run(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    junit = work / "junit.xml"
    proc = run_cli("--json", "run", "--workdir", str(work), "--junit", str(junit), cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    bundle = Path(report["bundle"][0])
    return {
        "work": work,
        "report": report,
        "bundle": bundle,
        "junit": junit,
        "manifest": json.loads((bundle / "manifest.json").read_text()),
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The tiny recipe (`tiny_recipe`'s defaults) run once per session from nothing (`run --no-cache`, by the
    installed script): its JSON report and work folder. test_reproducible_and_atomic compares a second such
    run with it; the tests that convert or bundle the tiny recipe start from its train and optimize stages
    (`tiny_work`) instead of training it again."""
    return once_per_session(request, tmp_path_factory, "tiny-run", _tiny_run)


def _tiny_run(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    proc = run_cli("--json", "run", str(tiny_recipe(folder)), "--workdir", str(folder / "work"), "--no-cache")
    assert proc.returncode in (0, 3), proc.stderr  # the tiny recipe has no budgets to fail, but its tests allow 3
    return {"report": json.loads(proc.stdout), "work": folder / "work"}


def tiny_work(tiny_run: dict[str, Any], work: Path, name: str) -> Path:
    """`work` holding the tiny recipe's train and optimize stages for a tiny recipe named `name` (a stage's id
    does not depend on the recipe's name: that recipe finds them in its cache, whatever comes after)."""
    for stage in ("train", "optimize"):
        shutil.copytree(tiny_run["work"] / "tiny" / stage, work / name / stage, ignore=shutil.ignore_patterns("*.lock"))
    return work


def tiny_copy(name: str, folder: Path, limit: int | None = None, keep_train: bool = False) -> Path:
    """The shipped recipe `name` with every stage cut to one epoch, 32 calibration samples, 5 validation runs
    and no budgets (and the data to `limit` images). With `keep_train` its [train] section is left as shipped:
    where that is the default recipe's, its train stage is the default run's (`default_train`)."""
    lines, section = [], ""
    for line in (REPO / "recipes" / f"{name}.toml").read_text().splitlines(keepends=True):
        section = line.split("#")[0].strip() if line.startswith("[") else section
        lines.append(line if keep_train and section == "[train]" else re.sub(r"^epochs = \d+", "epochs = 1", line))
    text = "".join(lines)
    text = re.sub(r"(?m)^calibration_samples = \d+", "calibration_samples = 32", text)
    text = re.sub(r"(?m)^runs = \d+", "runs = 5", text)
    text = re.sub(r"(?m)^\[budgets\][^\[]*", "", text)  # tiny epochs miss real budgets by design
    if limit:
        text = text.replace('kind = "digits"', f'kind = "digits"\nlimit = {limit}', 1)
    text += "\n[validate]\nwarmup = 1\nruns = 5\n" if "[validate]" not in text else ""
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def default_train(default_run: dict[str, Any], work: Path, name: str) -> None:
    """The default run's train stage in `work` for recipe `name`: a recipe whose [train], [model] and [dataset]
    are the default recipe's (the shipped ptq-int8, qat-int8, prune-qat-int8, ...) finds it in its cache."""
    shutil.copytree(
        default_run["work"] / "digits" / "train", work / name / "train", ignore=shutil.ignore_patterns("*.lock")
    )


@pytest.fixture(scope="session")
def ptq_run(
    default_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """The shipped ptq-int8 recipe (`tiny_copy`) run once per session on the default run's train stage (the same
    settings: nothing is trained): its JSON report, bundle and work folder."""
    return once_per_session(request, tmp_path_factory, "ptq-run", lambda folder: _ptq_run(default_run, folder))


def _ptq_run(default_run: dict[str, Any], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    work, bundle = folder / "work", folder / "work" / "bundle-ptq-int8"
    default_train(default_run, work, "ptq-int8")
    recipe = tiny_copy("ptq-int8", folder, keep_train=True)
    result = invoke("--json", "run", str(recipe), "--workdir", str(work), "--out", str(bundle))
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["stages"]["train"]["cached"], "the train stage was not the default run's"
    return {"report": report, "bundle": bundle, "work": work}


def work_copy(default_run: dict[str, Any], folder: Path) -> Path:
    """A copy of the default run's work folder in `folder` (its stages cached, nothing trained again)."""
    work = folder / "work"
    shutil.copytree(default_run["work"], work, ignore=shutil.ignore_patterns("*.lock"))
    return work


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real OpenSSH server on 127.0.0.1 with its own keys, for the ssh device tests."""
    from sshd import sshd_binary, start_sshd

    if sshd_binary() is None:
        pytest.skip("sshd is not installed (Debian: apt install openssh-server); .ci/run installs it")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture()
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sshd: Any) -> Path:
    """./devices with the test sshd, a fake phone, and broken variants; fake adb first on PATH."""
    folder = tmp_path / "devices"
    folder.mkdir()
    python = sys.executable
    (folder / "ssh-test.toml").write_text(sshd.profile("ssh-test", python))
    (folder / "phone.toml").write_text(f'kind = "adb"\npython = "{python}"\nthreads = 1\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    return folder


PYPI = "https://pypi.org/simple"
INDEX_DEADLINE_S = 5.0  # every package index's name resolved and a connection tried, all within this
PIP_CONFIG_TIMEOUT_S = 20.0  # `pip config list`, a local process (slow only on a loaded machine)


def _pip_sources() -> list[str]:
    """Where pip would look for packages: its index URLs and find-links, from the environment and pip's
    configuration files (`pip config list`); PyPI when no index is named."""
    keys = ("index-url", "extra-index-url", "find-links")
    found = [(key, os.environ.get(f"PIP_{key.upper().replace('-', '_')}", "")) for key in keys]
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=PIP_CONFIG_TIMEOUT_S
    ).stdout
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        if name.rpartition(".")[2] in keys:
            found.append((name.rpartition(".")[2], value.strip().strip("'\"")))
    sources = list(dict.fromkeys(source for _, entry in found for source in entry.split()))
    named_index = any(key == "index-url" and entry for key, entry in found)
    local = [source for source in sources if "://" not in source or source.startswith("file:")]
    return local + [source for source in sources if source not in local] + ([] if named_index else [PYPI])


@functools.cache
def package_index_unreachable() -> str | None:
    """Why pip could not reach any package index from here (None when one answers): a local folder or
    file:// index that exists, or an http(s) index whose host resolves and accepts a connection, every host
    tried at once within INDEX_DEADLINE_S in all (a name lookup has no timeout of its own, so each runs in a
    daemon thread that is left behind when the deadline passes). Asked once per test process."""
    import urllib.parse

    try:
        sources = _pip_sources()
    except subprocess.TimeoutExpired:
        return f"offline: `pip config list` did not answer within {PIP_CONFIG_TIMEOUT_S:g} s, so no index was tried"
    tried, hosts = [], []
    for source in sources:
        url = urllib.parse.urlparse(source)
        if url.scheme in ("", "file"):
            if Path(url.path or source).exists():
                return None
            tried.append(f"{source} (no such folder)")
            continue
        hosts.append((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)))
    if hosts and reach_any(hosts, INDEX_DEADLINE_S, tried):
        return None
    return (
        f"offline: no package index is reachable from here (tried {'; '.join(tried)}); "
        "PIP_INDEX_URL or PIP_FIND_LINKS can point pip at a mirror"
    )


def reach_any(hosts: list[tuple[str, int]], deadline_s: float, tried: list[str]) -> bool:
    """Whether any of `hosts` resolves and accepts a connection within `deadline_s` in all; each failure (or
    silence) is added to `tried`."""
    import queue
    import socket
    import threading
    import time

    answers: queue.Queue[tuple[str, int, str | None]] = queue.Queue()
    end = time.monotonic() + deadline_s

    def knock(host: str, port: int) -> None:
        try:
            socket.create_connection((host, port), timeout=max(0.1, end - time.monotonic())).close()
            answers.put((host, port, None))
        except OSError as exc:
            answers.put((host, port, f"{type(exc).__name__}: {exc}"))

    for host, port in hosts:
        threading.Thread(target=knock, args=(host, port), daemon=True, name=f"index {host}").start()
    waiting = set(hosts)
    while waiting and (left := end - time.monotonic()) > 0:
        try:
            host, port, error = answers.get(timeout=left)
        except queue.Empty:
            break
        if error is None:
            return True
        waiting.discard((host, port))
        tried.append(f"{host}:{port} ({error})")
    tried += [f"{host}:{port} (no answer within {deadline_s:g} s)" for host, port in hosts if (host, port) in waiting]
    return False


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Loading the dataset fails the test: what a test checks with it must be said before any data."""
    loaded: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        loaded.append("data")
        raise AssertionError("the dataset was loaded")

    monkeypatch.setattr("edgepack.pipeline.run.load_dataset", refuse)
    return loaded


def in_recipe_file(tmp_path: Path, text: str) -> Any:
    """`text` written as tmp_path/r.toml and loaded."""
    from edgepack.recipe import load_recipe

    path = tmp_path / "r.toml"
    path.write_text(text)
    return load_recipe(str(path))
