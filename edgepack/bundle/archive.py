"""Reading a bundle archive (`BUNDLE.zip`) safely: nothing in it may point outside the bundle.

An entry with an absolute path (`/etc/x`, `C:\\x`), a `..` component, a symbolic link, a name
given twice, or more than `MAX_BYTES` uncompressed in all is refused with a `BundleError` naming
the entry; nothing is written to disk.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from edgepack.errors import BundleError

MAX_BYTES = 4 * 2**30  # a bundle is a model and its papers: more than this is not one (or a zip bomb)
_DRIVE = re.compile(r"^[A-Za-z]:")


def read_archive(path: Path) -> dict[str, bytes]:
    """The files of the bundle archive at `path`, by their relative POSIX name."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(
            f"{path}: not a readable zip archive: {exc}",
            hint="give a bundle directory, or the .zip `edgepack run --zip` wrote",
        ) from exc
    files: dict[str, bytes] = {}
    with archive:
        infos = archive.infolist()
        for info in infos:
            _check_entry(path, info)
        total = sum(info.file_size for info in infos)
        if total > MAX_BYTES:
            raise BundleError(
                f"{path}: its entries hold {total:,} bytes uncompressed; refused (a bundle is at most {MAX_BYTES:,})",
                code="bundle-unsafe",
            )
        for info in infos:
            if info.filename.endswith(("/", "\\")):
                continue  # a folder entry
            name = str(PurePosixPath(info.filename.replace("\\", "/")))  # zips made on Windows use backslashes
            if name in files:
                raise BundleError(
                    f"{path}: the entry '{info.filename}' is in the archive twice; refused", code="bundle-unsafe"
                )
            try:
                files[name] = archive.read(info)
            except (OSError, zipfile.BadZipFile, RuntimeError, zlib.error, EOFError) as exc:  # CRC, encrypted, cut
                raise BundleError(f"{path}: cannot read the entry '{info.filename}': {exc}") from exc
    return files


def _check_entry(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    why = None
    if not name.strip("/"):
        why = "an entry without a name"
    elif name.startswith("/") or _DRIVE.match(name):
        why = "an absolute path"
    elif ".." in PurePosixPath(name).parts:
        why = "a '..' component, pointing outside the bundle"
    elif stat.S_ISLNK(info.external_attr >> 16):
        why = "a symbolic link"
    if why:
        raise BundleError(
            f"{path}: the entry '{info.filename}' is {why}; refused, nothing was extracted",
            hint="re-create the archive with `edgepack run --zip`",
            code="bundle-unsafe",
        )
