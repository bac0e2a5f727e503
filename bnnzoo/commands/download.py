"""``bnnzoo download MODEL [--weights W] [--force]``: one set of weights into the caches, checked."""

from __future__ import annotations

import argparse
import os

from bnnzoo.arguments import add_model_arguments, model_reference

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo download`` to ``parser``."""
    add_model_arguments(parser, "name", help="the weights to fetch: NAME[.TAG] (a bare NAME: its default weights), "
                        "hf-hub:OWNER/NAME[@REV], or FILE.py:CLASS with --weights")
    parser.add_argument("--force", action="store_true", help="download again even if cached (replaces a corrupt file)")


def run(args: argparse.Namespace) -> int:
    """Warms the caches with one set of weights (checked) and prints where the files are."""
    from zoo.refs import locate

    reference, weights = model_reference(args, "name")
    local = os.path.exists(os.path.expanduser(weights or reference))  # nothing to fetch or check
    for path in locate(reference, weights=weights, force=args.force):
        print(f"{path} (sha256 ok)" if path.suffix != ".json" and not local else str(path))
    return 0
