"""XNOR-Net (Rastegari et al., ECCV 2016), on AlexNet: variant, larq-zoo weights and import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import ALEXNET_224_NOTE, ALEXNET_TINY, LARQ_ZOO_NOTES, larq_published, larq_zoo_weights

BUILDER = "zoo.torch.xnornet:build"


@register_model
def xnornet() -> ModelConfig:
    """XNOR-Net (AlexNet): ste_sign activations, per-channel scaled sign weights."""
    return ModelConfig("", "xnornet", dict(features=(96, 256, 384, 384, 256), hidden=4096, pad_value=1.0),
                       paper="Rastegari et al., XNOR-Net: ImageNet Classification Using Binary Convolutional "
                             "Neural Networks, ECCV 2016 (arXiv:1603.05279)",
                       tiny=ALEXNET_TINY,
                       published=larq_published("literature.XNORNet", 44.96, 69.18, 62_396_768, 22.81))


WEIGHTS = (
    larq_zoo_weights("xnornet", "xnornet-v0.2.0", "xnornet_weights.h5",
                     "e6ba24f785655260ae76a2ef1fab520e3528243d9c8fac430299cd81dbeabe10", 44.96, 69.18,
                     "literature.XNORNet", LARQ_ZOO_NOTES + ALEXNET_224_NOTE),
)

# larq-zoo's builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras class and
# build order (our modules are registered in larq-zoo's build order), each module's class told by its type.
LARQ_ZOO = dict(auto_named=(), twins={"xnornet": "literature.XNORNet"})
