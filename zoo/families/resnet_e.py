"""Binary ResNet-E (Bethge et al., Back to Simplicity, arXiv:1906.08637): variants, larq-zoo weights, import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import LARQ_ZOO_NOTES, larq_published, larq_zoo_weights

BUILDER = "zoo.torch.resnet_e:build"

BACK_TO_SIMPLICITY_PAPER = ("Bethge et al., Back to Simplicity: How to Train Accurate BNNs from Scratch?, "
                            "arXiv:1906.08637 (2019)")
RESNET_E_CLIP = 1.25


@register_model
def binary_resnet_e18() -> ModelConfig:
    """Binary ResNet-E 18: ste_sign (clip 1.25), a shortcut per binary conv."""
    return ModelConfig("", "resnet_e", dict(section_blocks=(2, 2, 2, 2), section_filters=(64, 128, 256, 512),
                                            initial_filters=64, pad_value=1.0),
                       paper=BACK_TO_SIMPLICITY_PAPER,
                       tiny=dict(section_filters=(16, 32, 48, 64), initial_filters=16, input_size=32, num_classes=10),
                       published=larq_published("literature.BinaryResNetE18", 58.32, 80.79, 11_699_368, 4.03))


WEIGHTS = (
    larq_zoo_weights("binary_resnet_e18", "resnet_e-v0.1.0", "resnet_e_18_weights.h5",
                     "bde4a64d42c164a7b10a28debbe1ad5b287c499bc0247ecb00449e6e89f3bf5b", 58.32, 80.79,
                     "literature.BinaryResNetE18", LARQ_ZOO_NOTES),
)

# larq-zoo's builder leaves Keras' automatic layer names: zoo.larq_import matches layers by Keras class and
# build order (our modules are registered in larq-zoo's build order), each module's class told by its type.
LARQ_ZOO = dict(auto_named=(), twins={"binary_resnet_e18": "literature.BinaryResNetE18"})
