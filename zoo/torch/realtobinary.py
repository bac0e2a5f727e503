"""Real-to-Binary ResNet-18 and its strong baseline, in PyTorch.

Martinez, Yang, Bulat and Tzimiropoulos, "Training Binary Neural Networks with
Real-to-Binary Convolutions", ICLR 2020 (https://openreview.net/forum?id=BJg4NgBKvH).

The layout follows larq-zoo's ``literature.RealToBinaryNet`` so that its ImageNet
weights can be imported: every 3x3 convolution of a ResNet-18 is one "half block"
(BN -> quantized conv -> scaling -> PReLU, plus a shortcut around it), which gives
the paper's double skip connections.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BinaryConv2d, Conv2d, LearnedRescale, avg_pool_same, max_pool_same

__all__ = ["RealToBinaryNet", "ScalingGate", "HalfBlock", "build"]


class ScalingGate(nn.Module):
    """The data-driven re-scaling of Section 4.3: a squeeze-and-excite style gate.

    Computed on the real-valued input of the binary convolution (available at
    inference for free), it re-scales each output channel of the convolution.

    Args:
        in_channels: Channels of the real-valued convolution input.
        out_channels: Channels of the convolution output it scales.
        r: Reduction ratio of the hidden layer (8 in the paper).
    """

    def __init__(self, in_channels: int, out_channels: int, r: int = 8) -> None:
        super().__init__()
        self.reduce = nn.Linear(in_channels, in_channels // r, bias=False)
        self.expand = nn.Linear(in_channels // r, out_channels, bias=False)

    def forward(self, conv_input: torch.Tensor, conv_output: torch.Tensor) -> torch.Tensor:
        z = F.relu(self.reduce(conv_input.mean((2, 3))))
        return conv_output * torch.sigmoid(self.expand(z))[:, :, None, None]


class Shortcut(nn.Module):
    """The real-valued downsampling shortcut: 2x2 average pool -> 1x1 conv -> BN."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(avg_pool_same(x, 2, 2)))


class HalfBlock(nn.Module):
    """One half of the binary block of Figure 1 (left): BN -> quantized conv -> scaling -> PReLU, + shortcut.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (twice the input when downsampling).
        stride: 2 to downsample, else 1.
        out_size: Side of the output feature map (needed by the learned scaling).
        input_quantizer: Quantizer of the conv input (``"ste_sign"``, ``"tanh"``, ``None``).
        weight_quantizer: Quantizer of the conv weights (``"ste_sign"``, ``None``).
        scaling: ``"gate"`` (Real-to-Bin), ``"learned"`` (strong baseline) or ``"none"``.
        scaling_r: Reduction ratio of the gate.
        pad_value: Border value of the quantized conv input (0 matches larq-zoo's weights).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, out_size: int,
                 input_quantizer: Optional[str], weight_quantizer: Optional[str], scaling: str,
                 scaling_r: int, pad_value: float) -> None:
        super().__init__()
        self.shortcut = Shortcut(in_channels, out_channels) if in_channels != out_channels else None
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = BinaryConv2d(in_channels, out_channels, 3, stride, pad_value=pad_value,
                                 input_quantizer=input_quantizer, weight_quantizer=weight_quantizer)
        if scaling == "gate":
            self.scale: Optional[nn.Module] = ScalingGate(in_channels, out_channels, scaling_r)
        elif scaling == "learned":
            self.scale = LearnedRescale(out_channels, out_size, out_size)
        elif scaling == "none":
            self.scale = None
        else:
            raise ValueError(f"unknown scaling {scaling!r}; expected 'gate', 'learned' or 'none'")
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        conv_input = self.bn(x)
        y = self.conv(conv_input)
        if self.scale is not None:
            y = self.scale(conv_input, y)
        return self.act(y) + shortcut


class Block(nn.Module):
    """A ResNet-18 basic block made of two half blocks (``a`` may downsample, ``b`` never does)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, out_size: int, **half) -> None:
        super().__init__()
        self.a = HalfBlock(in_channels, out_channels, stride, out_size, **half)
        self.b = HalfBlock(out_channels, out_channels, 1, out_size, **half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class RealToBinaryNet(ClassifierMixin, nn.Module):
    """Real-to-Bin ResNet-18 (Martinez et al., ICLR 2020) and its training-stage variants.

    Args:
        width: Channels of the stem and first stage (64 in the paper); stages double it.
        input_quantizer: ``"ste_sign"`` (binary activations), ``"tanh"`` (stage 1) or ``None``.
        weight_quantizer: ``"ste_sign"`` (binary weights) or ``None``.
        scaling: ``"gate"`` (data-driven, Real-to-Bin), ``"learned"`` (strong baseline) or ``"none"``.
        scaling_r: Reduction ratio of the gate's hidden layer.
        stem_activation: ``"prelu"`` (larq-zoo, all variants) or ``"relu"`` (the paper's ResNet stem).
        pad_value: Border value of quantized conv inputs.
        num_classes: Classifier outputs.
        input_size: Input side; only the learned scaling depends on it.
    """

    def __init__(self, width: int = 64, input_quantizer: Optional[str] = "ste_sign",
                 weight_quantizer: Optional[str] = "ste_sign", scaling: str = "gate", scaling_r: int = 8,
                 stem_activation: str = "prelu", pad_value: float = 1.0, num_classes: int = 1000,
                 input_size: int = 224) -> None:
        super().__init__()
        if stem_activation not in ("prelu", "relu"):
            raise ValueError(f"unknown stem_activation {stem_activation!r}; expected 'prelu' or 'relu'")
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, width, 7, 2))
        self.stem.add_module("bn", nn.BatchNorm2d(width))
        self.stem.add_module("act", nn.PReLU(width) if stem_activation == "prelu" else nn.ReLU())
        size = math.ceil(math.ceil(input_size / 2) / 2)  # stride-2 stem conv, stride-2 max pool
        half = dict(input_quantizer=input_quantizer, weight_quantizer=weight_quantizer, scaling=scaling,
                    scaling_r=scaling_r, pad_value=pad_value)
        blocks, ch = [], width
        for i in range(8):
            # Stages 2-4 halve the resolution and double the channels in their first block.
            stride = 2 if i in (2, 4, 6) else 1
            size = math.ceil(size / stride)
            blocks.append(Block(ch, ch * stride, stride, size, **half))
            ch *= stride
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(max_pool_same(self.stem(x), 3, 2))


def build(cfg: ModelConfig) -> RealToBinaryNet:
    """Builds the PyTorch Real-to-Bin network described by ``cfg``."""
    return RealToBinaryNet(num_classes=cfg.num_classes, input_size=cfg.input_size, **cfg.arch)
