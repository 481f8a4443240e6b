"""Dispatch on `kind` through registries: every kind the recipe schema accepts has an entry, and a
miss is a bad input that lists the known kinds."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from edgepack.errors import BadInputError, DatasetError


def kinds(annotated: Any) -> set[str]:
    """The `kind` literals of a discriminated union as the recipe schema declares it."""
    union = typing.get_args(annotated)[0]
    return {typing.get_args(member.model_fields["kind"].annotation)[0] for member in typing.get_args(union)}


def test_every_optimize_kind_has_a_technique() -> None:
    from edgepack.optimize.stages import TECHNIQUES
    from edgepack.recipe.optimize import OptimizeStage

    assert kinds(OptimizeStage) == set(TECHNIQUES) == {"prune", "qat", "cluster", "distill", "low-rank"}


def test_an_unknown_technique_lists_the_known_ones() -> None:
    from edgepack.optimize.stages import technique

    with pytest.raises(BadInputError, match="no optimize technique 'sparsify'") as raised:
        technique("sparsify")
    assert raised.value.hint == "techniques: prune, cluster, distill, low-rank, qat"


def test_every_dataset_kind_has_a_source() -> None:
    from edgepack.datasets import sources
    from edgepack.datasets.core import SOURCES, source
    from edgepack.recipe.schema import DatasetSpec

    assert kinds(DatasetSpec) == set(SOURCES) == {"digits", "npz", "folder"}
    assert source("npz") is sources.load_npz


def test_an_unknown_dataset_source_lists_the_known_ones() -> None:
    from edgepack.datasets.core import source

    with pytest.raises(DatasetError, match="no dataset source 'csv'") as raised:
        source("csv")
    assert raised.value.hint == "sources: digits, npz, folder"
    assert raised.value.code == "dataset-invalid"


def test_init_has_a_fitter_for_every_task_kind() -> None:
    from edgepack import tasks
    from edgepack.init.task import FITTERS, FOLDER_FITTERS, TASK_KINDS

    assert set(FITTERS) == set(FOLDER_FITTERS) == set(TASK_KINDS) == set(tasks.TASKS)
