"""Binary ResNet-E 18 in PyTorch.

Bethge et al., "Back to Simplicity: How to Train Accurate BNNs from Scratch?",
arXiv:1906.08637 (2019).

A ResNet-18 whose every binary 3x3 conv (ste_sign, clip 1.25, zero padding) gets its own
shortcut, as in Bi-Real Net; downsampling shortcuts are average pool -> float 1x1 conv ->
BN. Layer facts follow larq-zoo's ``literature.BinaryResNetE18`` (its ImageNet stem: the
small-input stem larq-zoo switches to below 50 pixels is not reproduced).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..families.resnet_e import RESNET_E_CLIP as CLIP
from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d, max_pool_same

__all__ = ["BinaryResNetE", "ResidualBlock", "build"]

_BN = dict(eps=1e-5, momentum=0.1)


class Shortcut(nn.Module):
    """The downsampling shortcut: 2x2 average pool (valid) -> float 1x1 conv -> BN."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 1)
        self.bn = BatchNorm2d(out_channels, **_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(F.avg_pool2d(x, 2, 2)))


class ResidualBlock(nn.Module):
    """Binary 3x3 conv -> BN, plus the (downsampling) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, pad_value: float = 0.0) -> None:
        super().__init__()
        self.shortcut = Shortcut(in_channels, out_channels) if in_channels != out_channels else None
        self.conv = BinaryConv2d(in_channels, out_channels, 3, stride, pad_value=pad_value, clip=CLIP)
        self.bn = BatchNorm2d(out_channels, **_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.bn(self.conv(x)) + shortcut


class BinaryResNetE(ClassifierMixin, nn.Module):
    """Binary ResNet-E (Bethge et al., 2019).

    Args:
        section_blocks: ResNet basic blocks per stage (each is two residual blocks here).
        section_filters: Channels of each stage.
        initial_filters: Channels of the stem.
        pad_value: Border value of the binary convs' inputs (larq-zoo trains with 0.0).
        num_classes: Classifier outputs.
    """

    def __init__(self, section_blocks: Sequence[int] = (2, 2, 2, 2),
                 section_filters: Sequence[int] = (64, 128, 256, 512), initial_filters: int = 64,
                 pad_value: float = 0.0, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, initial_filters, 7, 2))
        self.stem.add_module("bn", BatchNorm2d(initial_filters, **_BN))
        self.pool_bn = BatchNorm2d(initial_filters, **_BN)  # after the max-pool
        blocks, ch = [], initial_filters
        for stage, (n, filters) in enumerate(zip(section_blocks, section_filters)):
            for layer in range(2 * n):
                stride = 2 if stage > 0 and layer == 0 else 1
                blocks.append(ResidualBlock(ch, filters, stride, pad_value))
                ch = filters
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before the final ReLU, global pooling and classifier."""
        x = self.pool_bn(max_pool_same(F.relu(self.stem(x)), 3, 2))
        return self.blocks(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).mean((2, 3))


def build(cfg: ModelConfig) -> BinaryResNetE:
    """Builds the PyTorch Binary ResNet-E described by ``cfg``."""
    return BinaryResNetE(num_classes=cfg.num_classes, **cfg.arch)
