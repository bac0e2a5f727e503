"""MeliusNet in PyTorch.

Bethge et al., "MeliusNet: Can Binary Neural Networks Achieve MobileNet-level
Accuracy?", arXiv:2001.05936, 2020.

A binary DenseNet in which every DenseBlock (adds 64 channels) is followed by an
ImprovementBlock (refines those 64 channels residually), with 32-bit transitions
between the four stages. Module paths are the layer names of the translated Keras
model (``zoo.keras.translate``), which is what weight transfer relies on.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..families.meliusnet import MELIUSNET_CLIP as CLIP
from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BinaryConv2d, Conv2d, channel_shuffle, max_pool_ceil

__all__ = ["MeliusNet", "DenseBlock", "ImprovementBlock", "Transition", "build"]


class Stem(nn.Module):
    """The grouped stem: 3x3 convs of 32 (stride 2), 32 (4 groups) and 64 (8 groups) channels.

    Each conv is followed by BN and ReLU; a 2x2 max-pool ends the stem, as in larq-zoo
    (BMXNet-v2 pools 3x3 with stride 2; both are parameter-free and halve the side).
    """

    def __init__(self, features: int = 64) -> None:
        super().__init__()
        half = features // 2
        self.conv0 = Conv2d(3, half, 3, 2)
        self.bn0 = nn.BatchNorm2d(half)
        self.conv1 = Conv2d(half, half, 3, groups=4)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = Conv2d(half, features, 3, groups=8)
        self.bn2 = nn.BatchNorm2d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.conv0(x)))
        x = F.relu(self.bn1(self.conv1(x)))
        return max_pool_ceil(F.relu(self.bn2(self.conv2(x))))


class DenseBlock(nn.Module):
    """BN -> binary 3x3 conv; its ``growth_rate`` channels are concatenated to the input."""

    def __init__(self, in_channels: int, growth_rate: int = 64, pad_value: float = 1.0) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = BinaryConv2d(in_channels, growth_rate, 3, pad_value=pad_value, clip=CLIP)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.bn(x))], 1)


class ImprovementBlock(nn.Module):
    """BN -> binary 3x3 conv, added to the last ``growth_rate`` channels (those the
    preceding DenseBlock created), which raises their quality without adding channels."""

    def __init__(self, in_channels: int, growth_rate: int = 64, pad_value: float = 1.0) -> None:
        super().__init__()
        self.growth_rate = growth_rate
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = BinaryConv2d(in_channels, growth_rate, 3, pad_value=pad_value, clip=CLIP)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = x.shape[1] - self.growth_rate
        return torch.cat([x[:, :keep], x[:, keep:] + self.conv(self.bn(x))], 1)


class Transition(nn.Module):
    """BN -> 2x2 max-pool -> ReLU -> (channel shuffle) -> 32-bit 1x1 conv.

    Pooling before the 1x1 conv quarters its cost; the conv stays 32-bit, as in the
    paper, because binary downsampling convs cost much accuracy in binary DenseNets.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, shuffle_groups: int = 1) -> None:
        super().__init__()
        self.shuffle_groups = shuffle_groups
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = Conv2d(in_channels, out_channels, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(max_pool_ceil(self.bn(x)))
        return self.conv(channel_shuffle(x, self.shuffle_groups))


class Stage(nn.Module):
    """``num_blocks`` (DenseBlock, ImprovementBlock) pairs, then an optional transition."""

    def __init__(self, in_channels: int, num_blocks: int, growth_rate: int, pad_value: float,
                 transition: Transition | None = None) -> None:
        super().__init__()
        widths = [in_channels + i * growth_rate for i in range(num_blocks)]
        self.dense = nn.ModuleList(DenseBlock(c, growth_rate, pad_value) for c in widths)
        self.improve = nn.ModuleList(ImprovementBlock(c + growth_rate, growth_rate, pad_value) for c in widths)
        self.transition = transition

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dense, improve in zip(self.dense, self.improve):
            x = improve(dense(x))
        return x if self.transition is None else self.transition(x)


class MeliusNet(ClassifierMixin, nn.Module):
    """MeliusNet (Bethge et al., 2020).

    Args:
        num_blocks: (DenseBlock, ImprovementBlock) pairs in each of the four stages.
        transition_features: Output channels of the three transitions (multiples of 32).
        transition_groups: Groups of the transition 1x1 convs (MeliusNet A/B/C: 4/2/4).
        shuffle_groups: Groups of the channel shuffle before a grouped transition
            (1: none).
        stem_features: Channels leaving the stem.
        growth_rate: Channels each DenseBlock adds and each ImprovementBlock refines.
        pad_value: Border value of the binary convs' inputs: 1.0 (LCE-friendly) or
            0.0 (larq-zoo's trained weights).
        num_classes: Classifier outputs.
    """

    def __init__(self, num_blocks: Sequence[int] = (4, 5, 4, 4), transition_features: Sequence[int] = (160, 224, 256),
                 transition_groups: int = 1, shuffle_groups: int = 1, stem_features: int = 64,
                 growth_rate: int = 64, pad_value: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        if len(transition_features) != len(num_blocks) - 1:
            raise ValueError(f"need {len(num_blocks) - 1} transition widths for {len(num_blocks)} stages, "
                             f"got {len(transition_features)}")
        self.stem = Stem(stem_features)
        stages, ch = [], stem_features
        for i, n in enumerate(num_blocks):
            width = ch + n * growth_rate
            transition = None
            if i < len(transition_features):
                transition = Transition(width, transition_features[i], transition_groups, shuffle_groups)
            stages.append(Stage(ch, n, growth_rate, pad_value, transition))
            ch = transition_features[i] if transition is not None else width
        self.stages = nn.ModuleList(stages)
        self.head_bn = nn.BatchNorm2d(ch)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return F.relu(self.head_bn(x))


def build(cfg: ModelConfig) -> MeliusNet:
    """Builds the PyTorch MeliusNet described by ``cfg``."""
    return MeliusNet(num_classes=cfg.num_classes, **cfg.arch)
