"""Images or tensors: how `[dataset] layout` reads an input array, decided from the model's input (its rank
and channel count) and the data (its side lengths and value range), with the reason written beside it.

An (N, H, W[, C]) array is an image only when it looks like one: 1, 3 or 4 channels, both sides at least
`MIN_SIDE` and values a pixel can hold (0..255, never negative). Accelerometer windows (24x3x1: a side of 3)
and spectrograms in dB (values below 0) are tensors, read as stored, and get no pixel_range.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepack.init.model import Shape
from edgepack.tasks.base import shape_text

MIN_SIDE = 8  # the smallest image side edgepack takes for a picture (the 8x8 digits)
CHANNELS = (1, 3, 4)


@dataclass(frozen=True)
class LayoutChoice:
    """How one input array is read, and why."""

    layout: str  # auto (images, or feature vectors) | tensors
    why: str
    image: bool


def choose_layout(shape: tuple[int, ...], low: float, high: float, want: Shape) -> LayoutChoice:
    """The layout for an array of `shape` (samples first) with values `low`..`high` feeding an input `want`."""
    sample = shape[1:]
    text = shape_text(sample)
    if len(shape) == 3 and len(want) == 2:
        return LayoutChoice("tensors", f"{text} per sample feeds a rank-2 input: a sequence, read as stored", False)
    if len(shape) not in (3, 4):
        return LayoutChoice("auto", f"{text} per sample: a feature vector", False)
    needs_channel = len(shape) == 3  # (N, H, W) for an (H, W, 1) input: only an image read gets the channel
    height, width = sample[0], sample[1]
    channels = 1 if needs_channel else sample[2]
    problem = _not_image(height, width, channels, low, high)
    if problem is None:
        return LayoutChoice(
            "auto",
            f"images: {text} per sample, {channels} channel(s), values {low:.4g}..{high:.4g} (pixel values)",
            True,
        )
    if needs_channel:
        return LayoutChoice(
            "auto",
            f"{problem}, but the model's input {shape_text(want)} needs the channel axis only an image read adds: "
            "store the array as (N, H, W, 1) to read it as a tensor",
            True,
        )
    return LayoutChoice("tensors", f"not images: {problem}; read as stored", False)


def _not_image(height: int, width: int, channels: int, low: float, high: float) -> str | None:
    """Why an array with these sides, channels and values is no picture (None: it can be one)."""
    if channels not in CHANNELS:
        return f"{channels} channels (an image has {', '.join(map(str, CHANNELS))})"
    if min(height, width) < MIN_SIDE:
        return f"{height}x{width} per sample has a side under {MIN_SIDE} (a window of readings, not a picture)"
    if low < 0:
        return f"values {low:.4g}..{high:.4g} go below 0 (no pixel value does: dB, or signed readings)"
    if high > 255:
        return f"values {low:.4g}..{high:.4g} go beyond 255 (no 8-bit pixel does)"
    return None
