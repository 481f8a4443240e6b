"""Loading recipes: resolve a name or path, parse TOML, validate, report errors by field path."""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edgepack.errors import RecipeError
from edgepack.recipe.fields import allowed_keys, walk
from edgepack.recipe.schema import Recipe
from edgepack.resources import shipped_dir

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

DEFAULT_RECIPE = "digits"


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe, where it came from, and the hash of its resolved form."""

    recipe: Recipe
    path: Path | None
    sha256: str

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the recipe are resolved against."""
        return self.path.parent if self.path else Path.cwd()


def recipes_dir() -> Path:
    """The folder of shipped recipes."""
    return shipped_dir("recipes")


def list_recipes() -> list[Path]:
    """Every shipped recipe file, sorted by name."""
    return sorted(recipes_dir().glob("*.toml"))


def resolve_recipe_path(ref: str) -> Path:
    """A recipe named by path (`x/y.toml`) or by its name in `recipes/` (`digits`)."""
    path = Path(ref)
    if path.is_file():
        return path
    if path.suffix != ".toml" and "/" not in ref:
        shipped = recipes_dir() / f"{ref}.toml"
        if shipped.is_file():
            return shipped
    known = ", ".join(p.stem for p in list_recipes()) or "(none)"
    bare = path.suffix != ".toml" and "/" not in ref
    raise RecipeError(
        f"recipe '{ref}' not found",
        context=f"no file '{ref}'" + (f" and no '{ref}.toml' in {recipes_dir()}" if bare else ""),
        hint=f"name a recipe file or one of the shipped recipes: {known}",
        code="recipe-not-found",
    )


def load_recipe(ref: str | None = None) -> LoadedRecipe:
    """Load and validate the recipe `ref` (a path or a shipped name; default: digits)."""
    path = resolve_recipe_path(ref or DEFAULT_RECIPE)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read recipe: {exc}", context=str(path)) from exc
    return parse_recipe(text, path)


def parse_recipe(text: str, path: Path | None = None) -> LoadedRecipe:
    """Parse TOML text into a validated recipe; errors name the file and the field path."""
    where = str(path) if path else "<recipe>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(
            f"{where}: not valid TOML: {exc}",
            context=where,
            hint="check the quoting and brackets on that line",
        ) from exc
    if path is not None:
        data.setdefault("name", path.stem)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(
            f"{where}: {len(exc.errors())} problem(s) in the recipe",
            context="\n".join(format_error(err, data, where) for err in exc.errors()),
            hint="fix the fields above; `edgepack recipes show digits` prints a complete example",
        ) from exc
    digest = hashlib.sha256(canonical_json(recipe.resolved()).encode()).hexdigest()
    return LoadedRecipe(recipe=recipe, path=path, sha256=digest)


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: the form hashes are taken of."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def format_error(err: ErrorDetails, data: Any, where: str) -> str:
    """One validation error as `file: field.path = value: what is wrong`."""
    loc = tuple(err["loc"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += ("kind",)
    path, value, found = walk(loc, data)
    message = _message(err)
    if err["type"] == "missing" or not found:
        return f"{where}: {path}: {message}"
    return f"{where}: {path} = {_show(value)}: {message}"


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key" + _suggest(err["loc"])
    if kind == "missing":
        return "required field is missing"
    text = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text[0].lower() + text[1:] if text else text


def _suggest(loc: tuple[Any, ...]) -> str:
    allowed = allowed_keys(loc[:-1])
    if not allowed:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; allowed keys here: {', '.join(sorted(allowed))}"


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
