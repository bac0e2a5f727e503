"""Binary DenseNet (28, 37, 37-dilated, 45) in PyTorch.

Bethge et al., "Back to Simplicity: How to Train Accurate BNNs from Scratch?",
arXiv:1906.08637 (2019).

A DenseNet whose every layer is BN -> binary 3x3 conv (ste_sign, clip 1.3, zero
padding), concatenated to its input; float transitions (BN -> 2x2 max-pool -> ReLU ->
1x1 conv) reduce the width by a per-stage ratio, rounded to a multiple of 32. The
dilated variant keeps the resolution of the last two stages and dilates their convs
instead. Layer facts follow larq-zoo's ``literature.BinaryDenseNet*``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..families.densenet import DENSENET_CLIP as CLIP
from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d, max_pool_same

__all__ = ["BinaryDenseNet", "DenseLayer", "Transition", "transition_width", "build"]

_BN = dict(eps=1e-5, momentum=0.1)


def transition_width(channels: int, reduction: float) -> int:
    """larq-zoo's ``round(channels // reduction / 32) * 32`` (float floor division, then
    Python's round-half-to-even)."""
    return round(channels // reduction / 32) * 32


class DenseLayer(nn.Module):
    """BN -> binary 3x3 conv; its ``growth_rate`` channels are concatenated to the input."""

    def __init__(self, in_channels: int, growth_rate: int, dilation: int = 1, pad_value: float = 0.0) -> None:
        super().__init__()
        self.bn = BatchNorm2d(in_channels, **_BN)
        self.conv = BinaryConv2d(in_channels, growth_rate, 3, pad_value=pad_value, clip=CLIP, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.bn(x))], 1)


class Transition(nn.Module):
    """BN -> (2x2 max-pool) -> ReLU -> float 1x1 conv; no pool before a dilated stage."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool) -> None:
        super().__init__()
        self.pool = pool
        self.bn = BatchNorm2d(in_channels, **_BN)
        self.conv = Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(x)
        if self.pool:
            x = F.max_pool2d(x, 2, 2)
        return self.conv(F.relu(x))


class Stage(nn.Module):
    """``num_layers`` dense layers, then an optional transition."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int, dilation: int, pad_value: float,
                 transition: Transition | None) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(DenseLayer(in_channels + i * growth_rate, growth_rate, dilation, pad_value)
                                      for i in range(num_layers)))
        self.transition = transition

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        return x if self.transition is None else self.transition(x)


class BinaryDenseNet(ClassifierMixin, nn.Module):
    """Binary DenseNet (Bethge et al., 2019).

    Args:
        layers: Dense layers per stage.
        reduction: Width reduction of each of the transitions (one fewer than stages).
        dilation_rate: Dilation of each stage's binary convs; a transition into a stage
            with dilation > 1 does not pool.
        initial_filters: Channels of the stem.
        growth_rate: Channels each dense layer adds.
        pad_value: Border value of the binary convs' inputs (larq-zoo trains with 0.0).
        num_classes: Classifier outputs.
    """

    def __init__(self, layers: Sequence[int] = (6, 6, 6, 5), reduction: Sequence[float] = (2.7, 2.7, 2.2),
                 dilation_rate: Sequence[int] = (1, 1, 1, 1), initial_filters: int = 64, growth_rate: int = 64,
                 pad_value: float = 0.0, num_classes: int = 1000) -> None:
        super().__init__()
        if not len(reduction) == len(layers) - 1 == len(dilation_rate) - 1:
            raise ValueError(f"need {len(layers) - 1} reductions and {len(layers)} dilation rates for "
                             f"{len(layers)} stages, got {len(reduction)} and {len(dilation_rate)}")
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, initial_filters, 7, 2))
        self.stem.add_module("bn", BatchNorm2d(initial_filters, **_BN))
        stages, ch = [], initial_filters
        for i, n in enumerate(layers):
            width = ch + n * growth_rate
            transition = None
            if i < len(reduction):
                transition = Transition(width, transition_width(width, reduction[i]), pool=dilation_rate[i + 1] == 1)
            stages.append(Stage(ch, n, growth_rate, dilation_rate[i], pad_value, transition))
            ch = transition.conv.out_channels if transition is not None else width
        self.stages = nn.Sequential(*stages)
        self.head_bn = BatchNorm2d(ch, **_BN)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before the final BN, ReLU, global pooling and classifier."""
        return self.stages(max_pool_same(F.relu(self.stem(x)), 3, 2))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.head_bn(x)).mean((2, 3))


def build(cfg: ModelConfig) -> BinaryDenseNet:
    """Builds the PyTorch Binary DenseNet described by ``cfg``."""
    return BinaryDenseNet(num_classes=cfg.num_classes, **cfg.arch)
