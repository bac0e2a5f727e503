"""``bnnzoo train RECIPE [key=value ...] [--resume [RUN_DIR]]``: the recipes on the command line."""

from __future__ import annotations

import argparse

__all__ = ["add_train_arguments", "run_train"]


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo train`` to ``p``."""
    from .train import add_arguments

    add_arguments(p)


def run_train(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo train``; returns the exit status."""
    from .train import run

    return run(args)
