"""Binary AlexNet (BNN) in PyTorch.

Hubara, Courbariaux, Soudry, El-Yaniv and Bengio, "Binarized Neural Networks", NeurIPS
2016 (https://papers.nips.cc/paper/6573-binarized-neural-networks).

An AlexNet with ±1 weights everywhere and ±1 activations after the first layer; each
layer is quantized conv -> (3x3 max-pool) -> BN without learned scale. The three
fully-connected layers are binary convolutions, as in larq-zoo's
``literature.BinaryAlexNet`` (the first a valid conv over the whole final map, which
equals its Reshape -> 1x1 conv on Keras' NHWC layout); the last one is the classifier.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelConfig
from .layers import BatchNorm2d, BinaryConv2d, final_map_side

__all__ = ["BinaryAlexNet", "ConvBlock", "build"]


class ConvBlock(nn.Module):
    """Binary conv (real inputs for the first) -> optional 3x3 max-pool (valid) -> BN (no learned scale)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, pool: bool = False,
                 first: bool = False, padding: str = "same", pad_value: float = 1.0) -> None:
        super().__init__()
        self.pool = pool
        self.conv = BinaryConv2d(in_channels, out_channels, kernel_size, stride, pad_value=pad_value, padding=padding,
                                 input_quantizer=None if first else "ste_sign")
        self.bn = BatchNorm2d(out_channels, eps=1e-3, momentum=0.1, scale=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(F.max_pool2d(x, 3, 2) if self.pool else x)


class BinaryAlexNet(nn.Module):
    """Binary AlexNet (Hubara et al., 2016).

    Args:
        features: Channels of the five convolutions.
        hidden: Units of the two hidden fully-connected layers.
        pad_value: Border value of the binary convs' inputs (larq-zoo trains with 0.0).
        num_classes: Classifier outputs.
        input_size: Input side; the first fully-connected layer covers the final map.
    """

    def __init__(self, features: Sequence[int] = (64, 192, 384, 384, 256), hidden: int = 4096,
                 pad_value: float = 1.0, num_classes: int = 1000, input_size: int = 224) -> None:
        super().__init__()
        f = list(features)
        self.blocks = nn.Sequential(
            ConvBlock(3, f[0], 11, 4, pool=True, first=True),
            ConvBlock(f[0], f[1], 5, pool=True, pad_value=pad_value),
            ConvBlock(f[1], f[2], 3, pad_value=pad_value),
            ConvBlock(f[2], f[3], 3, pad_value=pad_value),
            ConvBlock(f[3], f[4], 3, pool=True, pad_value=pad_value),
        )
        side = final_map_side(input_size, "Binary AlexNet")
        self.fc0 = ConvBlock(f[4], hidden, side, padding="valid")
        self.fc1 = ConvBlock(hidden, hidden, 1, padding="valid")
        self.fc2 = ConvBlock(hidden, num_classes, 1, padding="valid")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional feature map, before the fully-connected layers."""
        return self.blocks(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier reads: the hidden fully-connected layers' ``(N, hidden, 1, 1)`` output."""
        return self.fc1(self.fc0(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The fully-connected layers on :meth:`forward_features`' map (``pre_logits``: before the last)."""
        x = self.pre_logits(x)
        return x if pre_logits else torch.flatten(self.fc2(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> ConvBlock:
        """The last layer, a binary 1x1 convolution (larq-zoo's layout), ``num_classes`` outputs."""
        return self.fc2

    def reset_classifier(self, num_classes: int) -> None:
        """Replaces the classifier by a freshly initialised one with ``num_classes`` outputs
        (``zoo_config`` follows, as :class:`zoo.torch.classifier.ClassifierMixin` does); 0 removes it
        (``forward`` returns the hidden layers' features)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        old = self.fc1.conv.weight
        self.fc2 = (ConvBlock(self.fc1.conv.out_channels, num_classes, 1, padding="valid").to(old.device, old.dtype)
                    if num_classes else nn.Identity())
        cfg = getattr(self, "zoo_config", None)
        if cfg is not None:
            self.zoo_config = cfg.replace(num_classes=num_classes)


def build(cfg: ModelConfig) -> BinaryAlexNet:
    """Builds the PyTorch Binary AlexNet described by ``cfg``."""
    return BinaryAlexNet(num_classes=cfg.num_classes, input_size=cfg.input_size, **cfg.arch)
