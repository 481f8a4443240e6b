"""Each stage's own seconds: the stages it asks for are not counted twice."""

from __future__ import annotations

import pytest

from edgepack.cli.stages import time_line
from edgepack.pipeline import timing
from edgepack.pipeline.timing import StageClock
from edgepack.table import Span


def test_a_stage_is_charged_its_own_time_not_its_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    clock = StageClock()
    with clock.timed("gate"):  # the gate asks for validation, which asks for the conversion
        now[0] += 1.0
        with clock.timed("validate"):
            now[0] += 2.0
            with clock.timed("convert"):
                now[0] += 4.0
            now[0] += 8.0
        now[0] += 16.0
    with clock.timed("convert"):  # asked again (a cached stage): added
        now[0] += 0.5
    assert clock.seconds == {"convert": 4.5, "validate": 10.0, "gate": 17.0}
    assert list(clock.seconds) == ["convert", "validate", "gate"]  # the order they first finished in
    assert sum(clock.seconds.values()) == now[0]  # every second counted once


def test_a_failing_stage_still_gives_its_time_to_the_stage_around_it(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    clock = StageClock()
    with pytest.raises(RuntimeError, match="no device"), clock.timed("gate"):
        with clock.timed("validate"):
            now[0] += 3.0
            raise RuntimeError("no device")
    assert clock.seconds == {"validate": 3.0, "gate": 0.0}


def test_the_time_line_sums_the_stages_and_leaves_out_the_instant_ones() -> None:
    line = time_line({"data": 0.01, "train": 12.34, "optimize": 8.0, "gate": 0.04})
    assert line == Span("time: 20.4 s (train 12.3 s, optimize 8.0 s)", "dim")
    assert time_line({"gate": 0.01}) == Span("time: 0.0 s", "dim")  # a cached run: no empty brackets
