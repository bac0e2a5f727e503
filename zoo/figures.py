"""Figures every model reports about itself, measured on the PyTorch model.

Conventions (those of larq-zoo and the MeliusNet paper):
- ``params`` counts every stored number, BatchNorm statistics included, as Keras'
  ``count_params`` and larq-zoo do; ``trainable_params`` leaves the statistics out.
- A multiply-accumulate of a binary convolution (±1 inputs and weights) is a BOP,
  any other one a FLOP; ``ops = flops + bops / 64``.
- ``size_bytes``: binary weights at 1 bit, every other trainable number at 32 bits;
  BatchNorm statistics are left out, as the MeliusNet paper and larq-zoo do
  (deployed models fold them into the layers around them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

__all__ = ["Figures", "measure"]


@dataclass(frozen=True)
class Figures:
    """What a model reports about itself at one input size."""

    params: int
    trainable_params: int
    binary_params: int
    binary_convs: int
    flops: int
    bops: int
    input_size: int

    @property
    def ops(self) -> float:
        return self.flops + self.bops / 64

    @property
    def binary_mac_share(self) -> float:
        total = self.flops + self.bops
        return self.bops / total if total else 0.0

    @property
    def size_bytes(self) -> float:
        return self.binary_params / 8 + (self.trainable_params - self.binary_params) * 4

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(ops=self.ops, binary_mac_share=self.binary_mac_share, size_bytes=self.size_bytes)
        return d


def measure(model, input_size: Optional[int] = None) -> Figures:
    """Counts parameters and runs one forward pass to count MACs.

    Args:
        model: A PyTorch module built from the zoo's layers (registered or not).
        input_size: Square input side; defaults to ``model.zoo_config.input_size``
            (required for a module without a config).

    Raises:
        ValueError: No input size is given or known.
    """
    import torch
    from torch import nn

    from .torch.layers import BINARY_WEIGHT_QUANTIZERS, BinaryConv2d

    size = input_size or getattr(getattr(model, "zoo_config", None), "input_size", None)
    if not size:
        raise ValueError(f"{type(model).__name__} carries no zoo_config: pass input_size to measure it")
    macs = {"flops": 0, "bops": 0}

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            n = output.numel() * k
        else:
            n = module.in_features * module.out_features * (output.numel() // output.shape[-1])
        binary = isinstance(module, BinaryConv2d) and module.is_binary
        macs["bops" if binary else "flops"] += n

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    binary_convs = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    return Figures(
        params=trainable + stats,
        trainable_params=trainable,
        binary_params=sum(m.weight.numel() for m in binary_convs if m.weight_quantizer in BINARY_WEIGHT_QUANTIZERS),
        binary_convs=sum(m.is_binary for m in binary_convs),
        flops=macs["flops"],
        bops=macs["bops"],
        input_size=size,
    )
