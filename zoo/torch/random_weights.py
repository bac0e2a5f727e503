"""Random weights that stand in for trained ones where an export is checked (tests, benchmarks)."""

from __future__ import annotations

import torch

__all__ = ["randomize"]


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Gives every weight and BN statistic a non-default value, as training would (in place, eval mode).

    A wrongly mapped weight then shows in the outputs, and no binary conv sees the
    exact zeros of a fresh model (even-integer sums through identity BNs), which
    runtimes fold differently and which no trained model has.

    Args:
        model: A PyTorch module (a zoo model or one built from the zoo's layers).
        seed: Seed of the generator; the same seed gives the same weights.

    Returns:
        ``model``, in eval mode.
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
