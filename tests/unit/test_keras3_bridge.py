"""What saved a file, read without TensorFlow: garbage, archives and folders that are not models are
refused (Keras 3 models bridged to tf_keras: tests/integration/test_keras3_bridge.py)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from edgepack.errors import ModelError


@pytest.mark.parametrize("content", [b"not a model at all", b"", b"PK\x03\x04broken zip"])
def test_saved_format_refuses_garbage(tmp_path: Path, content: bytes) -> None:
    from edgepack.models.keras3 import saved_format

    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        saved_format(path)
    assert str(path) in caught.value.message
    assert caught.value.hint


def test_saved_format_refuses_archives_and_folders_that_are_not_models(tmp_path: Path) -> None:
    from edgepack.models.keras3 import saved_format

    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("config.json", json.dumps({}))
    (tmp_path / "folder").mkdir()
    for path, words in [
        (tmp_path / "other.keras", "metadata.json"),
        (tmp_path / "folder", "saved_model.pb"),
        (tmp_path / "missing.keras", "does not exist"),
    ]:
        with pytest.raises(ModelError, match=words):
            saved_format(path)


def test_saved_format_and_is_keras3_model_import_no_tensorflow(tmp_path: Path) -> None:
    import subprocess
    import sys

    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    code = (
        "import sys; from pathlib import Path; from edgepack.models.keras3 import saved_format; "
        f"f = saved_format(Path({str(tmp_path / 'm.keras')!r})); "
        "from edgepack.models.keras3 import is_keras3_model; k = is_keras3_model(object()); "
        "print(f.keras, k, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3", "False", "False", "False"]
