"""``bnnzoo train RECIPE [key=value ...] [--resume [RUN_DIR]]``: the recipes (the papers' procedures).

Examples::

    bnnzoo train real2bin_mnist [key=value ...] [--resume [RUN_DIR]]
    torchrun --nproc_per_node=8 -m bnnzoo train real2bin_imagenet data=/data/imagenet
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from recipes.config import ConfigError, Recipe, apply_overrides, check_recipe, from_dict, parse_overrides
from recipes.registry import get_recipe, list_recipes
from zoo import fileio

__all__ = ["add_arguments", "run", "resolve", "needs_tensorflow", "INTERRUPTED", "INTERMIXED"]

# What Ctrl-C leaves: every output is written atomically, and the last finished epoch is saved.
INTERRUPTED = "; the last finished epoch is saved: continue with bnnzoo train RECIPE --resume [RUN_DIR]"
# key=value words may follow options (bnnzoo train R --stop-after 1 epochs=2).
INTERMIXED = True


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """The Keras path imports TensorFlow."""
    return "framework=keras" in (args.overrides or [])


def _say(line: str) -> None:
    print(line, flush=True)


class _ResumeAction(argparse.Action):
    """``--resume [RUN_DIR] [key=value ...]``: argparse cannot give positionals that follow an
    option to the positional list, so key=value words after ``--resume`` are taken here."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        paths = [v for v in values if "=" not in v]
        if len(paths) > 1:
            parser.error(f"--resume takes one RUN_DIR, got {' '.join(paths)}")
        namespace.late_overrides = [v for v in values if "=" in v]
        setattr(namespace, self.dest, paths[0] if paths else "")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo train`` to ``p``."""
    p.add_argument("recipe", nargs="?", help="recipe name (--list shows them)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="typed overrides: epochs-like stage options as stage1.lr=5e-4 or stages.epochs=2, recipe "
                        "options as batch_size=128 data=/data/imagenet, model options as model.width=32")
    p.add_argument("--resume", nargs="*", action=_ResumeAction, default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (default: the recipe's out folder) from its last checkpoint")
    p.add_argument("-o", "--output", metavar="DIR", help="the run folder (default: the recipe's out, "
                                                        "`--show` prints it); same as out=DIR")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop each stage after N epochs of this invocation (continue later with --resume)")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.add_argument("--show", action="store_true", help="print the resolved recipe as JSON and exit")


def resolve(args: argparse.Namespace) -> tuple[Recipe, bool]:
    """The recipe the arguments describe, and whether to resume."""
    from recipes.common import check_framework  # imports torch: not for --help

    overrides = list(args.overrides) + list(getattr(args, "late_overrides", []))
    resume = args.resume
    if getattr(args, "output", None):
        if resume:
            raise ConfigError(f"--resume {resume} names the run folder already: drop -o {args.output}")
        overrides.append(f"out={args.output}")
    if not args.recipe:
        raise ConfigError("name a recipe: bnnzoo train RECIPE [key=value ...] (bnnzoo train --list shows them)")
    pairs = parse_overrides(overrides)
    if resume is None:
        return get_recipe(args.recipe, pairs), False
    run_dir = Path(resume) if resume else Path(get_recipe(args.recipe, pairs).out)
    saved = run_dir / "recipe.json"
    if not saved.is_file():
        raise FileNotFoundError(f"no run to resume in {run_dir} (no recipe.json): start it without --resume")
    fix = "it is the resolved recipe bnnzoo train writes: restore it, or start a new run (out=OTHER_FOLDER)"
    try:
        recipe = from_dict(fileio.read_json(saved, "recipe", fix))
    except ConfigError as e:
        raise ConfigError(f"{saved}: {e}; {fix}") from None
    if recipe.name != args.recipe:
        raise ConfigError(f"{run_dir} holds a run of {recipe.name!r}, not {args.recipe!r}: "
                          f"bnnzoo train {recipe.name} --resume {run_dir}")
    switched = [v for k, v in pairs if k == "framework" and v.strip() != recipe.framework]
    if switched:
        raise ConfigError(f"{run_dir} is a framework={recipe.framework} run: it resumes only in that framework; "
                          f"drop framework={switched[-1]}, or start a new run (out=OTHER_FOLDER)")
    resumed = check_recipe(apply_overrides(dataclasses.replace(recipe, out=str(run_dir)), pairs))
    check_framework(resumed)
    return resumed, True


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo train``: the recipe's stages, each epoch's summary printed; returns the exit status."""
    import torch.distributed as dist

    from recipes.train import run_recipe, task_of

    if args.list:
        for name in list_recipes():
            print(f"{name:24s} {get_recipe(name).description}")
        return 0
    if args.stop_after is not None and args.stop_after < 1:
        raise ConfigError(f"--stop-after takes a number of epochs >= 1, not {args.stop_after} (leave it out to train "
                          "every epoch)")
    recipe, resume = resolve(args)
    if args.show:
        print(recipe.to_json(), end="")
        return 0
    results = run_recipe(recipe, resume=resume, stop_after=args.stop_after or 0, log=_say)
    if int(os.environ.get("RANK", "0")) == 0:
        task = task_of(recipe)
        for name, r in results.items():
            if r.get("epochs"):
                print(f"{name}: {task.result(r)} after {r['epochs']} epochs ({r['seconds']:.0f} s)")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
