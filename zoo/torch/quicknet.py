"""QuickNet (Small, Large) in PyTorch.

Bannink et al., "Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art
Binarized Neural Networks", MLSys 2021 (arXiv:2011.09398).

A ResNet-like BNN for fast LCE inference: a float stem (strided conv, depthwise conv,
pointwise conv), binary residual blocks (binary 3x3 conv -> ReLU -> BN, added to the
input), and float pointwise transitions preceded by an anti-aliased blur pool. Layer
facts (clip 1.25, +1 padding, BN momenta and epsilons) follow larq-zoo's
``sota.QuickNet``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..families.quicknet import QUICKNET_CLIP as CLIP
from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d

__all__ = ["QuickNet", "ResidualBlock", "Transition", "blurpool_kernel", "build"]

# Keras' BatchNormalization defaults (momentum 0.99, epsilon 1e-3), which larq-zoo's stem keeps.
_KERAS_BN = dict(eps=1e-3, momentum=0.01)
_BN = dict(eps=1e-5, momentum=0.1)


def blurpool_kernel(channels: int, size: int = 3) -> torch.Tensor:
    """The fixed depthwise blur filter (outer product of [1, 2, 1], normalised), (C, 1, k, k).

    Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """
    taps = {2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}[size]
    k = torch.tensor(taps)
    k = torch.outer(k, k)
    return (k / k.sum()).expand(channels, 1, size, size).clone()


class Stem(nn.Module):
    """3x3 conv (stride 2) -> BN -> ReLU -> depthwise 3x3 (stride 2) -> BN (no affine) -> 1x1 conv -> BN."""

    def __init__(self, features: int) -> None:
        super().__init__()
        if features % 4:
            raise ValueError(f"QuickNet's stem needs a multiple of 4 features, got {features}")
        quarter = features // 4
        self.conv0 = Conv2d(3, quarter, 3, 2)
        self.bn0 = BatchNorm2d(quarter, **_KERAS_BN)
        self.dwconv = Conv2d(quarter, quarter, 3, 2, groups=quarter)
        self.bn1 = BatchNorm2d(quarter, scale=False, center=False, **_KERAS_BN)
        self.conv1 = Conv2d(quarter, features, 1)
        self.bn2 = BatchNorm2d(features, **_KERAS_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.conv0(x)))
        x = self.bn1(self.dwconv(x))
        return self.bn2(self.conv1(x))


class ResidualBlock(nn.Module):
    """Binary 3x3 conv (+1 padding) -> ReLU -> BN, added to the input (no stride, no width change)."""

    def __init__(self, channels: int, pad_value: float = 1.0) -> None:
        super().__init__()
        self.conv = BinaryConv2d(channels, channels, 3, pad_value=pad_value, clip=CLIP)
        self.bn = BatchNorm2d(channels, **_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x))) + x


class Transition(nn.Module):
    """ReLU -> 2x2 max-pool (stride 1, valid) -> fixed blur-pool (stride 2) -> float 1x1 conv -> BN.

    The max-pool then blur keeps the downsampling anti-aliased; the blur filter is frozen
    (``trainable=False`` in larq-zoo, so its weights are stored and counted but never trained).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        self.stride = stride
        self.blurpool = Conv2d(in_channels, in_channels, 3, stride, groups=in_channels, trainable=False)
        with torch.no_grad():
            self.blurpool.weight.copy_(blurpool_kernel(in_channels))
        self.conv = Conv2d(in_channels, out_channels, 1)
        self.bn = BatchNorm2d(out_channels, **_BN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(x), self.stride, 1)
        return self.bn(self.conv(self.blurpool(x)))


class Section(nn.Module):
    """An optional transition to ``channels``, then ``num_blocks`` residual blocks."""

    def __init__(self, in_channels: int, channels: int, num_blocks: int, pad_value: float) -> None:
        super().__init__()
        self.transition = Transition(in_channels, channels) if in_channels != channels else None
        self.blocks = nn.Sequential(*(ResidualBlock(channels, pad_value) for _ in range(num_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transition is not None:
            x = self.transition(x)
        return self.blocks(x)


class QuickNet(ClassifierMixin, nn.Module):
    """QuickNet (Bannink et al., 2021).

    Args:
        section_blocks: Residual blocks per section.
        section_filters: Channels of each section (the first is also the stem's).
        pad_value: Border value of the binary convs' inputs (larq-zoo trains with 1.0).
        num_classes: Classifier outputs.
    """

    def __init__(self, section_blocks: Sequence[int] = (4, 4, 4, 4),
                 section_filters: Sequence[int] = (64, 128, 256, 512), pad_value: float = 1.0,
                 num_classes: int = 1000) -> None:
        super().__init__()
        if len(section_blocks) != len(section_filters):
            raise ValueError(f"{len(section_blocks)} section_blocks but {len(section_filters)} section_filters")
        self.stem = Stem(section_filters[0])
        sections, ch = [], section_filters[0]
        for n, c in zip(section_blocks, section_filters):
            sections.append(Section(ch, c, n, pad_value))
            ch = c
        self.sections = nn.Sequential(*sections)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before the final ReLU, global pooling and classifier."""
        return self.sections(self.stem(x))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).mean((2, 3))


def build(cfg: ModelConfig) -> QuickNet:
    """Builds the PyTorch QuickNet described by ``cfg``."""
    return QuickNet(num_classes=cfg.num_classes, **cfg.arch)
