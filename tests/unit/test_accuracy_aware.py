"""Accuracy-aware conversion without a model: the calibration sample's quality figures (the per-layer
error report and the fallback on real conversions: tests/integration/test_accuracy_aware.py)."""

from __future__ import annotations


def test_calibration_quality_counts_classes_and_clipped_inputs() -> None:
    import numpy as np

    from edgepack.datasets import calibration_quality

    x_cal, y_cal = np.array([0.0, 0.5]), np.array([0, 1])
    x_test, y_test = np.array([-1.0, 0.2, 0.4, 2.0]), np.array([0, 1, 2, 2])
    quality = calibration_quality(x_cal, y_cal, x_test, y_test, ["zero", "one", "two"])
    assert quality["classes"] == 2 and quality["test_classes"] == 3 and quality["missing_classes"] == ["two"]
    assert quality["input_range"] == {"calibration": [0.0, 0.5], "test": [-1.0, 2.0], "test_outside_fraction": 0.5}
    # classes the calibration sample holds but the test split lacks are not coverage ("31/29 classes")
    wide = calibration_quality(np.zeros(4), np.array([0, 1, 3, 4]), np.zeros(3), np.array([0, 1, 2]), [])
    assert (wide["classes"], wide["test_classes"], wide["missing_classes"]) == (2, 3, ["2"])
