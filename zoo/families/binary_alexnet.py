"""Binary AlexNet (Hubara et al., Binarized Neural Networks, NeurIPS 2016): variant, larq-zoo weights, import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import ALEXNET_224_NOTE, ALEXNET_TINY, LARQ_ZOO_NOTES, larq_published, larq_zoo_weights

BUILDER = "zoo.torch.binary_alexnet:build"


@register_model
def binary_alexnet() -> ModelConfig:
    """Binary AlexNet (BNN): ±1 weights everywhere, ±1 activations after the first layer."""
    return ModelConfig("", "binary_alexnet", dict(features=(64, 192, 384, 384, 256), hidden=4096, pad_value=1.0),
                       paper="Hubara et al., Binarized Neural Networks, NeurIPS 2016",
                       tiny=ALEXNET_TINY,
                       published=larq_published("literature.BinaryAlexNet", 36.30, 61.53, 61_859_192, 7.49))


WEIGHTS = (
    larq_zoo_weights("binary_alexnet", "binary_alexnet-v0.3.0", "binary_alexnet_weights.h5",
                     "7fc065c47c5c1d92389e0bb988ce6df6a4fa09d803b866e2ba648069d6652d63", 36.30, 61.53,
                     "literature.BinaryAlexNet", LARQ_ZOO_NOTES + ALEXNET_224_NOTE),
)

# larq-zoo's builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras class and
# build order (our modules are registered in larq-zoo's build order), each module's class told by its type.
LARQ_ZOO = dict(auto_named=(), twins={"binary_alexnet": "literature.BinaryAlexNet"})
