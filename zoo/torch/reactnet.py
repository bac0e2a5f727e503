"""ReActNet-A and ReActNet-18 in PyTorch.

Liu et al., "ReActNet: Towards Precise Binary Neural Network with Generalized Activation
Functions", ECCV 2020 (arXiv:2003.03488).

ReActNet-A binarizes MobileNet-v1: each depthwise-separable block becomes a binary 3x3
convolution (input channels to input channels, the block's stride) and a binary 1x1 one,
each with a real-valued identity shortcut. Where MobileNet-v1 halves the map, the shortcut
is a 2x2 average pool; where it doubles the channels, the 1x1 convolution is duplicated (two
convolutions on the same binary input, each with the block's input as shortcut) and the two
outputs are concatenated. Activations go through RSign (a learned per-channel threshold,
then sign) before each binary convolution and RPReLU after each shortcut addition; only the
3x3 stem convolution and the classifier are real-valued. ReActNet-18 applies RSign and
RPReLU to Bi-Real Net 18 (a 7x7 stem, max pool, 16 binary 3x3 convolutions each with a
shortcut; a 2x2 average pool, real 1x1 convolution and BN where a stage begins).

Layer facts follow the authors' code (github.com/liuzechun/ReActNet, ``mobilenet/*/reactnet.py``
and ``resnet/*/birealnet.py``): binary convolutions pad with PyTorch's symmetric ``padding=1``
(``padding=1`` here: on a stride-2 convolution of an even map it reads the top/left border,
where TensorFlow's "same" reads the bottom/right one), activations are binarized with the
ApproxSign gradient (``approx_sign``), weights as sign times the mean magnitude of each output
channel (``magnitude_aware_sign``), BatchNorms keep PyTorch's defaults. The authors pad the
binary inputs with 0; the zoo's default +1 is LCE's fast path (``pad_value=0.0`` for their
weights, see ``zoo.reactnet_import``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..families.reactnet import MOBILENET_BLOCKS
from ..registry import ModelConfig
from .classifier import ClassifierMixin
from .layers import BatchNorm2d, BinaryConv2d, Conv2d, PooledShortcut, RPReLU, RSign, avg_pool_same

__all__ = ["ReActNetA", "ReActNet18", "BlockA", "Block18", "build"]

# What the binary convolutions of ReActNet take unless a stage of the recipe says otherwise.
_QUANT = dict(input_quantizer="approx_sign", weight_quantizer="magnitude_aware_sign")
# PyTorch's BatchNorm2d defaults, which the authors keep (also on the downsampling shortcut).
_BN = dict(eps=1e-5, momentum=0.1)


def _binary(in_channels: int, out_channels: int, kernel_size: int, stride: int, pad_value: float,
            quant: dict) -> BinaryConv2d:
    return BinaryConv2d(in_channels, out_channels, kernel_size, stride, pad_value=pad_value,
                        padding=kernel_size // 2, **quant)


class BlockA(nn.Module):
    """ReActNet-A's block: RSign -> binary 3x3 -> BN, + shortcut, RPReLU; RSign -> binary 1x1 (x2 where
    the channels double, concatenated) -> BN, + shortcut, RPReLU.

    Args:
        in_channels: Input channels.
        out_channels: ``in_channels`` or twice that.
        stride: 1, or 2 (the shortcut is then a 2x2 average pool).
        pad_value: Border value of the binary inputs (the authors': 0.0).
        quant: Quantizers of the binary convolutions (``input_quantizer``, ``weight_quantizer``).
        learn_shifts: Learn RSign's thresholds and RPReLU's shifts (False: they stay 0, Sign and PReLU).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, pad_value: float, quant: dict,
                 learn_shifts: bool = True) -> None:
        super().__init__()
        if out_channels not in (in_channels, 2 * in_channels):
            raise ValueError(f"a ReActNet-A block keeps or doubles its channels, not {in_channels} -> {out_channels}")
        self.stride = stride
        self.rsign1 = RSign(in_channels, learn_shifts)
        self.conv = _binary(in_channels, in_channels, 3, stride, pad_value, quant)
        self.conv_bn = BatchNorm2d(in_channels, **_BN)
        self.act1 = RPReLU(in_channels, trainable_shifts=learn_shifts)
        self.rsign2 = RSign(in_channels, learn_shifts)
        copies = out_channels // in_channels
        self.pw = nn.ModuleList(_binary(in_channels, in_channels, 1, 1, pad_value, quant) for _ in range(copies))
        self.pw_bn = nn.ModuleList(BatchNorm2d(in_channels, **_BN) for _ in range(copies))
        self.act2 = RPReLU(out_channels, trainable_shifts=learn_shifts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = avg_pool_same(x, 2, 2) if self.stride == 2 else x
        y = self.act1(self.conv_bn(self.conv(self.rsign1(x))) + shortcut)
        z = self.rsign2(y)
        outs = [bn(conv(z)) + y for conv, bn in zip(self.pw, self.pw_bn)]
        return self.act2(outs[0] if len(outs) == 1 else torch.cat(outs, 1))


class ReActNetA(ClassifierMixin, nn.Module):
    """ReActNet-A (Liu et al., 2020): MobileNet-v1's layout with binary convolutions.

    Args:
        alpha: Width multiplier of MobileNet-v1's channels (1.0 for the paper's model).
        depth: How many of the 13 blocks to keep (smaller models for tests).
        pad_value: Border value of the binary convolutions' inputs.
        input_quantizer: Activation quantizer of the binary convolutions (None: real, the float teacher).
        weight_quantizer: Weight quantizer (None: real weights, the recipe's first step).
        learn_shifts: Learn RSign's thresholds and RPReLU's shifts (False: fixed at 0, i.e. Sign and PReLU:
            the paper's ablation baseline).
        num_classes: Classifier outputs.
    """

    def __init__(self, alpha: float = 1.0, depth: int = 13, pad_value: float = 1.0,
                 input_quantizer: Optional[str] = "approx_sign",
                 weight_quantizer: Optional[str] = "magnitude_aware_sign",
                 learn_shifts: bool = True, num_classes: int = 1000) -> None:
        super().__init__()
        quant = dict(input_quantizer=input_quantizer, weight_quantizer=weight_quantizer)
        ch = int(32 * alpha)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, ch, 3, 2, padding=1))
        self.stem.add_module("bn", BatchNorm2d(ch, **_BN))
        blocks = []
        for out, stride in MOBILENET_BLOCKS[:depth]:
            blocks.append(BlockA(ch, int(out * alpha), stride, pad_value, quant, learn_shifts))
            ch = int(out * alpha)
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling and the classifier."""
        return self.blocks(self.stem(x))


class Block18(nn.Module):
    """ReActNet-18's block: RSign -> binary 3x3 -> BN, + shortcut (pool, 1x1 conv, BN where the stage
    begins), RPReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, pad_value: float, quant: dict) -> None:
        super().__init__()
        self.rsign = RSign(in_channels)
        self.conv = _binary(in_channels, out_channels, 3, stride, pad_value, quant)
        self.bn = BatchNorm2d(out_channels, **_BN)
        self.shortcut = PooledShortcut(in_channels, out_channels, _BN) if stride != 1 or in_channels != out_channels \
            else None
        self.act = RPReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.bn(self.conv(self.rsign(x))) + shortcut)


class ReActNet18(ClassifierMixin, nn.Module):
    """ReActNet-18 (Liu et al., 2020): Bi-Real Net 18 with RSign and RPReLU.

    Args:
        filters: Channels of the stem and the first stage; each later stage doubles them.
        blocks_per_stage: Binary convolutions (blocks) of each of the four stages.
        pad_value: Border value of the binary convolutions' inputs.
        input_quantizer: Activation quantizer (None: real, the float teacher).
        weight_quantizer: Weight quantizer (None: real weights, the recipe's first step).
        num_classes: Classifier outputs.
    """

    def __init__(self, filters: int = 64, blocks_per_stage: tuple = (4, 4, 4, 4), pad_value: float = 1.0,
                 input_quantizer: Optional[str] = "approx_sign",
                 weight_quantizer: Optional[str] = "magnitude_aware_sign",
                 num_classes: int = 1000) -> None:
        super().__init__()
        quant = dict(input_quantizer=input_quantizer, weight_quantizer=weight_quantizer)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", Conv2d(3, filters, 7, 2, padding=3))
        self.stem.add_module("bn", BatchNorm2d(filters, **_BN))
        blocks, ch = [], filters
        for stage, n in enumerate(blocks_per_stage):
            out = filters * 2 ** stage
            for i in range(n):
                blocks.append(Block18(ch, out, 2 if stage and not i else 1, pad_value, quant))
                ch = out
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling and the classifier."""
        x = nn.functional.max_pool2d(self.stem(x), 3, 2, 1)
        return self.blocks(x)


def build(cfg: ModelConfig) -> nn.Module:
    """Builds the PyTorch ReActNet described by ``cfg`` (``arch["backbone"]``: ``"mobilenet_v1"`` or
    ``"resnet18"``)."""
    arch = dict(cfg.arch)
    backbone = arch.pop("backbone", "mobilenet_v1")
    if backbone == "mobilenet_v1":
        return ReActNetA(num_classes=cfg.num_classes, **arch)
    if backbone == "resnet18":
        return ReActNet18(num_classes=cfg.num_classes, **arch)
    raise ValueError(f"unknown ReActNet backbone {backbone!r}; expected 'mobilenet_v1' or 'resnet18'")
