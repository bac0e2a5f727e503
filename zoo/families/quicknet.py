"""QuickNet (Bannink et al., MLSys 2021): variants, larq-zoo weights and import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import larq_published, larq_zoo_weights

BUILDER = "zoo.torch.quicknet:build"

# QuickNet (Bannink et al., MLSys 2021): binary convs clip gradients (and weights) at 1.25 and pad with +1.
QUICKNET_PAPER = ("Bannink et al., Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art "
                  "Binarized Neural Networks, MLSys 2021 (arXiv:2011.09398)")
QUICKNET_CLIP = 1.25
# Two blocks per section at a quarter of the width: every kind of layer (stem, 3 transitions with
# blur pools, 8 binary convs), milliseconds to build.
_QUICKNET_TINY = dict(section_blocks=(2, 2, 2, 2), section_filters=(16, 32, 64, 128), input_size=32, num_classes=10)


def _quicknet(blocks: tuple, filters: tuple, published: dict) -> ModelConfig:
    return ModelConfig("", "quicknet", dict(section_blocks=blocks, section_filters=filters, pad_value=1.0),
                       paper=QUICKNET_PAPER, tiny=_QUICKNET_TINY, published=published)


@register_model
def quicknet_small() -> ModelConfig:
    """QuickNetSmall: 4 blocks per section, 32/64/256/512 channels."""
    return _quicknet((4, 4, 4, 4), (32, 64, 256, 512),
                     larq_published("sota.QuickNetSmall", 59.4, 81.8, 12_655_688, 4.00))


@register_model
def quicknet() -> ModelConfig:
    """QuickNet: 4 blocks per section, 64/128/256/512 channels."""
    return _quicknet((4, 4, 4, 4), (64, 128, 256, 512), larq_published("sota.QuickNet", 63.3, 84.6, 13_234_088, 4.17))


@register_model
def quicknet_large() -> ModelConfig:
    """QuickNetLarge: 6/8/12/6 blocks, 64/128/256/512 channels."""
    return _quicknet((6, 8, 12, 6), (64, 128, 256, 512),
                     larq_published("sota.QuickNetLarge", 66.9, 87.0, 23_342_248, 5.40))


_NOTES = ("Imported from larq-zoo's published Keras weights (layers matched by Keras class and build "
                     "order); QuickNet was trained with +1 padding, the zoo's default.")
WEIGHTS = (
    larq_zoo_weights("quicknet_small", "quicknet-v1.0", "quicknet_small_weights.h5",
                     "1ac3b07df7f5a911dd0b49febb2486428ddf1ca130297c403815dfae5a1c71a2", 59.4, 81.8,
                     "sota.QuickNetSmall", _NOTES, zero_padded=False),
    larq_zoo_weights("quicknet", "quicknet-v1.0", "quicknet_weights.h5",
                     "8aba9e4e5f8d342faef04a0b2ae8e562da57dbb7d15162e8b3e091c951ba756c", 63.3, 84.6, "sota.QuickNet",
                     _NOTES, zero_padded=False),
    larq_zoo_weights("quicknet_large", "quicknet-v1.0", "quicknet_large_weights.h5",
                     "c5158e8a59147b31370becd937825f4db8a5cdf308314874f678f596629be45c", 66.9, 87.0,
                     "sota.QuickNetLarge", _NOTES, zero_padded=False),
)

# larq-zoo's QuickNet builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras
# class and build order; these rules give the Keras class of the modules whose class the module type does not
# tell (first match wins).
LARQ_ZOO = dict(auto_named=((r"stem\.dwconv", "quant_depthwise_conv2d"), (r".*\.blurpool", "depthwise_conv2d"),
                            (r".*conv\d?", "quant_conv2d"), (r"classifier", "quant_dense")),
                twins={"quicknet_small": "sota.QuickNetSmall", "quicknet": "sota.QuickNet",
                       "quicknet_large": "sota.QuickNetLarge"})
