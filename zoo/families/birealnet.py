"""Bi-Real Net (Liu et al., ECCV 2018): variants, larq-zoo weights and import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import LARQ_ZOO_NOTES, larq_published, larq_zoo_weights

BUILDER = "zoo.torch.birealnet:build"

BIREALNET_PAPER = ("Liu et al., Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved Representational "
                   "Capability and Advanced Training Algorithm, ECCV 2018 (arXiv:1808.00278)")


@register_model
def birealnet18() -> ModelConfig:
    """Bi-Real Net 18: approx_sign activations, magnitude-aware sign weights, a shortcut per binary conv."""
    return ModelConfig("", "birealnet", dict(filters=64, pad_value=1.0), paper=BIREALNET_PAPER,
                       tiny=dict(filters=16, input_size=32, num_classes=10),
                       published=larq_published("literature.BiRealNet", 57.47, 79.84, 11_699_112, 4.03))


WEIGHTS = (
    larq_zoo_weights("birealnet18", "birealnet-v0.3.0", "birealnet_weights.h5",
                     "6e6efac1584fcd60dd024198c87f42eb53b5ec719a5ca1f527e1fe7e8b997117", 57.47, 79.84,
                     "literature.BiRealNet", LARQ_ZOO_NOTES),
)

# larq-zoo's builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras class and
# build order (our modules are registered in larq-zoo's build order), each module's class told by its type.
LARQ_ZOO = dict(auto_named=(), twins={"birealnet18": "literature.BiRealNet"})
