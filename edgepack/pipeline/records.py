"""Deprecated: the stage records moved to `edgepack.records` after 0.3.0. This name stays for one minor version so
code written against 0.3 (`from edgepack.pipeline.records import TrainRecord`) runs, with a warning."""

from __future__ import annotations

import warnings

from edgepack.records import ConvertRecord, EvaluateRecord, OptimizeRecord, Record, TrainRecord

__all__ = ["ConvertRecord", "EvaluateRecord", "OptimizeRecord", "Record", "TrainRecord"]

warnings.warn(
    "edgepack.pipeline.records moved to edgepack.records; import the records from there",
    DeprecationWarning,
    stacklevel=2,
)
