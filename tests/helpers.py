"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

import re

import zoo
from zoo.torch.random_weights import randomize  # noqa: F401  (the tests' import of it)


def tiny(name: str, framework: str = "torch", **overrides):
    """The registered model at its fast ``tiny`` size (overrides win)."""
    return zoo.load(name, framework=framework, **{**zoo.get_config(name).tiny, **overrides})


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress lines (``bnnzoo convert: step (i/n)``) printed before an error."""
    return [line for line in stderr.strip().splitlines() if not re.search(r"\(\d+/\d+\)$", line)]
