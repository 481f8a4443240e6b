"""The train stage: build (or load) the recipe's model and train it from scratch."""

from __future__ import annotations

from typing import Any

from edgepack.datasets import Dataset
from edgepack.models.source import get_model
from edgepack.optimize.loop import fit
from edgepack.recipe import LoadedRecipe
from edgepack.reporting import Reporter


def train(loaded: LoadedRecipe, data: Dataset, reporter: Reporter) -> tuple[Any, dict[str, float]]:
    """The float reference model: built and trained, or loaded as saved (not retrained)."""
    recipe = loaded.recipe
    model = get_model(recipe.model, data.input_shape, data.num_classes, loaded.base_dir)
    if recipe.model.kind == "saved":
        return model, {}
    return model, fit(model, data, recipe.train, reporter, "train")
