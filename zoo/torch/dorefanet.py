"""DoReFa-Net (AlexNet, 1-bit weights, 2-bit activations) in PyTorch.

Zhou et al., "DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low
Bitwidth Gradients", arXiv:1606.06160 (2016).

An AlexNet whose layers after the first are quantized: activations to 2 bits (DoReFa's
k-bit quantizer on [0, 1]), weights to their sign times one scale per layer (the mean
magnitude, identity gradient). Layer facts follow larq-zoo's ``literature.DoReFaNet``;
its two quantized fully-connected layers are convolutions here (the first a valid conv
over the whole final map, which equals Flatten -> Dense on Keras' NHWC layout).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d, max_pool_same

__all__ = ["DoReFaNet", "ConvBlock", "build"]

_QUANT = dict(input_quantizer="dorefa_2bit", weight_quantizer="magnitude_aware_sign_unclipped", pad_value=0.0)


class ConvBlock(nn.Module):
    """Quantized conv -> BN (no learned scale) -> optional 3x3 max-pool (stride 2, same or valid)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool: str | None = None,
                 padding: str = "same") -> None:
        super().__init__()
        self.pool = pool
        self.conv = BinaryConv2d(in_channels, out_channels, kernel_size, padding=padding, **_QUANT)
        self.bn = BatchNorm2d(out_channels, eps=1e-4, momentum=0.1, scale=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.pool == "same":
            return max_pool_same(x, 3, 2)
        return F.max_pool2d(x, 3, 2) if self.pool == "valid" else x


class DoReFaNet(ClassifierMixin, nn.Module):
    """DoReFa-Net (Zhou et al., 2016).

    Args:
        features: Channels of the five convolutions (the first is float, with a bias).
        hidden: Units of the two quantized fully-connected layers.
        num_classes: Classifier outputs.
        input_size: Input side; the first fully-connected layer covers the final map.
    """

    def __init__(self, features: Sequence[int] = (96, 256, 384, 384, 256), hidden: int = 4096,
                 num_classes: int = 1000, input_size: int = 224) -> None:
        super().__init__()
        f = list(features)
        self.conv0 = Conv2d(3, f[0], 12, 4, bias=True, padding="valid")
        self.blocks = nn.Sequential(
            ConvBlock(f[0], f[1], 5, pool="same"),
            ConvBlock(f[1], f[2], 3, pool="same"),
            ConvBlock(f[2], f[3], 3),
            ConvBlock(f[3], f[4], 3, pool="valid"),
        )
        side = (input_size - 12) // 4 + 1
        side = math.ceil(math.ceil(side / 2) / 2)
        side = (side - 3) // 2 + 1
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for DoReFa-Net (>= 64)")
        self.fc0 = ConvBlock(f[4], hidden, side, padding="valid")
        self.fc1 = ConvBlock(hidden, hidden, 1, padding="valid")
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional feature map, before the fully-connected layers."""
        return self.blocks(self.conv0(x))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The two fully-connected layers (1x1 maps), clipped and flattened."""
        x = self.fc1(self.fc0(x))
        return torch.flatten(torch.clamp(x, 0.0, 1.0), 1)


def build(cfg: ModelConfig) -> DoReFaNet:
    """Builds the PyTorch DoReFa-Net described by ``cfg``."""
    return DoReFaNet(num_classes=cfg.num_classes, input_size=cfg.input_size, **cfg.arch)
