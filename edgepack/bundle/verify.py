"""`edgepack verify BUNDLE`: is this bundle the one edgepack wrote?

Every artifact the manifest lists is hashed again (sha256 and size); files that are missing, changed
or not listed are named. The model is read (without TensorFlow) and its input and output tensors
compared with the ones the manifest declares, and the manifest's own model hash with the file.
Works on a bundle directory or its `.zip` (read in memory, refusing unsafe entries). With a public
key, the Ed25519 signature `manifest.sig` is checked against the exact bytes of manifest.json, so an
edited manifest field (and, through the hashes it lists, any changed file) fails the check.
With a device (`verify_golden`), the bundle's golden vectors run there and are compared with golden.npz.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.bundle.manifest import MANIFEST, MEASUREMENTS, REPORT, manifest_from, read_manifest
from edgepack.bundle.signing import SIGNATURE
from edgepack.errors import BundleError

if TYPE_CHECKING:
    from edgepack.progress import Reporter


def bundle_files(bundle: Path) -> dict[str, bytes]:
    """The bundle's files by relative POSIX path (a directory, or a .zip read safely)."""
    if bundle.is_file() and bundle.suffix.lower() == ".zip":
        from edgepack.bundle.archive import read_archive

        return read_archive(bundle)
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: no bundle here", hint="give a bundle directory or its .zip")
    links = [p for p in bundle.rglob("*") if p.is_symlink()]
    if links:
        raise BundleError(
            f"{bundle}: {links[0].relative_to(bundle)} is a link; a bundle holds files only", code="bundle-unsafe"
        )
    return {p.relative_to(bundle).as_posix(): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}


def verify(bundle: Path, public_key: Path | None = None) -> dict[str, Any]:
    """A report: per artifact ok / changed / missing / unlisted, the tensor check, `ok` overall, and
    `signature`: checked against `public_key` when one is given (its problems join `problems`),
    else only whether the bundle carries one. An unusable key file is a `BundleError`."""
    from edgepack.analyze.flatbuffer import read_model
    from edgepack.bundle.schema import schema_problems

    files = bundle_files(bundle)  # a .zip is read once, the manifest taken from it
    manifest = read_manifest(bundle) if bundle.is_dir() else manifest_from(files, bundle)
    signature, signed = signature_report(files, public_key)
    schema = schema_problems(manifest)
    listed = manifest.get("artifacts")
    if not isinstance(listed, list):
        raise BundleError(
            f"{bundle}: its manifest lists no artifacts (written by an older edgepack)",
            hint="re-create the bundle with `edgepack bundle`",
        )
    for index, entry in enumerate(listed):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("size_bytes"), int)
        ):
            raise BundleError(
                f"{bundle}: manifest artifacts[{index}] is not a path, sha256 and size_bytes",
                context=json.dumps(entry)[:200],
                code="bundle-modified",
            )
    model_file = manifest.get("model", {}).get("file") if isinstance(manifest.get("model"), dict) else None
    if not isinstance(model_file, str):
        raise BundleError(f"{bundle}: the manifest names no model (model.file)", code="bundle-modified")
    rows = []
    for entry in listed:
        data = files.get(entry["path"])
        if data is None:
            status = "missing"
        elif hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size_bytes"]:
            status = "changed"
        else:
            status = "ok"
        rows.append({"path": entry["path"], "status": status})
    known = {entry["path"] for entry in listed} | {MANIFEST, SIGNATURE, MEASUREMENTS, REPORT}  # REPORT: evidence
    rows += [{"path": path, "status": "unlisted"} for path in sorted(files) if path not in known]
    problems = signed + schema + [f"{r['path']}: {r['status']}" for r in rows if r["status"] != "ok"]
    problems += measurements_problems(files.get(MEASUREMENTS), files.get(model_file))
    for required in (model_file, manifest.get("labels_file")):
        if isinstance(required, str) and required not in {entry["path"] for entry in listed}:
            problems.append(f"{required}: not listed in the manifest's artifacts")
    model = files.get(model_file)
    if model is None:
        problems.append(f"{model_file}: the model is missing")
    else:
        if manifest["model"].get("sha256") != hashlib.sha256(model).hexdigest():
            problems.append(f"manifest model.sha256 does not match {model_file}")
        try:
            info = read_model(model)
        except Exception as exc:  # a changed model may not parse: that is the finding
            problems.append(f"{model_file}: {exc}")
        else:
            for kind, indices in (("inputs", info.inputs), ("outputs", info.outputs)):
                actual = [{"shape": list(info.tensors[i].shape), "dtype": info.tensors[i].dtype} for i in indices]
                declared = [{"shape": t.get("shape"), "dtype": t.get("dtype")} for t in manifest.get(kind, [])]
                if actual != declared:
                    problems.append(f"manifest {kind} {json.dumps(declared)} are not the model's {json.dumps(actual)}")
    return {"bundle": str(bundle), "ok": not problems, "artifacts": rows, "problems": problems, "signature": signature}


def measurements_problems(data: bytes | None, model: bytes | None) -> list[str]:
    """measurements.json (run-specific, unsigned, not in the zip) must follow its schema and be of this model."""
    from edgepack.bundle.manifest import READABLE_VERSIONS
    from edgepack.bundle.schema import measurements_schema, schema_problems

    if data is None:
        return []
    try:
        run = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{MEASUREMENTS}: not readable JSON: {exc}"]
    version = run.get("schema_version") if isinstance(run, dict) else None
    schema = measurements_schema(version if version in READABLE_VERSIONS else None)
    problems = schema_problems(run, schema, MEASUREMENTS)
    if model is not None and isinstance(run, dict) and run.get("model_sha256") != hashlib.sha256(model).hexdigest():
        problems.append(f"{MEASUREMENTS}: measured another model (its model_sha256 is not this model's)")
    return problems


def signature_report(files: dict[str, bytes], public_key: Path | None) -> tuple[dict[str, Any], list[str]]:
    """The report's `signature` entry and the signature's problems (none when no key is given)."""
    from edgepack.bundle.signing import check_signature, public_key_sha256

    if public_key is None:
        return {"present": SIGNATURE in files, "checked": False}, []
    manifest = files.get(MANIFEST, b"")
    problems = check_signature(manifest, files.get(SIGNATURE), public_key)
    return {"checked": True, "ok": not problems, "key_sha256": public_key_sha256(public_key)}, problems


def verify_golden(bundle: Path, device: str, reporter: Reporter | None = None) -> dict[str, Any]:
    """The bundle's golden vectors (golden.npz) run on device profile `device` with its model file, every output
    compared with host LiteRT's within its tolerance (`validate.golden`): `ok` and, on a mismatch, `why` naming
    the output, the sample, the element, the expected and the got value. A bundle without golden.npz (an older
    edgepack's, or a model that takes no test samples) is a `BundleError`."""
    from edgepack.devices.drivers import driver_for
    from edgepack.devices.profiles import load_device
    from edgepack.errors import BadInputError
    from edgepack.progress import NullReporter
    from edgepack.validate.golden import GOLDEN_FILE, read_golden, run_golden

    files = bundle_files(bundle)
    manifest = read_manifest(bundle) if bundle.is_dir() else manifest_from(files, bundle)
    model_file = (manifest.get("model") or {}).get("file", "model.tflite")
    if GOLDEN_FILE not in files:
        raise BundleError(
            f"{bundle}: no {GOLDEN_FILE} to run on {device}",
            hint="re-create the bundle with this edgepack (`edgepack bundle`)",
            code="bundle-no-golden",
        )
    if model_file not in files:
        raise BundleError(f"{bundle}: the model {model_file} is missing", code="bundle-modified")
    profile = load_device(device)
    driver = driver_for(profile.kind)
    if driver.estimates or driver.is_board:
        raise BadInputError(
            f"device '{device}' ({profile.kind}) runs nothing, so it gives no outputs to compare with golden.npz",
            context=f"verify --on {device}",
            code="golden-not-comparable",
            hint="run the golden vectors on a device that executes the model: host, tflm, a qemu, ssh or adb profile",
        )
    if manifest.get("compression") and not driver.runs_compressed:
        raise BadInputError(
            f"{bundle}: its model is LUT-compressed, which only TFLM runs; device '{device}' ({profile.kind}) cannot",
            context=f"verify --on {device}",
            code="golden-not-comparable",
            hint="verify it on a tflm profile: `edgepack verify BUNDLE --on tflm`",
        )
    return run_golden(profile, files[model_file], read_golden(files[GOLDEN_FILE]), reporter or NullReporter())
