"""MobileNet-v1, the float reference (Howard et al., MobileNets, arXiv:1704.04861, 2017): variants and weights."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import mnist_weights

BUILDER = "zoo.torch.mobilenet:build"
MOBILENET_PAPER = "Howard et al., MobileNets, arXiv:1704.04861 (2017)"

# (output channels at width 1.0, stride) of MobileNet-v1's 13 depthwise-separable blocks.
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

_MOBILENET_TINY = dict(depth=4, input_size=32, num_classes=10)
# ImageNet top-1 at 224x224 by width multiplier: Howard et al. 2017, Table 6.
MOBILENET_PUBLISHED_TOP1 = {1.0: 70.6, 0.75: 68.4, 0.5: 63.7, 0.25: 50.6}
_MOBILENET_SOURCE = "Howard et al. 2017 (arXiv:1704.04861), Table 6, 224x224"


def _mobilenet(alpha: float) -> ModelConfig:
    return ModelConfig("", "mobilenet", dict(alpha=alpha, dropout=1e-3, depth=13), paper=MOBILENET_PAPER,
                       tiny=_MOBILENET_TINY,
                       published=dict(top1=MOBILENET_PUBLISHED_TOP1[alpha], source=_MOBILENET_SOURCE))


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


WEIGHTS = (
    mnist_weights("mobilenet_v1_025", "mobilenet_mnist",
                  "bc5307615dac5ad75e4a7f988aeaba4cf77e484e0ef34f59fb720fd8c9751a12",
                  86.0, input_size=64),
)
