"""Recipes: the declarative TOML description of one model's path to the edge."""

from edgepack.recipe.load import LoadedRecipe, list_recipes, load_recipe, parse_recipe
from edgepack.recipe.schema import Recipe

__all__ = ["LoadedRecipe", "Recipe", "list_recipes", "load_recipe", "parse_recipe"]
