"""The `[model]` section of a recipe (and a distillation's student): a builder function or a saved model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgepack.recipe.base import Strict


class BuilderModel(Strict):
    """A model built by a Python function `module:function(input_shape, num_classes, **args)`."""

    kind: Literal["builder"]
    builder: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    args: dict[str, int | float | str | bool | list[int] | list[float]] = {}


class SavedModel(Strict):
    """A saved model: Keras 3 or tf_keras (Keras 2) `.keras` / `.h5`, or a SavedModel directory.

    A Keras 3 model is rebuilt in tf_keras (and the rebuild proven on the test inputs) so the
    optimize stages can work on it; `imports` are modules to import first (they register a Keras 3
    model's custom layers), found beside the recipe or installed.
    """

    kind: Literal["saved"]
    path: str = Field(min_length=1)
    imports: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*$")]] = []


ModelSpec = Annotated[BuilderModel | SavedModel, Field(discriminator="kind")]
