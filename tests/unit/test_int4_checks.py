"""`weights = "int4"`'s checks before training: no TFLM / Ethos-U device under any name, and
litert-quantizer installed (else the install command), as recipe errors (exit 2)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgepack.convert.int4 import INSTALL_HINT, check_int4
from edgepack.errors import RecipeError


def test_a_tflm_profile_under_another_name_is_refused() -> None:
    devices = [SimpleNamespace(name="host", kind="local"), SimpleNamespace(name="my-sim", kind="tflm")]
    with pytest.raises(RecipeError) as caught:
        check_int4("ae", devices)
    assert "['my-sim']" in caught.value.message and "TFLite Micro" in caught.value.message


def test_a_missing_quantizer_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "litert_quantizer" else real(name))
    with pytest.raises(RecipeError) as caught:
        check_int4("ae", [SimpleNamespace(name="host", kind="local")])
    assert caught.value.hint == INSTALL_HINT == "pip install 'edgepack[int4]'"


def test_litert_devices_pass() -> None:
    check_int4("ae", [SimpleNamespace(name="host", kind="local"), SimpleNamespace(name="pixel", kind="adb")])
