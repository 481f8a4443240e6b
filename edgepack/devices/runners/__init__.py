"""The scripts that run on a device (or in a child process here), shipped as plain files beside this one.

They import nothing from edgepack: a driver copies `runner.py` to the board (ssh, adb), runs it under
emulation (qemu-arm64) or in a child process (local), and runs `tflm_runner.py` (which imports
`runner.py` from its own folder) in a child process for TFLM. Their paths are taken from this folder, so
an installed wheel carries them as package files.
"""

from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
TFLM_RUNNER = Path(__file__).with_name("tflm_runner.py")
