"""Write a bundle directory (and optionally a zip) atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

from edgepack.bundle.manifest import LABELS_FILE, MANIFEST, MEASUREMENTS, MODEL_FILE, REPORT
from edgepack.bundle.manifest_model import Artifact, with_artifacts
from edgepack.fsutil import atomic_write_bytes, clean_stale_temps, locked, replace_dir, temp_dir_beside

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
NOT_ARTIFACTS = (MANIFEST, MEASUREMENTS, "manifest.sig", REPORT)  # the manifest cannot list itself nor what follows it


def write_bundle(
    out: Path,
    model: bytes,
    labels: list[str],
    manifest: dict[str, Any],
    make_zip: bool,
    extra: dict[str, str | bytes] | None = None,
    measurements: dict[str, Any] | None = None,
    sign_key: Path | None = None,
    report: str | None = None,
) -> list[Path]:
    """Write `out/` with the model, labels, `extra` files (relative path -> text or bytes), the
    manifest (the build section, listing every artifact's sha256 and size), its Ed25519 signature
    with `sign_key`, `measurements.json` (the run section) and `report` as report.html (evidence of the run,
    like the measurements); with `make_zip`, also `out.zip`.

    The zip holds everything but measurements.json and report.html, with sorted entries and fixed timestamps, so
    bundling the same artifacts twice gives the same bytes. Everything is written into a temporary
    directory beside `out` and renamed into place, so an interrupted run leaves the previous bundle
    (or none), never a partial one.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out.parent / f".{out.name}.lock"):  # one writer of `out` at a time; it owns out's temporaries
        clean_stale_temps(out.parent, out.name)  # a killed writer's (out.tmp-..., out.zip.tmp-...)
        clean_stale_temps(out.parent, f"{out.name}.zip")
        return _write(out, model, labels, manifest, extra, sign_key, measurements, report, make_zip)


def _write(
    out: Path,
    model: bytes,
    labels: list[str],
    manifest: dict[str, Any],
    extra: dict[str, str | bytes] | None,
    sign_key: Path | None,
    measurements: dict[str, Any] | None,
    report: str | None,
    make_zip: bool,
) -> list[Path]:
    tmp = temp_dir_beside(out)
    try:
        (tmp / MODEL_FILE).write_bytes(model)
        if labels:  # a classifier's class names; other tasks have none
            (tmp / LABELS_FILE).write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
        for relative, content in (extra or {}).items():
            target = tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        manifest = with_artifacts(manifest, artifacts(tmp))  # what was written, as written
        manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8")
        (tmp / MANIFEST).write_bytes(manifest_bytes)
        if sign_key is not None:
            from edgepack.bundle.signing import SIGNATURE, sign_manifest

            (tmp / SIGNATURE).write_bytes(sign_manifest(manifest_bytes, sign_key))
        archive = zip_bytes(tmp, exclude=(MEASUREMENTS, REPORT)) if make_zip else None
        if measurements is not None:
            (tmp / MEASUREMENTS).write_text(json.dumps(measurements, indent=2) + "\n", encoding="utf-8")
        if report is not None:
            (tmp / REPORT).write_text(report, encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    written = [out]
    if archive is not None:
        zip_path = out.with_name(out.name + ".zip")
        atomic_write_bytes(zip_path, archive)
        written.append(zip_path)
    return written


def artifacts(folder: Path) -> list[dict[str, Any]]:
    """Every file of a bundle folder but the manifest, its signature and the measurements: relative
    path, sha256, size; sorted by path."""
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in NOT_ARTIFACTS:
            continue
        data = path.read_bytes()
        rows.append(Artifact(path=relative, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)).dump())
    return rows


def zip_bytes(folder: Path, exclude: tuple[str, ...] = ()) -> bytes:
    """A deterministic zip of `folder` (but the top-level files in `exclude`): sorted entries, fixed
    timestamps and permissions."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            if name in exclude:
                continue
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
