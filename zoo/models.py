"""The variant table: every registered architecture as a few constants.

Framework-free: both ``zoo.torch.<family>`` and ``zoo.keras.<family>`` build from
these configs, which keeps their parameter names and shapes identical.
"""

from __future__ import annotations

from .registry import ModelConfig, register_model

MOBILENET_PAPER = "Howard et al., MobileNets, arXiv:1704.04861 (2017)"
MELIUSNET_PAPER = "Bethge et al., MeliusNet: Can Binary Neural Networks Achieve MobileNet-level Accuracy?, arXiv:2001.05936 (2020)"
REAL2BIN_PAPER = "Martinez et al., Training Binary Neural Networks with Real-to-Binary Convolutions, ICLR 2020"

# (output channels at width 1.0, stride) of MobileNet-v1's 13 depthwise-separable blocks.
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

_MOBILENET_TINY = dict(depth=4, input_size=32, num_classes=10)


def _mobilenet(alpha: float) -> ModelConfig:
    return ModelConfig("", "mobilenet", dict(alpha=alpha, dropout=1e-3, depth=13), paper=MOBILENET_PAPER,
                       tiny=_MOBILENET_TINY)


@register_model
def mobilenet_v1() -> ModelConfig:
    """MobileNet-v1 at width 1.0, the float reference."""
    return _mobilenet(1.0)


@register_model
def mobilenet_v1_075() -> ModelConfig:
    """MobileNet-v1 at width 0.75."""
    return _mobilenet(0.75)


@register_model
def mobilenet_v1_050() -> ModelConfig:
    """MobileNet-v1 at width 0.5."""
    return _mobilenet(0.5)


@register_model
def mobilenet_v1_025() -> ModelConfig:
    """MobileNet-v1 at width 0.25."""
    return _mobilenet(0.25)
