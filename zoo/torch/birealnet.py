"""Bi-Real Net (ResNet-18) in PyTorch.

Liu et al., "Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved
Representational Capability and Advanced Training Algorithm", ECCV 2018
(arXiv:1808.00278).

Every binary 3x3 conv of a ResNet-18 gets its own real-valued shortcut. Activations
are binarized with ``approx_sign`` (the paper's piecewise-polynomial gradient),
weights with ``magnitude_aware_sign`` (sign times the mean magnitude of each output
channel). Layer facts (no stem ReLU, BN momentum 0.8, zero padding) follow larq-zoo's
``literature.BiRealNet``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d, PooledShortcut, max_pool_same

__all__ = ["BiRealNet", "ResidualBlock", "build"]

# Keras BatchNormalization(momentum=0.8) with its default epsilon 1e-3.
_BN = dict(eps=1e-3, momentum=0.2)


class ResidualBlock(nn.Module):
    """Binary 3x3 conv (approx_sign inputs, magnitude-aware sign weights) -> BN, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, pad_value: float = 0.0) -> None:
        super().__init__()
        self.shortcut = PooledShortcut(in_channels, out_channels, _BN) if in_channels != out_channels else None
        stride = 1 if in_channels == out_channels else 2
        self.conv = BinaryConv2d(in_channels, out_channels, 3, stride, pad_value=pad_value,
                                 input_quantizer="approx_sign", weight_quantizer="magnitude_aware_sign")
        self.bn = BatchNorm2d(out_channels, **_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.bn(self.conv(x)) + shortcut


class BiRealNet(ClassifierMixin, nn.Module):
    """Bi-Real Net 18 (Liu et al., 2018).

    Args:
        filters: Channels of the stem and the first stage; the next three double it.
        pad_value: Border value of the binary convs' inputs (larq-zoo trains with 0.0).
        num_classes: Classifier outputs.
    """

    def __init__(self, filters: int = 64, pad_value: float = 0.0, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, filters, 7, 2))
        self.stem.add_module("bn", BatchNorm2d(filters, **_BN))
        blocks, ch = [], filters
        for stage in range(4):
            out = filters * 2 ** stage
            for _ in range(4):
                blocks.append(ResidualBlock(ch, out, pad_value))
                ch = out
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling and the classifier."""
        return self.blocks(max_pool_same(self.stem(x), 3, 2))




def build(cfg: ModelConfig) -> BiRealNet:
    """Builds the PyTorch Bi-Real Net described by ``cfg``."""
    return BiRealNet(num_classes=cfg.num_classes, **cfg.arch)
