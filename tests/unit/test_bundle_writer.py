"""The bundle writer leaves nothing half-written: a killed writer's temporaries beside the bundle (its folder
and its zip) are removed by the next writer, which holds the bundle's lock; another name's are left alone."""

from __future__ import annotations

from pathlib import Path

from edgepack.bundle.writer import write_bundle


def test_the_next_writer_removes_a_killed_writers_temporaries(tmp_path: Path) -> None:
    (tmp_path / "bundle.tmp-killed").mkdir()
    (tmp_path / "bundle.zip.tmp-killed").write_text("half a zip")
    (tmp_path / "other.tmp-live").mkdir()  # another writer's, not the bundle's
    written = write_bundle(tmp_path / "bundle", b"model", ["a"], {"schema_version": "1"}, True)
    assert written == [tmp_path / "bundle", tmp_path / "bundle.zip"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".bundle.lock", "bundle", "bundle.zip", "other.tmp-live"]
    assert (tmp_path / "bundle" / "model.tflite").read_bytes() == b"model"
