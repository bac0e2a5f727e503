"""MeliusNet (Bethge et al., arXiv:2001.05936, 2020): variants, weights and larq-zoo import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import LARQ_ZOO_NOTES, larq_zoo_weights, mnist_weights

BUILDER = "zoo.torch.meliusnet:build"
MELIUSNET_PAPER = ("Bethge et al., MeliusNet: Can Binary Neural Networks Achieve MobileNet-level Accuracy?, "
                   "arXiv:2001.05936 (2020)")

# Blocks per stage; each block is one DenseBlock followed by one ImprovementBlock.
MELIUSNET_BLOCKS = {
    "22": (4, 5, 4, 4), "29": (4, 6, 8, 6), "42": (5, 8, 14, 10), "59": (6, 12, 24, 12),
    "a": (4, 5, 5, 6), "b": (4, 6, 8, 6), "c": (3, 5, 10, 6),
}
# Output width of the three 32-bit transitions. BMXNet-v2 states them as compression
# ratios (e.g. 160/320) of the width entering the transition, rounded to a multiple of
# 32; at the published depths these are the exact widths below.
MELIUSNET_TRANSITIONS = {
    "22": (160, 224, 256), "29": (128, 192, 256), "42": (160, 256, 416), "59": (192, 320, 544),
    "a": (160, 256, 288), "b": (160, 224, 320), "c": (128, 192, 288),
}
# MeliusNet A/B/C trade the dense 1x1 transition for a grouped one (BMXNet-v2's
# "cs,fp_conv:g"), preceded by a channel shuffle so each group sees every stage's features.
MELIUSNET_TRANSITION_GROUPS = {"a": 4, "b": 2, "c": 4}
# BMXNet-v2's "cs" token carries no group count, so its ChannelShuffle uses its default 16.
MELIUSNET_SHUFFLE_GROUPS = 16
# The paper's straight-through estimator passes gradients where |x| <= 1.3 (not larq's 1.0).
MELIUSNET_CLIP = 1.3

# Published figures at 224x224 on ImageNet. size_mb is the paper's model size; it counts
# MB as 2**20 bytes and leaves BatchNorm statistics out (that convention reproduces all
# seven to their rounding; Figures.size_bytes, which counts the statistics, is 2-4.5%
# above). top1/top5 and ops (= FLOPs + BOPs/64) come from the authors' grouped-stem
# training runs listed in the BMXNet-v2 wiki; its sizes agree with the paper's.
_MELIUSNET_SOURCE = ("size_mb: arXiv:2001.05936 (MeliusNet results tables); top1, top5, ops: "
                     "hpi-xnor/BMXNet-v2-wiki MeliusNet results table, grouped_stem runs")
MELIUSNET_PUBLISHED = {
    "22": dict(size_mb=3.9, top1=63.6, top5=84.7, ops=2.08e8),
    "29": dict(size_mb=5.1, top1=65.8, top5=86.2, ops=2.14e8),
    "42": dict(size_mb=10.1, top1=69.2, top5=88.3, ops=3.25e8),
    "59": dict(size_mb=17.4, top1=70.7, top5=89.2, ops=5.32e8),
    "a": dict(size_mb=4.0, top1=63.4, top5=84.2, ops=1.63e8),
    "b": dict(size_mb=5.0, top1=65.7, top5=85.9, ops=1.96e8),
    "c": dict(size_mb=4.5, top1=64.1, top5=85.0, ops=1.50e8),
}

# One block per stage and narrow transitions: builds in milliseconds and still holds
# 8 binary convolutions, grouped transitions and channel shuffles.
_MELIUSNET_TINY = dict(num_blocks=(1, 1, 1, 1), transition_features=(64, 64, 64), input_size=32, num_classes=10)


def _meliusnet(variant: str) -> ModelConfig:
    arch = dict(
        num_blocks=MELIUSNET_BLOCKS[variant],
        transition_features=MELIUSNET_TRANSITIONS[variant],
        transition_groups=MELIUSNET_TRANSITION_GROUPS.get(variant, 1),
        shuffle_groups=MELIUSNET_SHUFFLE_GROUPS if variant in MELIUSNET_TRANSITION_GROUPS else 1,
        stem_features=64,
        growth_rate=64,
        pad_value=1.0,
    )
    return ModelConfig("", "meliusnet", arch, paper=MELIUSNET_PAPER, tiny=_MELIUSNET_TINY,
                       published={**MELIUSNET_PUBLISHED[variant], "source": _MELIUSNET_SOURCE})


@register_model
def meliusnet22() -> ModelConfig:
    """MeliusNet22: blocks (4, 5, 4, 4), transitions to 160/224/256 channels."""
    return _meliusnet("22")


@register_model
def meliusnet29() -> ModelConfig:
    """MeliusNet29: blocks (4, 6, 8, 6), transitions to 128/192/256 channels."""
    return _meliusnet("29")


@register_model
def meliusnet42() -> ModelConfig:
    """MeliusNet42: blocks (5, 8, 14, 10), transitions to 160/256/416 channels."""
    return _meliusnet("42")


@register_model
def meliusnet59() -> ModelConfig:
    """MeliusNet59: blocks (6, 12, 24, 12), transitions to 192/320/544 channels."""
    return _meliusnet("59")


@register_model
def meliusneta() -> ModelConfig:
    """MeliusNetA: blocks (4, 5, 5, 6), shuffled 4-group transitions to 160/256/288 channels."""
    return _meliusnet("a")


@register_model
def meliusnetb() -> ModelConfig:
    """MeliusNetB: blocks (4, 6, 8, 6), shuffled 2-group transitions to 160/224/320 channels."""
    return _meliusnet("b")


@register_model
def meliusnetc() -> ModelConfig:
    """MeliusNetC: blocks (3, 5, 10, 6), shuffled 4-group transitions to 128/192/288 channels."""
    return _meliusnet("c")


WEIGHTS = (
    larq_zoo_weights(
        "meliusnet22", "meliusnet22-v0.1.0", "meliusnet22_weights.h5",
        "c1ba85e8389ae326009665ec13331e49fc3df4d0f925fa8553e224f7362c18ed", 62.4, 83.9, "literature.MeliusNet22",
        LARQ_ZOO_NOTES + " larq-zoo's MeliusNet trains with a BatchNorm epsilon of 1e-5, as ours: no "
        "statistics are changed; its grouped stem convolutions (one Keras Conv2D per group) are concatenated.",
        default=False),
    mnist_weights("meliusnet22", "meliusnet22_mnist",
                  "1bd94ca894e57f457bbd47445e7ba1c41062017896f7f299464014c4a5fde879",
                  97.3, growth_rate=16, stem_features=32, transition_features=(64, 96, 128)),
)

# larq-zoo names every layer of its MeliusNet: (our module path pattern, larq-zoo layer name template),
# the template formatted with the pattern's groups.
_LARQ_RULES = (
    (r"stem\.conv0", "stem_s0_conv"),
    (r"stem\.conv(\d)", "stem_s{0}_groupconv"),  # grouped: one Conv2D per group, "_conv{g}"
    (r"stem\.bn(\d)", "stem_s{0}_bn"),
    (r"stages\.(\d+)\.(dense|improve)\.(\d+)\.bn", "section_{0}_block_{2}_{1}_bn"),
    (r"stages\.(\d+)\.(dense|improve)\.(\d+)\.conv", "section_{0}_block_{2}_{1}_binconv"),
    (r"stages\.(\d+)\.transition\.bn", "section_{0}_transition_bn"),
    (r"stages\.(\d+)\.transition\.conv", "section_{0}_transition_pw"),
    (r"head_bn", "head_bn"),
    (r"classifier", "head_dense"),
)

# What zoo.larq_import reads: layers matched by name, larq-zoo's BatchNorm epsilon (MeliusNet sets 1e-5, as
# ours), and the registered models with a larq-zoo twin (larq_zoo.<module>.<builder>).
LARQ_ZOO = dict(rules=_LARQ_RULES, bn_epsilon=1e-5, twins={"meliusnet22": "literature.MeliusNet22"})
