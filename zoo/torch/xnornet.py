"""XNOR-Net (AlexNet) in PyTorch.

Rastegari et al., "XNOR-Net: ImageNet Classification Using Binary Convolutional
Neural Networks", ECCV 2016 (arXiv:1603.05279).

An AlexNet whose convolutions after the first, and its two hidden fully-connected
layers, are binary: ste_sign activations and weights scaled by the mean magnitude of
each output channel (``xnor_weight_scale``). BN (no learned scale) precedes every binary
layer. The fully-connected layers are convolutions, as in larq-zoo's
``literature.XNORNet`` (the first one a valid conv over the whole final map).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d, final_map_side

__all__ = ["XNORNet", "build"]


def _bn(channels: int, eps: float) -> BatchNorm2d:
    return BatchNorm2d(channels, eps=eps, momentum=0.1, scale=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2)  # Keras MaxPool2D(3, 2), valid padding


class XNORNet(ClassifierMixin, nn.Module):
    """XNOR-Net (Rastegari et al., 2016).

    Args:
        features: Channels of the five convolutions (the first is float).
        hidden: Units of the two binary fully-connected layers.
        pad_value: Border value of the binary convs' inputs (larq-zoo trains with 0.0).
        num_classes: Classifier outputs.
        input_size: Input side; the first fully-connected layer covers the final map.
    """

    def __init__(self, features: Sequence[int] = (96, 256, 384, 384, 256), hidden: int = 4096,
                 pad_value: float = 1.0, num_classes: int = 1000, input_size: int = 224) -> None:
        super().__init__()
        f = list(features)
        binary = dict(input_quantizer="ste_sign", weight_quantizer="xnor_weight_scale", pad_value=pad_value)
        self.conv0 = Conv2d(3, f[0], 11, 4)
        self.bn0 = _bn(f[0], 1e-5)
        self.bn1 = _bn(f[0], 1e-4)
        self.conv1 = BinaryConv2d(f[0], f[1], 5, **binary)
        self.bn2 = _bn(f[1], 1e-4)
        self.conv2 = BinaryConv2d(f[1], f[2], 3, **binary)
        self.bn3 = _bn(f[2], 1e-4)
        self.conv3 = BinaryConv2d(f[2], f[3], 3, **binary)
        self.bn4 = _bn(f[3], 1e-4)
        self.conv4 = BinaryConv2d(f[3], f[4], 3, **binary)
        self.bn5 = _bn(f[4], 1e-4)
        side = final_map_side(input_size, "XNOR-Net")
        self.fc0 = BinaryConv2d(f[4], hidden, side, padding="valid", **binary)
        self.fc0_bn = _bn(hidden, 1e-4)
        self.fc1 = BinaryConv2d(hidden, hidden, 1, padding="valid", **binary)
        self.fc1_bn = _bn(hidden, 1e-3)
        self.classifier = nn.Linear(hidden, num_classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional feature map (after the last pool and BN), before the fully-connected layers."""
        x = self.bn1(_pool(F.relu(self.bn0(self.conv0(x)))))
        x = self.bn2(_pool(self.conv1(x)))
        x = self.bn3(self.conv2(x))
        x = self.bn4(self.conv3(x))
        return self.bn5(_pool(self.conv4(x)))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The two binary fully-connected layers (1x1 maps), flattened."""
        x = self.fc0_bn(self.fc0(x))
        x = F.relu(self.fc1_bn(self.fc1(x)))
        return torch.flatten(x, 1)


def build(cfg: ModelConfig) -> XNORNet:
    """Builds the PyTorch XNOR-Net described by ``cfg``."""
    return XNORNet(num_classes=cfg.num_classes, input_size=cfg.input_size, **cfg.arch)
