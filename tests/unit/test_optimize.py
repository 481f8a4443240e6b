"""The pruning schedule's arithmetic (the optimize stages on real TFMOT: tests/integration/test_optimize.py)."""

from __future__ import annotations

import pytest

from edgepack.recipe.optimize import PruneStage


@pytest.mark.parametrize(
    ("n", "batch", "epochs", "end"),
    [
        (300, 32, 1, 0.7),
        (300, 32, 1, 1.0),
        (1347, 32, 3, 0.5),
        (50, 64, 1, 1.0),
        (64, 512, 1, 0.7),
        (10_000, 8, 20, 0.9),
    ],
)
def test_schedule_ends_on_a_step_training_reaches(n: int, batch: int, epochs: int, end: float) -> None:
    from edgepack.optimize.prune import plan_steps

    stage = PruneStage(kind="prune", epochs=epochs, batch_size=batch, end_fraction=end)
    steps = plan_steps(stage, n)
    assert 1 <= steps.begin <= steps.end <= steps.total  # TFMOT's wrapper sees steps 1..total
    assert (steps.end - steps.begin) % steps.frequency == 0
    assert steps.frequency < 100 or steps.total > 1000  # TFMOT's default of 100 would never fire on short runs
