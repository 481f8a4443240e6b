"""The Dense-granularity choice and the converter switches behind it, without TensorFlow."""

from __future__ import annotations

from typing import Any

import pytest

from edgepack.convert.compat import DENSE_PER_TENSOR_ATTR, PER_TENSOR_ATTR, set_granularity
from edgepack.errors import StageError
from edgepack.pipeline.granularity import _pick


class _Converter:
    def __init__(self, *attrs: str) -> None:
        for attr in attrs:
            setattr(self, attr, False)


def test_the_switches_are_set_on_a_converter_that_has_them() -> None:
    converter = _Converter(PER_TENSOR_ATTR, DENSE_PER_TENSOR_ATTR)
    set_granularity(converter, per_channel=True, dense_per_tensor=True)
    assert getattr(converter, DENSE_PER_TENSOR_ATTR) is True and getattr(converter, PER_TENSOR_ATTR) is False
    set_granularity(converter, per_channel=False, dense_per_tensor=False)
    assert getattr(converter, PER_TENSOR_ATTR) is True and getattr(converter, DENSE_PER_TENSOR_ATTR) is False


def test_a_renamed_switch_is_a_clear_error_only_when_it_is_needed() -> None:
    renamed = _Converter(PER_TENSOR_ATTR)  # a TensorFlow without the Dense switch
    set_granularity(renamed, per_channel=True, dense_per_tensor=False)  # the default needs no switch
    assert not hasattr(renamed, DENSE_PER_TENSOR_ATTR)
    with pytest.raises(StageError, match=f"no attribute {DENSE_PER_TENSOR_ATTR} in _Converter") as error:
        set_granularity(renamed, per_channel=True, dense_per_tensor=True)
    assert error.value.code == "converter-incompatible" and "dense_granularity" in (error.value.hint or "")


def _candidate(granularity: str, size: int, passed: bool | None) -> dict[str, Any]:
    budgets = [] if passed is None else [{"name": "min_sqnr_db", "limit": 20.0, "measured": 1.0, "passed": passed}]
    return {"dense_granularity": granularity, "size_bytes": size, "budgets": budgets}


@pytest.mark.parametrize(
    ("tensor_size", "passed", "chosen", "why"),
    [
        (900, True, "per-tensor", "100 B (10.0%) smaller, within min_sqnr_db"),
        (900, False, "per-channel", "per-tensor Dense layers (100 B smaller) break min_sqnr_db"),
        (1000, True, "per-channel", "per-tensor Dense layers are not smaller (1,000 B)"),
        (1200, True, "per-channel", "per-tensor Dense layers are not smaller (1,200 B)"),
    ],
)
def test_per_tensor_is_kept_only_where_smaller_and_within_every_budget(
    tensor_size: int, passed: bool, chosen: str, why: str
) -> None:
    assert _pick(_candidate("per-channel", 1000, True), _candidate("per-tensor", tensor_size, passed)) == (chosen, why)
