"""Training recipes: the papers' procedures as named, typed configs, run on one CPU or many GPUs.

Example:
    >>> from recipes import get_recipe, run_recipe
    >>> recipe = get_recipe("real2bin_mnist", {"out": "runs/r2b"})
    >>> results = run_recipe(recipe)          # or: bnnzoo train real2bin_mnist out=runs/r2b

``import recipes`` imports neither PyTorch nor TensorFlow.
"""

from .config import ConfigError, Recipe, Stage, UnknownRecipeError, apply_overrides, from_dict, parse_overrides
from .registry import get_recipe, list_recipes, register_recipe

__all__ = ["ConfigError", "Recipe", "Stage", "UnknownRecipeError", "apply_overrides", "from_dict", "get_recipe",
           "list_recipes", "parse_overrides", "register_recipe", "run_recipe"]


def run_recipe(recipe, resume: bool = False, stop_after: int = 0, log=None):
    """Runs a recipe (see :func:`recipes.train.run_recipe`)."""
    from .train import run_recipe as _run

    return _run(recipe, resume=resume, stop_after=stop_after, log=log)
