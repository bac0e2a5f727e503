"""MobileNet-v1, the float reference of the zoo.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv:1704.04861, 2017.
"""

from __future__ import annotations

import torch
from torch import nn

from ..families.mobilenet import MOBILENET_BLOCKS as BLOCKS
from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import Conv2d


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv -> BN -> ReLU6 -> 1x1 conv -> BN -> ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.dw = Conv2d(in_channels, in_channels, 3, stride, groups=in_channels)
        self.dw_bn = nn.BatchNorm2d(in_channels)
        self.pw = Conv2d(in_channels, out_channels, 1)
        self.pw_bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.dw_bn(self.dw(x)))
        return self.act(self.pw_bn(self.pw(x)))


class MobileNetV1(ClassifierMixin, nn.Module):
    """MobileNet-v1 (Howard et al., 2017) with width multiplier ``alpha``.

    Args:
        alpha: Width multiplier (0.25, 0.5, 0.75 or 1.0 for the published models).
        num_classes: Classifier outputs.
        dropout: Dropout before the classifier (training only).
        depth: How many of the 13 separable blocks to keep (tests use fewer).
    """

    def __init__(self, alpha: float = 1.0, num_classes: int = 1000, dropout: float = 1e-3, depth: int = 13) -> None:
        super().__init__()
        in_ch = int(32 * alpha)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, in_ch, 3, 2))
        self.stem.add_module("bn", nn.BatchNorm2d(in_ch))
        self.stem.add_module("act", nn.ReLU6())
        blocks = []
        for out, stride in BLOCKS[:depth]:
            blocks.append(DepthwiseSeparable(in_ch, int(out * alpha), stride))
            in_ch = int(out * alpha)
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


def build(cfg: ModelConfig) -> MobileNetV1:
    """Builds the PyTorch MobileNet-v1 described by ``cfg``."""
    return MobileNetV1(num_classes=cfg.num_classes, **cfg.arch)
