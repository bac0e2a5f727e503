"""The registry of recipes: the built-in ones (:mod:`recipes.library`) and those registered by the user's
code with :func:`register_recipe`, looked up by name."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Mapping, Sequence

from .config import Recipe, UnknownRecipeError, apply_overrides, check_recipe
from .library import BUILTIN

__all__ = ["register_recipe", "get_recipe", "list_recipes"]

# The built-in recipes first, then those of the user's code.
_RECIPES: dict[str, Callable[[], Recipe]] = dict(BUILTIN)


def register_recipe(fn: Callable[[], Recipe]) -> Callable[[], Recipe]:
    """Registers a recipe factory under its function name.

    Raises:
        ValueError: The name is already registered.
    """
    if fn.__name__ in _RECIPES:
        raise ValueError(f"recipe {fn.__name__!r} is already registered; pick another function name")
    _RECIPES[fn.__name__] = fn
    return fn


def list_recipes() -> list[str]:
    """The registered recipe names, sorted."""
    return sorted(_RECIPES)


def get_recipe(name: str, overrides: Sequence[tuple[str, Any]] | Mapping[str, Any] = ()) -> Recipe:
    """A registered recipe with ``overrides`` applied.

    Raises:
        UnknownRecipeError: ``name`` is not registered; the message suggests close names.
        ConfigError: A bad override.
    """
    if name not in _RECIPES:
        close = difflib.get_close_matches(name, list(_RECIPES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(_RECIPES))}"
        raise UnknownRecipeError(f"unknown recipe {name!r}{hint}")
    recipe = _RECIPES[name]()
    recipe = dataclasses.replace(recipe, name=name, out=recipe.out or f"runs/{name}")
    return check_recipe(apply_overrides(recipe, overrides))
