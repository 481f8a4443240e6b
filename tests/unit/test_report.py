"""report.html without a bundle: the zip and the artifacts leave it out, a missing bundle is a clear error,
the plots leave the caller's matplotlib alone (reports of a real bundle, in a headless Chromium:
tests/integration/test_report.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import invoke


def test_the_zip_and_the_artifacts_leave_the_report_out(tmp_path: Path) -> None:
    import zipfile

    from edgepack.bundle.writer import write_bundle

    manifest = {"schema_version": 3, "name": "x", "model": {"file": "model.tflite"}}
    out, archive = write_bundle(
        tmp_path / "b", b"model", [], manifest, True, measurements={"a": 1}, report="<!DOCTYPE html><p>report</p>"
    )
    assert (out / "report.html").read_text() == "<!DOCTYPE html><p>report</p>"
    assert zipfile.ZipFile(archive).namelist() == ["manifest.json", "model.tflite"]
    assert [a["path"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]] == ["model.tflite"]


def test_report_of_a_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("report", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no bundle here" in result.stderr and "Traceback" not in result.stderr


def test_drawing_the_plots_leaves_the_callers_matplotlib_as_it_was() -> None:
    import sys

    probe = (
        "import matplotlib\nmatplotlib.use('pdf')\nfrom edgepack.report import plots\n"
        "before = (matplotlib.get_backend(), dict(matplotlib.rcParams))\n"
        "svg = plots.metric_by_stage([('float', 0.98), ('int8', 0.97)], 'accuracy', True)\n"
        "assert svg is not None and svg.lstrip().startswith('<?xml') and '<path' in svg\n"
        "assert (matplotlib.get_backend(), dict(matplotlib.rcParams)) == before\n"
        "import sys; assert 'matplotlib.pyplot' not in sys.modules\nprint('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
