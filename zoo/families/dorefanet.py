"""DoReFa-Net (Zhou et al., arXiv:1606.06160), on AlexNet: variant, larq-zoo weights and import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import ALEXNET_224_NOTE, ALEXNET_TINY, larq_published, larq_zoo_weights

BUILDER = "zoo.torch.dorefanet:build"


@register_model
def dorefanet() -> ModelConfig:
    """DoReFa-Net (AlexNet): 2-bit activations, sign weights with one scale per layer."""
    return ModelConfig("", "dorefanet", dict(features=(96, 256, 384, 384, 256), hidden=4096),
                       paper="Zhou et al., DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low "
                             "Bitwidth Gradients, arXiv:1606.06160 (2016)",
                       tiny=ALEXNET_TINY,
                       published=larq_published("literature.DoReFaNet", 53.39, 76.50, 62_403_912, 22.84))


WEIGHTS = (
    # The 2-bit inputs always pad with 0 (no pad_value option).
    larq_zoo_weights("dorefanet", "dorefanet-v0.1.0", "dorefanet_weights.h5",
                     "645d7839d574faa3eeeca28f3115773d75da3ab67ff6876b4de12d10245ecf6a", 53.39, 76.50,
                     "literature.DoReFaNet",
                     "Imported from larq-zoo's published Keras weights (layers matched by Keras class and build "
                     "order); its 2-bit activations pad with 0, as larq-zoo's, and have no LCE binary kernel "
                     "(the convolutions stay float in TFLite)." + ALEXNET_224_NOTE, zero_padded=False),
)

# larq-zoo's builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras class and
# build order (our modules are registered in larq-zoo's build order), each module's class told by its type.
LARQ_ZOO = dict(auto_named=((r"fc\d\.conv", "quant_dense"),), twins={"dorefanet": "literature.DoReFaNet"})
