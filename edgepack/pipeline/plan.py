"""Which stages a run has: the plan the runner (`pipeline/run.py`) follows, first stage to last.

A recipe's run trains (or loads), optimizes and converts its model here. A `.tflite` converted elsewhere
starts from reading that file instead: measured as it is (`validate --model`: no metadata, no
compression, nothing trained unless its inputs must be told apart by name), or bundled like a model made
here (`bundle --model`: metadata embedded, checked against the recipe's data). The plan is chosen once,
when the run is made; no stage asks which kind of run it is part of beyond what the plan says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PlanKind = Literal["recipe", "measure-given", "bundle-given"]


@dataclass(frozen=True)
class Plan:
    """The run's kind and, for a given model, its file."""

    kind: PlanKind = "recipe"
    given: Path | None = None

    def __post_init__(self) -> None:
        if (self.kind == "recipe") != (self.given is None):
            raise ValueError(f"plan {self.kind!r}: a given model's file goes with a given-model plan only")

    @classmethod
    def measure_given(cls, path: Path) -> Plan:
        """`validate --model`: the file measured as it is."""
        return cls("measure-given", path)

    @classmethod
    def bundle_given(cls, path: Path) -> Plan:
        """`bundle --model`: the file shipped as a model made here would be (metadata, checks)."""
        return cls("bundle-given", path)

    @property
    def converts(self) -> bool:
        """Whether the run converts a model (else its convert stage is the given file, read and checked)."""
        return self.given is None

    @property
    def as_given(self) -> bool:
        """Whether the model is measured exactly as given: no metadata, no compression, nothing trained."""
        return self.kind == "measure-given"
