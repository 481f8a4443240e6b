"""Embedded TFLite metadata (read back by the official tflite-support reader in its own virtualenv),
the normalization proof, and the android bundle format."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest
from conftest import invoke, package_index_unreachable, tiny_recipe, tiny_work

from edgepack.bundle.metadata import (
    METADATA_NAME,
    AssociatedFile,
    ModelMeta,
    TensorMeta,
    embed,
    metadata_bytes,
    model_flatbuffer,
    packed_files,
    read_metadata,
)
from edgepack.errors import BundleError

pytestmark = pytest.mark.slow

BUNDLE = """
[bundle]
formats = ["android"]
author = "edgepack tests"
license = "Apache-2.0"
"""


@pytest.fixture(scope="module")
def bundled(tiny_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny digits run with the android format (from the session's `tiny_run` stages), its
    manifest and its converted model."""
    folder = tmp_path_factory.mktemp("metadata")
    recipe = tiny_recipe(folder, name="meta", extra=BUNDLE)
    tiny_work(tiny_run, folder / "w", "meta")
    result = invoke("--json", "run", str(recipe), "--workdir", str(folder / "w"))
    assert result.exit_code in (0, 3), result.output
    assert json.loads(result.stdout)["stages"]["optimize"]["cached"], "the tiny run's stages were not reused"
    bundle = Path(json.loads(result.stdout)["bundle"][0])
    manifest = json.loads((bundle / "manifest.json").read_text())
    converted = folder / "w" / "meta" / "convert" / "model.tflite"
    return {
        "folder": folder,
        "recipe": recipe,
        "bundle": bundle,
        "manifest": manifest,
        "converted": converted.read_bytes(),
    }


def _why(stderr: str) -> str:
    """pip's or Python's own error lines (pip also prints warnings), else the end of what it wrote."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("ERROR:") or "Error" in line.split(":", 1)[0]]
    return " / ".join(errors[-3:] or lines[-3:])[-600:]


def _reader_imports(python: Path) -> subprocess.CompletedProcess[str]:
    """Whether the official reader imports with `python` (an interpreter that is gone, or hangs, fails)."""
    argv = [str(python), "-c", "from tflite_support import metadata"]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", f"{type(exc).__name__}: {exc}")


def _skip_for_libusb(reader: subprocess.CompletedProcess[str]) -> None:
    if "libusb" in reader.stderr:
        pytest.skip(
            "tflite-support's metadata reader loads libusb-1.0, which is not installed here (Debian: "
            f"apt-get install libusb-1.0-0; .ci/run installs it): {_why(reader.stderr)}"
        )


@pytest.fixture(scope="session")
def tflite_support(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A separate virtualenv with the official tflite-support (it pins protobuf 3, which TF 2.21 cannot share).

    Made once per machine and Python (pip takes about 20 s) under $EDGEPACK_CACHE, else $XDG_CACHE_HOME/edgepack,
    else ~/.cache/edgepack, in tests/tflite-support-pyXY; a cached one is used when its reader imports. Skipped,
    saying what is missing and how to get it, where it cannot be made here: offline (no package index answers,
    checked once before pip runs), no wheel, no libusb."""
    cache = Path(
        os.environ.get("EDGEPACK_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgepack"
    )
    venv = cache / "tests" / f"tflite-support-py{sys.version_info.major}{sys.version_info.minor}"
    if venv.exists() or venv.is_symlink():
        reader = _reader_imports(venv / "bin" / "python")
        if reader.returncode == 0:
            return venv / "bin" / "python"
        _skip_for_libusb(reader)  # the cached one is fine: this machine lacks the library
        shutil.rmtree(venv, ignore_errors=True)  # broken (an interpreter since removed, say): made again
    offline = package_index_unreachable()  # asked only when there is something to install
    if offline:
        pytest.skip(f"`pip install tflite-support` needs a package index: {offline}")
    for stale in venv.parent.glob(f"{venv.name}.tmp-*"):  # drafts an interrupted session left, an hour old
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        draft = Path(tempfile.mkdtemp(prefix=f"{venv.name}.tmp-", dir=venv.parent))
    except OSError:  # a read-only home: made for this session only
        draft = venv = tmp_path_factory.mktemp("tflite-support-venv")
    python = draft / "bin" / "python"

    def skip(why: str) -> NoReturn:
        shutil.rmtree(draft, ignore_errors=True)  # no half-made virtualenv left in the cache
        pytest.skip(why)

    made = subprocess.run([sys.executable, "-m", "venv", str(draft)], capture_output=True, text=True)
    if made.returncode != 0:
        skip(
            f"cannot create a virtualenv for tflite-support (Debian: apt-get install python3-venv): {_why(made.stderr)}"
        )
    try:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "tflite-support"],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    except subprocess.TimeoutExpired:
        skip("`pip install tflite-support` did not finish in 600 s: is a package index reachable from here?")
    if pip.returncode != 0:
        skip(
            "pip cannot install tflite-support here (no wheel of it for this platform and Python, or no package "
            f"index reachable: PIP_INDEX_URL / PIP_FIND_LINKS point pip at a mirror): {_why(pip.stderr)}"
        )
    reader = _reader_imports(python)
    if reader.returncode != 0:
        if "libusb" in reader.stderr and draft != venv:  # cached all the same: only the library is missing
            with contextlib.suppress(OSError):
                draft.rename(venv)
        _skip_for_libusb(reader)
        skip(f"tflite-support is installed but `from tflite_support import metadata` fails: {_why(reader.stderr)}")
    if draft != venv:
        try:
            draft.rename(venv)  # whole or not at all
        except OSError:  # another session cached one meanwhile: that one, else this one
            if _reader_imports(venv / "bin" / "python").returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                try:
                    draft.rename(venv)
                except OSError:
                    return python  # left as a draft: the next session's clean-up takes it
                return venv / "bin" / "python"
            shutil.rmtree(draft, ignore_errors=True)
    return venv / "bin" / "python"


READER = textwrap.dedent("""
    import json, sys
    from tflite_support import metadata
    displayer = metadata.MetadataDisplayer.with_model_file(sys.argv[1])
    files = displayer.get_packed_associated_file_list()
    print(json.dumps({"metadata": json.loads(displayer.get_metadata_json()), "files": files,
                      "labels": displayer.get_associated_file_buffer("labels.txt").decode()}))
""")

POPULATE = textwrap.dedent("""
    import json, sys
    from tflite_support import metadata
    buffer = metadata.get_metadata_buffer(open(sys.argv[1], "rb").read())
    populator = metadata.MetadataPopulator.with_model_file(sys.argv[2])
    populator.load_metadata_buffer(buffer)
    populator.load_associated_files([sys.argv[3]])
    populator.populate()
    shown = json.loads(metadata.MetadataDisplayer.with_model_file(sys.argv[2]).get_metadata_json())
    print(shown["min_parser_version"])
""")


@pytest.mark.network  # its tflite_support fixture pip-installs the reader once per machine (then cached)
def test_the_official_reader_reports_what_edgepack_wrote(
    bundled: dict[str, Any], tflite_support: Path, tmp_path: Path
) -> None:
    model = bundled["bundle"] / "model.tflite"
    proc = subprocess.run([str(tflite_support), "-c", READER, str(model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    meta = shown["metadata"]
    assert (meta["name"], meta["version"], meta["author"], meta["license"]) == (
        "meta",
        "0.1.0",
        "edgepack tests",
        "Apache-2.0",
    )
    assert meta["description"] == "tiny test recipe" and meta["min_parser_version"] == "1.0.0"
    image = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties_type"] == "ImageProperties"
    assert image["content"]["content_properties"]["color_space"] == "GRAYSCALE"
    unit = image["process_units"][0]
    assert unit["options_type"] == "NormalizationOptions"
    # dataset.normalization (mean 0, std 16 on digits' raw 0..16) for the 8-bit pixels an app holds
    assert unit["options"] == {"mean": [0.0], "std": [255.0]}
    assert image["stats"] == {"max": [1.0], "min": [0.0]}  # digits 0..16 after (x - 0) / 16
    assert "8x8 grayscale image" in image["description"] and "8-bit pixel x (0..255)" in image["description"]
    assert "quantize to int8" in image["description"]
    scores = meta["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert scores["description"].startswith("Scores for the 10 classes, in the order of labels.txt")
    assert scores["associated_files"] == [
        {
            "name": "labels.txt",
            "type": "TENSOR_AXIS_LABELS",
            "description": "Class names, one per line, in output order.",
        }
    ]
    assert shown["files"] == ["labels.txt"]
    assert shown["labels"] == (bundled["bundle"] / "labels.txt").read_text() == "".join(f"{d}\n" for d in range(10))
    # the official writer, given edgepack's metadata, works out the same minimum parser version
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(bundled["converted"])
    proc = subprocess.run(
        [str(tflite_support), "-c", POPULATE, str(model), str(plain), str(bundled["bundle"] / "labels.txt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == bundled["manifest"]["model"]["metadata"]["min_parser_version"]


def test_the_model_with_metadata_runs_in_litert_as_before(bundled: dict[str, Any]) -> None:
    from edgepack.datasets import load_dataset
    from edgepack.litert import interpreter_from_bytes, to_input
    from edgepack.recipe import load_recipe

    shipped = (bundled["bundle"] / "model.tflite").read_bytes()
    model = bundled["manifest"]["model"]
    assert model["converted_sha256"] != model["sha256"] and model["size_bytes"] == len(shipped)
    assert model["metadata"]["same_outputs"] == {"samples": 32, "identical": True}
    loaded = load_recipe(str(bundled["recipe"]))
    data = load_dataset(loaded.recipe.dataset, loaded.recipe.seed, loaded.base_dir)
    outputs = []
    for blob in (bundled["converted"], shipped):
        interp = interpreter_from_bytes(blob)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        rows = []
        for i in range(len(data.x_test)):  # every test sample, not only the 32 the bundle step checked
            interp.set_tensor(inp["index"], to_input(data.x_test[i : i + 1], inp))
            interp.invoke()
            rows.append(interp.get_tensor(out["index"]).copy())
        outputs.append(np.concatenate(rows))
    assert outputs[0].tobytes() == outputs[1].tobytes()
    assert model_flatbuffer(shipped) != shipped and packed_files(shipped) == {
        "labels.txt": b"".join(f"{d}\n".encode() for d in range(10))
    }


def test_the_android_format_is_an_assets_folder_and_a_usage_note(bundled: dict[str, Any]) -> None:
    bundle, manifest = bundled["bundle"], bundled["manifest"]
    assets = bundle / "android" / "assets"
    assert sorted(p.name for p in assets.iterdir()) == ["labels.txt", "meta.tflite"]
    assert (assets / "meta.tflite").read_bytes() == (bundle / "model.tflite").read_bytes()
    assert (assets / "labels.txt").read_text() == (bundle / "labels.txt").read_text()
    note = (bundle / "android" / "README.md").read_text()
    inp = manifest["inputs"][0]
    assert f"{inp['scale']:.9g}" in note and "1x8x8x1, int8" in note
    assert "Task Library's image classifier takes uint8 or float32 inputs only" in note  # int8 I/O: said plainly
    android = manifest["formats"]["android"]
    assert android["metadata"] is True
    app = [f for f in android["files"] if not f.startswith("android/androidTest/")]  # the golden vectors' test apart
    assert app == ["android/README.md", "android/assets/labels.txt", "android/assets/meta.tflite"]
    assert "android/androidTest/java/edgepack/golden/GoldenVectorsTest.java" in android["files"]
    listed = {a["path"] for a in manifest["artifacts"]}
    assert {"android/README.md", "android/assets/meta.tflite"} <= listed
    assert invoke("verify", str(bundle)).exit_code == 0


def test_a_wrong_normalization_is_refused_and_nothing_is_written(
    bundled: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgepack.bundle.shipped as shipped

    real = shipped.describe

    def wrong_std(*args: Any, **kwargs: Any) -> ModelMeta:  # the classic bug: the dataset's std for 8-bit pixels
        meta = real(*args, **kwargs)
        image = dataclasses.replace(meta.inputs[0], std=[16.0])
        return dataclasses.replace(meta, inputs=[image])

    monkeypatch.setattr(shipped, "describe", wrong_std)
    before = {p: p.read_bytes() for p in bundled["bundle"].rglob("*") if p.is_file()}
    result = invoke("bundle", str(bundled["recipe"]), "--workdir", str(bundled["folder"] / "w"))
    assert result.exit_code == 2, result.output
    assert "normalization proof failed: test sample" in result.stderr
    assert "metadata mean [0.0] std [16.0] (for 8-bit pixels 0..255)" in result.stderr
    assert "mean 0.0 std 16.0 on raw pixels 0..16" in result.stderr
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in bundled["bundle"].rglob("*") if p.is_file()} == before  # untouched


def test_the_proof_takes_8_bit_pixels_and_refuses_a_pixel_range_the_data_breaks(bundled: dict[str, Any]) -> None:
    from edgepack.bundle.shipped import app_normalization, normalization_proof
    from edgepack.datasets import load_dataset
    from edgepack.recipe import load_recipe

    loaded = load_recipe(str(bundled["recipe"]))
    data = load_dataset(loaded.recipe.dataset, loaded.recipe.seed, loaded.base_dir)
    assert app_normalization(data, 1) == ([0.0], [255.0])

    def declared(mean: list[float], std: list[float]) -> dict[str, Any]:
        tensor = {"content": {"kind": "image", "color_space": "grayscale"}, "normalization": {"mean": mean, "std": std}}
        return {"subgraphs": [{"inputs": [tensor]}]}

    proof = normalization_proof(declared([0.0], [255.0]), data, None)
    assert proof["pixels"] == "8-bit" and 0 < proof["max_abs_diff"] <= proof["tolerance"] < 0.003  # 8-bit rounding
    for mean, std in (([0.0], [16.0]), ([127.5], [127.5]), ([0.0], [254.0])):
        with pytest.raises(BundleError, match="normalization proof failed: test sample"):
            normalization_proof(declared(mean, std), data, None)
    narrow = dataclasses.replace(data, pixel_range=(0.0, 1.0))  # digits hold 0..16
    with pytest.raises(BundleError, match="dataset.pixel_range is 0..1 but the test images hold values from 0 to 16"):
        normalization_proof(declared([0.0], [255.0]), narrow, None)
    rgb = dataclasses.replace(
        data, test_inputs=(np.repeat(data.x_test, 3, axis=-1),)
    )  # the declared colour space is applied
    with pytest.raises(BundleError, match="gives inputs of shape"):
        normalization_proof(declared([0.0], [255.0]), rgb, None)
    tensor = declared([0.0] * 3, [255.0] * 3)
    tensor["subgraphs"][0]["inputs"][0]["content"]["color_space"] = "rgb"
    assert normalization_proof(tensor, rgb, None)["max_abs_diff"] == proof["max_abs_diff"]


def test_bundle_metadata_false_ships_the_converted_bytes(bundled: dict[str, Any]) -> None:
    recipe = bundled["recipe"].with_name("plain.toml")
    recipe.write_text(bundled["recipe"].read_text().replace('formats = ["android"]', "metadata = false"))
    result = invoke(
        "--json",
        "bundle",
        str(recipe),
        "--workdir",
        str(bundled["folder"] / "w"),
        "--out",
        str(bundled["folder"] / "plain"),
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((bundled["folder"] / "plain" / "manifest.json").read_text())
    assert (bundled["folder"] / "plain" / "model.tflite").read_bytes() == bundled["converted"]
    assert manifest["model"]["metadata"] == {"embedded": False, "why": "bundle.metadata = false"}
    assert manifest["model"]["sha256"] == manifest["model"]["converted_sha256"]


def test_metadata_round_trips_and_replaces_rather_than_adds(bundled: dict[str, Any]) -> None:
    from ai_edge_litert import schema_py_generated as schema

    meta = ModelMeta(
        "m",
        "d",
        "1.2.3",
        "a",
        "MIT",
        [
            TensorMeta(
                "x",
                "rgb in",
                image=True,
                color_space="rgb",
                mean=[1.0, 2.0, 3.0],
                std=[4.0, 5.0, 6.0],
                min=[-1.0, -1.0, -1.0],
                max=[1.0, 1.0, 1.0],
            )
        ],
        [TensorMeta("y", "out", files=[AssociatedFile("names.txt", "names")])],
    )
    assert read_metadata(bundled["converted"]) is None
    once = embed(bundled["converted"], metadata_bytes(meta), {"names.txt": b"a\nb\n"})
    twice = embed(once, metadata_bytes(meta), {"names.txt": b"a\nb\n"})
    assert once == twice  # deterministic, and re-embedding replaces the buffer and the packed files
    root = schema.Model.GetRootAs(model_flatbuffer(twice), 0)
    names = [root.Metadata(i).Name().decode() for i in range(root.MetadataLength())]
    assert names.count(METADATA_NAME) == 1
    back = read_metadata(twice)
    image = back["subgraphs"][0]["inputs"][0]
    assert image["content"] == {"kind": "image", "color_space": "rgb"}
    assert image["normalization"] == {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]}
    assert back["subgraphs"][0]["outputs"][0]["files"] == [
        {"name": "names.txt", "description": "names", "type": "tensor_axis_labels"}
    ]
    assert (back["version"], back["license"]) == ("1.2.3", "MIT")
    damaged = bytearray(twice)
    where = bytes(damaged).index(b"M001")
    damaged[where : where + 4] = b"XXXX"
    with pytest.raises(BundleError, match="not TFLite metadata"):
        read_metadata(bytes(damaged))


def test_a_zip_inside_a_weights_buffer_is_not_taken_for_the_packed_files(bundled: dict[str, Any]) -> None:
    import io
    import zipfile

    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(bundled["converted"], 0)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("inner.txt", b"not a packed file")
    buffer = schema.BufferT()
    buffer.data = bytearray(inner.getvalue())
    tree.buffers.append(buffer)  # an unreferenced buffer whose bytes are a whole zip archive
    builder = flatbuffers.Builder(0)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    model = bytes(builder.Output())
    assert packed_files(model) == {} and model_flatbuffer(model) == model
    meta = ModelMeta(
        "m",
        "d",
        "1.0.0",
        "",
        "",
        [TensorMeta("x", "in", image=True, color_space="grayscale")],
        [TensorMeta("y", "out", files=[AssociatedFile("labels.txt", "names")])],
    )
    shipped = embed(model, metadata_bytes(meta), {"labels.txt": b"0\n"})
    assert packed_files(shipped) == {"labels.txt": b"0\n"} and read_metadata(shipped)["name"] == "m"
    assert shipped.startswith(model_flatbuffer(shipped)) and len(model_flatbuffer(shipped)) > len(model)
