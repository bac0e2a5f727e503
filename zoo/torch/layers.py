"""Layers shared by every PyTorch architecture of the zoo.

Convolutions pad like TensorFlow's ``padding="same"`` (the extra row/column of an
even total goes bottom/right) so that the Keras twin, and the LCE flatbuffer made
from it, see exactly the same pixels.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SignSTE", "ste_sign", "same_pad", "Conv2d", "BinaryConv2d", "QUANTIZERS"]


class SignSTE(torch.autograd.Function):
    """sign(x) with sign(0) = +1; gradient passed straight through where |x| <= clip."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.clip = clip
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip).to(grad.dtype), None


def ste_sign(x: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """Binarizes to ±1 (0 -> +1) with the straight-through estimator."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or not x.requires_grad:
        # Exporters see plain ops: Sign would map 0 to 0, so build it from a comparison.
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return SignSTE.apply(x, clip)


QUANTIZERS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "ste_sign": ste_sign,
    "tanh": lambda x, clip: torch.tanh(x),
}


def same_pad(x: torch.Tensor, kernel_size: int, stride: int, dilation: int = 1, value: float = 0.0) -> torch.Tensor:
    """Pads an NCHW tensor the way TensorFlow's ``padding="same"`` does."""
    h, w = x.shape[-2:]
    k = (kernel_size - 1) * dilation + 1
    pads = []
    for size in (w, h):
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class Conv2d(nn.Conv2d):
    """A float convolution with TensorFlow-style ``same`` padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = same_pad(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


class BinaryConv2d(nn.Conv2d):
    """The zoo's one quantized convolution (a twin of ``larq.layers.QuantConv2D``).

    Inputs and weights pass through a quantizer (``"ste_sign"``: ±1 with sign(0)=+1
    and the straight-through estimator; ``"tanh"``; or ``None`` for real values).
    The quantized input is padded with ``pad_value`` (real inputs always with 0):
    +1 lets LCE's bit-packed kernels skip a correction (our default), 0 matches
    larq-zoo's trained weights.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel side.
        stride: Stride.
        groups: Convolution groups.
        pad_value: Value of the padded border of the quantized input.
        input_quantizer: ``"ste_sign"``, ``"tanh"`` or ``None``.
        weight_quantizer: ``"ste_sign"`` or ``None``.
        clip: Where the straight-through estimator stops passing gradients.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, pad_value: float = 1.0, input_quantizer: Optional[str] = "ste_sign",
                 weight_quantizer: Optional[str] = "ste_sign", clip: float = 1.0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=False)
        for q in (input_quantizer, weight_quantizer):
            if q is not None and q not in QUANTIZERS:
                raise ValueError(f"unknown quantizer {q!r}; expected one of {sorted(QUANTIZERS)} or None")
        self.pad_value = float(pad_value)
        self.input_quantizer = input_quantizer
        self.weight_quantizer = weight_quantizer
        self.clip = clip

    @property
    def is_binary(self) -> bool:
        """True when both inputs and weights are ±1: an XNOR-popcount convolution."""
        return self.input_quantizer == "ste_sign" and self.weight_quantizer == "ste_sign"

    def quantized_weight(self) -> torch.Tensor:
        w = self.weight
        return w if self.weight_quantizer is None else QUANTIZERS[self.weight_quantizer](w, self.clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quantizer is not None:
            x = QUANTIZERS[self.input_quantizer](x, self.clip)
        pad_value = self.pad_value if self.input_quantizer is not None else 0.0
        x = same_pad(x, self.kernel_size[0], self.stride[0], value=pad_value)
        return F.conv2d(x, self.quantized_weight(), None, self.stride, 0, 1, self.groups)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", pad_value={self.pad_value}, input_quantizer={self.input_quantizer}"
                f", weight_quantizer={self.weight_quantizer}")
