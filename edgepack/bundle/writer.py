"""Write a bundle directory (and optionally a zip) atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

from edgepack.bundle.manifest import LABELS_FILE, MANIFEST, MODEL_FILE
from edgepack.fsutil import atomic_write_bytes, replace_dir, temp_dir_beside

ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_bundle(out: Path, model: Path, labels: list[str], manifest: dict[str, Any], make_zip: bool,
                 extra: dict[str, str] | None = None) -> list[Path]:
    """Write `out/` with the model, labels, manifest and `extra` files (relative path -> text); with
    `make_zip`, also `out.zip`.

    Everything is written into a temporary directory beside `out` and renamed into place, so
    an interrupted run leaves the previous bundle (or none), never a partial one.
    """
    tmp = temp_dir_beside(out)
    try:
        shutil.copyfile(model, tmp / MODEL_FILE)
        (tmp / LABELS_FILE).write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
        for relative, text in (extra or {}).items():
            target = tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        manifest = {**manifest, "artifacts": artifacts(tmp)}  # what was written, as written
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        archive = zip_bytes(tmp) if make_zip else None
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
    """Every file of a bundle folder but the manifest: relative path, sha256, size; sorted by path."""
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        data = path.read_bytes()
        rows.append({"path": path.relative_to(folder).as_posix(), "sha256": hashlib.sha256(data).hexdigest(),
                     "size_bytes": len(data)})
    return rows


def zip_bytes(folder: Path) -> bytes:
    """A deterministic zip of `folder`: sorted entries, fixed timestamps and permissions."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
