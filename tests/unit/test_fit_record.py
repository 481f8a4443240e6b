"""`Fit`: a board's fit is one record from the boards module through the gate, the summary and the manifest."""

from __future__ import annotations

import json

from edgepack.gate.budgets import Measurements, check_budgets
from edgepack.recipe.schema import Budgets
from edgepack.records import Fit, board_fits

FIT = Fit(
    board="nano33",
    board_name="Arduino Nano 33 BLE",
    core="cortex-m4",
    clock_mhz=64.0,
    flash_bytes=1_000_000,
    model_bytes=300_000,
    runtime_flash_bytes=100_000,
    ram_bytes=256_000,
    arena_bytes=200_000,
    io_bytes=10_000,
    runtime_ram_bytes=50_000,
    arena_runtime="tflite-micro 0.1",
)


def test_the_manifest_form_reads_back_as_the_same_record() -> None:
    data = json.loads(json.dumps(FIT.to_dict()))
    assert data["flash_need"] == 400_000 and data["ram_headroom"] == -4_000 and data["fits"] is False
    assert board_fits({"nano33": data}) == {"nano33": FIT}
    assert board_fits(None) == {}


def test_the_gate_reads_the_record_and_names_what_is_short() -> None:
    budgets = Budgets(fits=["nano33"])
    measured = Measurements(
        size_bytes=300_000, accuracy_float=None, accuracy_tflite=None, latency_p90_ms={}, fits={"nano33": FIT}
    )
    results = {r.name: r for r in check_budgets(budgets, measured)}
    assert results["fits.nano33.flash"].passed and results["fits.nano33.flash"].measured == 400_000
    ram = results["fits.nano33.ram"]
    assert not ram.passed and ram.measured == 260_000 and "arena (200,000 B" in ram.detail


def test_an_unmeasured_arena_fails_the_ram_budget_saying_why() -> None:
    unmeasured = Fit(**{**FIT.__dict__, "arena_bytes": None, "arena_runtime": None, "arena_why": "op CUMSUM"})
    measured = Measurements(
        size_bytes=300_000, accuracy_float=None, accuracy_tflite=None, latency_p90_ms={}, fits={"nano33": unmeasured}
    )
    ram = {r.name: r for r in check_budgets(Budgets(fits=["nano33"]), measured)}["fits.nano33.ram"]
    assert not ram.passed and ram.measured is None and "op CUMSUM" in ram.detail


def test_a_manifest_fit_without_the_schemas_optional_fields_reads() -> None:
    data = FIT.to_dict()
    for optional in ("board_name", "core", "clock_mhz", "arena_why"):
        data.pop(optional)
    fit = board_fits({"nano33": data})["nano33"]
    assert fit.board_name is None and fit.arena_why == "" and fit.title == "nano33"
    assert FIT.title == "Arduino Nano 33 BLE (cortex-m4, 64 MHz)"
    measured = Measurements(
        size_bytes=300_000, accuracy_float=None, accuracy_tflite=None, latency_p90_ms={}, fits={"nano33": fit}
    )
    flash = {r.name: r for r in check_budgets(Budgets(fits=["nano33"]), measured)}["fits.nano33.flash"]
    assert flash.passed and flash.detail.startswith("nano33: the model (300,000 B)")
