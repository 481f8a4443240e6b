"""Boards (kind "mcu") and the `fits` budget without tflite-micro: what is not a board is refused before
training, and the shipped boards carry their datasheet figures (the fit of a real model on a board:
tests/integration/test_fits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, invoke


@pytest.mark.parametrize(
    "change, code, words",
    [
        ('[budgets]\nfits = ["host"]', "budget-fits-board", "budgets.fits names 'host', a local device, not a board"),
        ('[budgets]\nfits = ["no-such-board"]', "device-unknown", "unknown device 'no-such-board'"),
    ],
)
def test_fits_naming_what_is_not_a_board_is_refused_before_training(
    tmp_path: Path, change: str, code: str, words: str
) -> None:
    text = (REPO / "recipes" / "digits.toml").read_text().replace("[budgets]", change)
    (tmp_path / "digits.toml").write_text(text)
    result = invoke("run", str(tmp_path / "digits.toml"), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2, result.output
    assert code in result.stderr and words in result.stderr
    assert not (tmp_path / "w" / "digits" / "train").exists()


def test_a_board_among_the_validation_devices_is_refused_before_training(tmp_path: Path) -> None:
    text = (REPO / "recipes" / "digits.toml").read_text().replace('devices = ["host"]', 'devices = ["host", "pico"]')
    assert '"pico"]' in text
    (tmp_path / "digits.toml").write_text(text)
    result = invoke("run", str(tmp_path / "digits.toml"), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2, result.output
    assert "device-not-runnable" in result.stderr and "fits = ['pico']" in result.stderr
    assert not (tmp_path / "w" / "digits" / "train").exists()


def test_shipped_boards_carry_their_datasheet_figures() -> None:
    from edgepack.devices.profiles import McuDevice, known_devices, load_device

    boards = {name: load_device(name) for name in known_devices() if load_device(name).kind == "mcu"}
    assert set(boards) >= {"nucleo-l4r5zi", "nano33-ble-sense", "pico", "esp32-s3", "corstone-300"}
    figures = {
        name: (b.core, b.clock_mhz, b.flash_bytes, b.ram_bytes)
        for name, b in boards.items()
        if isinstance(b, McuDevice)
    }
    assert figures["nucleo-l4r5zi"] == ("cortex-m4", 120, 2 << 20, 640 << 10)
    assert figures["nano33-ble-sense"] == ("cortex-m4", 64, 1 << 20, 256 << 10)
    assert figures["pico"] == ("cortex-m0+", 133, 2 << 20, 264 << 10)
    assert load_device("corstone-300").npu == "ethos-u55-128"  # type: ignore[union-attr]
    assert load_device("ethos-u55-128").kind == "ethos-u"
