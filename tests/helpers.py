"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

import re

import torch

import zoo


def tiny(name: str, framework: str = "torch", **overrides):
    """The registered model at its fast ``tiny`` size (overrides win)."""
    return zoo.load(name, framework=framework, **{**zoo.get_config(name).tiny, **overrides})


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Gives every weight and BN statistic a non-default value, as training would.

    A wrongly mapped weight then shows in the outputs, and no binary conv sees the
    exact zeros of a fresh model (even-integer sums through identity BNs), which
    runtimes fold differently and which no trained model has.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith(("scale_h", "scale_w", "scale_c")) or (name.endswith("weight") and t.ndim == 1):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)  # BN gammas, PReLU slopes, learned scales
            elif t.ndim >= 2:  # fan-in scaled, so real-valued variants keep every layer's effect visible
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    return model.eval()


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress lines (``bnnzoo convert: step (i/n)``) printed before an error."""
    return [line for line in stderr.strip().splitlines() if not re.search(r"\(\d+/\d+\)$", line)]
