"""Embedded TFLite metadata, written and read with `flatbuffers` alone (no tflite-support).

The metadata is the `ModelMetadata` flatbuffer of TFLite Support's `metadata_schema.fbs` (file
identifier "M001"), stored in a buffer of the model that a `Metadata` entry named
"TFLITE_METADATA" points at; associated files (the labels) are appended to the model as a zip
archive, as the format defines. This is what the Task Library, Android Studio's ML Model Binding
and `tflite_support.metadata.MetadataDisplayer` read.

Only schema 1.0.0 features are written (names, descriptions, image content with its colour
space, NormalizationOptions, Stats, associated files without a version), so the minimum parser
version is 1.0.0. `read_metadata` parses what `embed` wrote back into plain data, without
TensorFlow; the bundle step proves the normalization on what it reads back.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
from flatbuffers import number_types as nt
from flatbuffers.table import Table

from edgepack.errors import BundleError

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every table and field written here is in schema 1.0.0
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

COLOR_SPACES = {"unknown": 0, "rgb": 1, "grayscale": 2}
FILE_TYPES = {"unknown": 0, "descriptions": 1, "tensor_axis_labels": 2, "tensor_value_labels": 3}
_CONTENT_FEATURE, _CONTENT_IMAGE = 1, 2  # ContentProperties union members
_OPTIONS_NORMALIZATION = 1  # ProcessUnitOptions union member


@dataclass(frozen=True)
class AssociatedFile:
    """A file packed into the model and named by the metadata (labels, descriptions)."""

    name: str
    description: str
    type: str = "tensor_axis_labels"


@dataclass(frozen=True)
class TensorMeta:
    """One input or output tensor's metadata."""

    name: str
    description: str
    image: bool = False
    color_space: str = "unknown"  # for images: rgb, grayscale
    mean: list[float] | None = None  # NormalizationOptions: (x - mean) / std, per channel or one value
    std: list[float] | None = None
    min: list[float] | None = None  # Stats: the value range of the tensor's (normalized) values
    max: list[float] | None = None
    files: list[AssociatedFile] = field(default_factory=list)


@dataclass(frozen=True)
class ModelMeta:
    """The whole model's metadata."""

    name: str
    description: str
    version: str
    author: str
    license: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]


def metadata_bytes(meta: ModelMeta) -> bytes:
    """The `ModelMetadata` flatbuffer (identifier M001) for `meta`."""
    b = flatbuffers.Builder(1024)

    def strings(*values: str) -> list[int]:
        return [b.CreateString(v) for v in values]

    def table(fields: list[tuple[str, int, Any]]) -> int:
        """A table from (kind, slot, value) with children already built; None values are left out."""
        b.StartObject(max(slot for _, slot, _ in fields) + 1)
        for kind, slot, value in fields:
            if value is None:
                continue
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "byte":
                b.PrependInt8Slot(slot, value, 0)
            elif kind == "ubyte":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependUint32Slot(slot, value, 0)
        return b.EndObject()

    def offsets(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def floats(values: list[float] | None) -> int | None:
        if values is None:
            return None
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependFloat32(float(value))
        return b.EndVector()

    def associated(files: list[AssociatedFile]) -> int | None:
        if not files:
            return None
        built = []
        for f in files:
            name, description = strings(f.name, f.description)
            built.append(table([("offset", 0, name), ("offset", 1, description), ("byte", 2, FILE_TYPES[f.type])]))
        return offsets(built)

    def tensor(t: TensorMeta) -> int:
        name, description = strings(t.name, t.description)
        if t.image:
            props = table([("byte", 0, COLOR_SPACES[t.color_space])])
            content = table([("ubyte", 0, _CONTENT_IMAGE), ("offset", 1, props)])
        else:
            props = _empty(b)  # FeatureProperties has no fields
            content = table([("ubyte", 0, _CONTENT_FEATURE), ("offset", 1, props)])
        units = None
        if t.mean is not None and t.std is not None:
            mean, std = floats(t.mean), floats(t.std)
            norm = table([("offset", 0, mean), ("offset", 1, std)])
            units = offsets([table([("ubyte", 0, _OPTIONS_NORMALIZATION), ("offset", 1, norm)])])
        stats = None
        if t.min is not None and t.max is not None:
            high, low = floats(t.max), floats(t.min)
            stats = table([("offset", 0, high), ("offset", 1, low)])
        files = associated(t.files)
        return table(
            [
                ("offset", 0, name),
                ("offset", 1, description),
                ("offset", 3, content),
                ("offset", 4, units),
                ("offset", 5, stats),
                ("offset", 6, files),
            ]
        )

    inputs = offsets([tensor(t) for t in meta.inputs])
    outputs = offsets([tensor(t) for t in meta.outputs])
    (sub_name,) = strings("main")
    subgraph = table([("offset", 0, sub_name), ("offset", 2, inputs), ("offset", 3, outputs)])
    subgraphs = offsets([subgraph])
    name, description, version, author, license_, parser = strings(
        meta.name, meta.description, meta.version, meta.author, meta.license, MIN_PARSER_VERSION
    )
    root = table(
        [
            ("offset", 0, name),
            ("offset", 1, description),
            ("offset", 2, version),
            ("offset", 3, subgraphs),
            ("offset", 4, author),
            ("offset", 5, license_),
            ("offset", 7, parser),
        ]
    )
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _empty(b: flatbuffers.Builder) -> int:
    b.StartObject(0)
    return b.EndObject()


def embed(model: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """`model` with `metadata` in a buffer named TFLITE_METADATA and `files` appended as a zip.

    An existing TFLITE_METADATA buffer is replaced; the model's other metadata entries
    (min_runtime_version, CONVERSION_METADATA) are kept. The zip has fixed timestamps and sorted
    entries, so the result is the same bytes for the same inputs.
    """
    from ai_edge_litert import schema_py_generated as schema

    flat = model  # a flatbuffer reader ignores what follows the model (a zip of packed files)
    try:
        tree = schema.ModelT.InitFromPackedBuf(flat, 0)
    except Exception as exc:  # the flatbuffer reader raises anything on a damaged model
        raise BundleError(f"cannot read the model to embed metadata: {exc}") from exc
    if any(getattr(buffer, "offset", 0) > 1 for buffer in tree.buffers or []):
        raise BundleError(
            "the model keeps its weights outside the flatbuffer (a model over 2 GB): "
            "edgepack cannot embed metadata in it",
            hint="set bundle.metadata = false",
        )
    tree.buffers = list(tree.buffers or [])
    tree.metadata = list(tree.metadata or [])
    buffer = schema.BufferT()
    buffer.data = bytearray(metadata)
    entry = next((m for m in tree.metadata if _name(m.name) == METADATA_NAME), None)
    if entry is not None:
        tree.buffers[entry.buffer] = buffer
    else:
        tree.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(tree.buffers) - 1
        tree.metadata.append(entry)
    builder = flatbuffers.Builder(len(flat) + len(metadata) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))  # packing drops any zip that followed the old model
    out.seek(0, io.SEEK_END)
    if files:  # "w" at the end of the flatbuffer: offsets count from the file's start, as "a" would give,
        # without "a"'s search of the model's bytes for an end-of-archive record
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.external_attr = 0o644 << 16
                archive.writestr(info, files[name])
    return out.getvalue()


def _name(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def model_flatbuffer(model: bytes) -> bytes:
    """The model's flatbuffer without the zip of associated files that may follow it."""
    files_start = _zip_start(model)
    return model[:files_start] if files_start is not None else model


def _zip_start(model: bytes) -> int | None:
    """Where the zip of packed files appended to the model begins, if there is one: its end record
    must close the file (no comment) and its first local header must follow the flatbuffer. A zip
    held inside one of the model's buffers is not mistaken for it."""
    if len(model) < 22 or model[-22:-18] != b"PK\x05\x06":
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            infos = archive.infolist()
            start = min(info.header_offset for info in infos) if infos else None
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if start is None or start < 8 or model[start : start + 4] != b"PK\x03\x04":
        return None
    return start


def packed_files(model: bytes) -> dict[str, bytes]:
    """The associated files appended to a model (name -> bytes); empty when there are none."""
    if _zip_start(model) is None:
        return {}
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# --- reading -------------------------------------------------------------------------------------


def read_metadata(model: bytes) -> dict[str, Any] | None:
    """The model's TFLITE_METADATA as plain data (None when it has none); a damaged one is a BundleError."""
    from ai_edge_litert import schema_py_generated as schema

    from edgepack.analyze.flatbuffer import IDENTIFIER

    flat = model  # the reader ignores a zip of packed files after the flatbuffer
    if flat[4:8] != IDENTIFIER:
        raise BundleError("not a TFLite model (no TFL3 identifier)")
    root = schema.Model.GetRootAs(flat, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if _name(entry.Name()) == METADATA_NAME:
            data = root.Buffers(entry.Buffer()).DataAsNumpy()
            raw = bytes(data) if not isinstance(data, int) else b""
            try:
                return _model_meta(raw)
            except BundleError:
                raise
            except Exception as exc:  # the flatbuffer reader raises anything on damaged bytes
                raise BundleError(f"the model's {METADATA_NAME} is damaged: {exc}") from exc
    return None


def _model_meta(raw: bytes) -> dict[str, Any]:
    if len(raw) < 8 or raw[4:8] != METADATA_IDENTIFIER:
        raise BundleError(f"the model's {METADATA_NAME} buffer is not TFLite metadata (no M001 identifier)")
    root = _root(raw)
    subgraphs = [_subgraph(t) for t in _tables(root, 3)]
    return {
        "name": _str(root, 0),
        "description": _str(root, 1),
        "version": _str(root, 2),
        "author": _str(root, 4),
        "license": _str(root, 5),
        "min_parser_version": _str(root, 7),
        "subgraphs": subgraphs,
    }


def _root(raw: bytes) -> Table:
    pos = flatbuffers.encode.Get(flatbuffers.packer.uoffset, raw, 0)
    return Table(bytearray(raw), pos)


def _field(t: Table, slot: int) -> int:
    return t.Offset(4 + 2 * slot)


def _str(t: Table, slot: int) -> str | None:
    o = _field(t, slot)
    return t.String(o + t.Pos).decode("utf-8") if o else None


def _scalar(t: Table, slot: int, flags: Any, default: int = 0) -> int:
    o = _field(t, slot)
    return t.Get(flags, o + t.Pos) if o else default


def _sub(t: Table, slot: int) -> Table | None:
    o = _field(t, slot)
    return Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _tables(t: Table, slot: int) -> list[Table]:
    o = _field(t, slot)
    if not o:
        return []
    start = t.Vector(o)
    return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]


def _floats(t: Table | None, slot: int) -> list[float] | None:
    if t is None:
        return None
    o = _field(t, slot)
    if not o:
        return None
    start = t.Vector(o)
    return [t.Get(nt.Float32Flags, start + 4 * i) for i in range(t.VectorLen(o))]


def _subgraph(t: Table) -> dict[str, Any]:
    return {
        "name": _str(t, 0),
        "description": _str(t, 1),
        "inputs": [_tensor(x) for x in _tables(t, 2)],
        "outputs": [_tensor(x) for x in _tables(t, 3)],
    }


def _tensor(t: Table) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": _str(t, 0),
        "description": _str(t, 1),
        "content": None,
        "normalization": None,
        "stats": None,
        "files": [],
    }
    content = _sub(t, 3)
    if content is not None:
        kind = _scalar(content, 0, nt.Uint8Flags)
        props = _sub(content, 1)
        if kind == _CONTENT_IMAGE and props is not None:
            space = _scalar(props, 0, nt.Int8Flags)
            names = {v: k for k, v in COLOR_SPACES.items()}
            record["content"] = {"kind": "image", "color_space": names.get(space, f"type {space}")}
        else:
            record["content"] = {"kind": "feature" if kind == _CONTENT_FEATURE else f"type {kind}"}
    for unit in _tables(t, 4):
        if _scalar(unit, 0, nt.Uint8Flags) == _OPTIONS_NORMALIZATION:
            options = _sub(unit, 1)
            record["normalization"] = {"mean": _floats(options, 0), "std": _floats(options, 1)}
    stats = _sub(t, 5)
    if stats is not None:
        record["stats"] = {"max": _floats(stats, 0), "min": _floats(stats, 1)}
    names = {v: k for k, v in FILE_TYPES.items()}
    for f in _tables(t, 6):
        kind = _scalar(f, 2, nt.Int8Flags)
        record["files"].append({"name": _str(f, 0), "description": _str(f, 1), "type": names.get(kind, str(kind))})
    return record
