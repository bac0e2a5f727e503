"""Binary DenseNet (Bethge et al., Back to Simplicity, arXiv:1906.08637): variants, larq-zoo weights, import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import LARQ_ZOO_NOTES, larq_published, larq_zoo_weights
from .resnet_e import BACK_TO_SIMPLICITY_PAPER

BUILDER = "zoo.torch.densenet:build"

DENSENET_CLIP = 1.3
# (layers per stage, reductions of the 3 transitions, dilation per stage) of larq-zoo's four variants.
BINARY_DENSENETS = {
    "28": ((6, 6, 6, 5), (2.7, 2.7, 2.2), (1, 1, 1, 1)),
    "37": ((6, 8, 12, 6), (3.3, 3.3, 4), (1, 1, 1, 1)),
    "37_dilated": ((6, 8, 12, 6), (3.3, 3.3, 4), (1, 1, 2, 4)),
    "45": ((6, 12, 14, 8), (2.7, 3.3, 4), (1, 1, 1, 1)),
}
BINARY_DENSENET_PUBLISHED = {
    "28": (60.91, 82.83, 5_150_504, 4.12),
    "37": (62.89, 84.19, 8_734_120, 5.25),
    "37_dilated": (64.34, 85.15, 8_734_120, 5.25),
    "45": (64.59, 85.21, 13_939_240, 7.54),
}


def _densenet(variant: str) -> ModelConfig:
    layers, reduction, dilation = BINARY_DENSENETS[variant]
    # Tiny: one layer per stage, same reductions and dilations (so the dilated variant still skips two
    # pools and dilates its convs); growth 64 keeps every rounded transition width at 32, not 0.
    tiny = dict(layers=(1, 1, 1, 1), input_size=32, num_classes=10)
    doc = "literature.BinaryDenseNet" + variant.replace("_dilated", "Dilated")
    return ModelConfig("", "densenet", dict(layers=layers, reduction=reduction, dilation_rate=dilation,
                                            initial_filters=64, growth_rate=64, pad_value=1.0),
                       paper=BACK_TO_SIMPLICITY_PAPER, tiny=tiny,
                       published=larq_published(doc, *BINARY_DENSENET_PUBLISHED[variant]))


@register_model
def binary_densenet28() -> ModelConfig:
    """Binary DenseNet28: 6/6/6/5 dense layers, reductions 2.7/2.7/2.2."""
    return _densenet("28")


@register_model
def binary_densenet37() -> ModelConfig:
    """Binary DenseNet37: 6/8/12/6 dense layers, reductions 3.3/3.3/4."""
    return _densenet("37")


@register_model
def binary_densenet37_dilated() -> ModelConfig:
    """Binary DenseNet37 dilated: as DenseNet37, the last two stages dilated (2, 4) instead of pooled."""
    return _densenet("37_dilated")


@register_model
def binary_densenet45() -> ModelConfig:
    """Binary DenseNet45: 6/12/14/8 dense layers, reductions 2.7/3.3/4."""
    return _densenet("45")


WEIGHTS = (
    larq_zoo_weights("binary_densenet28", "binary_densenet-v0.1.0", "binary_densenet_28_weights.h5",
                     "21fe3ca03eed244df9c41a2219876fcf03e73800932ec96a3e2a76af4747ac53", 60.91, 82.83,
                     "literature.BinaryDenseNet28", LARQ_ZOO_NOTES),
    larq_zoo_weights("binary_densenet37", "binary_densenet-v0.1.0", "binary_densenet_37_weights.h5",
                     "8056a5d52c3ed86a934893987d09a06f59a5166aa9bddcaedb050f111d0a7d76", 62.89, 84.19,
                     "literature.BinaryDenseNet37", LARQ_ZOO_NOTES),
    larq_zoo_weights("binary_densenet37_dilated", "binary_densenet-v0.1.0", "binary_densenet_37_dilated_weights.h5",
                     "15c1bcd79b8dc22971382fbf79acf364a3f51049d0e584a11533e6fdbb7363d3", 64.34, 85.15,
                     "literature.BinaryDenseNet37Dilated", LARQ_ZOO_NOTES),
    larq_zoo_weights("binary_densenet45", "binary_densenet-v0.1.0", "binary_densenet_45_weights.h5",
                     "d00a0d26fbd2dba1bfba8c0306c770f3aeea5c370e99f963bb239bd916f72c37", 64.59, 85.21,
                     "literature.BinaryDenseNet45", LARQ_ZOO_NOTES),
)

# larq-zoo's builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras class and
# build order (our modules are registered in larq-zoo's build order), each module's class told by its type.
LARQ_ZOO = dict(auto_named=(), twins={"binary_densenet28": "literature.BinaryDenseNet28",
                                  "binary_densenet37": "literature.BinaryDenseNet37",
                                  "binary_densenet37_dilated": "literature.BinaryDenseNet37Dilated",
                                  "binary_densenet45": "literature.BinaryDenseNet45"})
