"""Dataset sources, seeded splits and calibration sampling (numpy only, no TensorFlow)."""

from edgepack.datasets.core import (
    Dataset,
    calibration_indices,
    calibration_quality,
    calibration_sample,
    fingerprint,
    load_dataset,
)

__all__ = ["Dataset", "calibration_indices", "calibration_quality", "calibration_sample", "fingerprint", "load_dataset"]
