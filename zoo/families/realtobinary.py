"""Real-to-Binary ResNet-18 and its strong baseline (Martinez et al., ICLR 2020): variants, weights, import rules."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ._common import LARQ_ZOO_NOTES, larq_zoo_weights, mnist_weights

BUILDER = "zoo.torch.realtobinary:build"
REAL2BIN_PAPER = "Martinez et al., Training Binary Neural Networks with Real-to-Binary Convolutions, ICLR 2020"

# larq-zoo's layout (larq_zoo.literature.real_to_bin_nets), which zoo.larq_import imports ImageNet weights
# from: a PReLU stem (larq-zoo gives every Real-to-Bin variant the strong baseline's PReLU stem),
# the scaling gate fed by the BN'd conv input. Quantized convs pad with +1 (LCE's fast path); larq-zoo's
# weights need pad_value=0.0, which converts to LCE too: zoo.keras.layers.binary_conv corrects LCE 0.16's
# zero padding on maps smaller than the kernel (tests/test_layerwise.py measures both).
REAL2BIN_ARCH = dict(width=64, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                     scaling="gate", scaling_r=8, stem_activation="prelu", pad_value=1.0)
# Tiny keeps all 8 blocks (so all 16 quantized convs) at a quarter of the width.
_REAL2BIN_TINY = dict(width=16, input_size=32, num_classes=10)
_REAL2BIN_SOURCE = ("Martinez et al. 2020, ImageNet comparison with the state of the art (top-1/top-5, BOPs, FLOPs); "
                    "larq-zoo 2.4 docs of literature.RealToBinaryNet (params, size_mb, larq_zoo_top1/top5)")


def _real2bin(published: dict | None = None, **arch) -> ModelConfig:
    """One Real-to-Bin variant: ``input_quantizer``/``weight_quantizer``/``scaling`` select it."""
    return ModelConfig("", "realtobinary", {**REAL2BIN_ARCH, **arch}, paper=REAL2BIN_PAPER, tiny=_REAL2BIN_TINY,
                       published=published or {})


@register_model
def realtobinary_resnet18() -> ModelConfig:
    """Real-to-Bin ResNet-18: binary weights and activations, data-driven channel re-scaling (final stage)."""
    # zoo.measure gives 1.676e9 BOPs (paper 1.68e9) but 1.38e8 FLOPs: the paper's 1.56e8
    # counts more than conv/dense multiply-adds (stem, shortcuts, gates and classifier here).
    return _real2bin(published=dict(
        top1=65.4, top5=86.2, bops=1.68e9, flops=1.56e8,
        params=11_995_624, size_mb=5.13, larq_zoo_top1=65.01, larq_zoo_top5=85.72,
        source=_REAL2BIN_SOURCE))


@register_model
def realtobinary_resnet18_teacher() -> ModelConfig:
    """The float teacher of the same layout (real weights and activations), parameter-for-parameter
    the student, so each stage can start from the previous one's weights."""
    return _real2bin(input_quantizer=None, weight_quantizer=None)


@register_model
def realtobinary_resnet18_stage1() -> ModelConfig:
    """Progressive stage 1: real weights, tanh activations (larq-zoo's ``r2b_fp``)."""
    return _real2bin(input_quantizer="tanh", weight_quantizer=None)


@register_model
def realtobinary_resnet18_stage2() -> ModelConfig:
    """Progressive stage 2: binary activations, real weights (larq-zoo's ``r2b_ban``)."""
    return _real2bin(input_quantizer="ste_sign", weight_quantizer=None)


@register_model
def strongbaseline_resnet18() -> ModelConfig:
    """The paper's strong baseline: fully binary, learned XNOR-Net++ scale factors instead of the gate."""
    return _real2bin(scaling="learned", published=dict(
        top1=60.9, top5=83.0, params=11_705_904,
        source="Martinez et al. 2020, ImageNet results of the strong baseline; params: larq-zoo 2.4 "
               "StrongBaselineNetBNNFactory"))


WEIGHTS = (
    larq_zoo_weights(
        "realtobinary_resnet18", "r2b-v0.1.0", "r2b_weights.h5",
        "e8fd16ca1ab9810ac3835f24f5c62758a57bc32a615f73aaa50d382d2b9617e1", 65.01, 85.72,
        "literature.RealToBinaryNet",
        LARQ_ZOO_NOTES + " larq-zoo's BatchNorm epsilon is Keras' 1e-3 (ours 1e-5): the importer adds the "
        "difference to the moving variances, which is exact at inference.", default=False),
    mnist_weights("realtobinary_resnet18", "real2bin_mnist",
                  "85ee82a46483625c1301eedcfc35ec0a4046f51fbbef5f38dd67243d6f8798d7", 91.3, width=16,
                  notes="Stage 3 of the `real2bin_mnist` recipe on 4,000 MNIST digits (a demonstration at a small "
                  "size, not an ImageNet model). The procedures compared on the same data, seed 0, measured "
                  "top-1 of the fully binary network (`python -m eval.mnist_evidence`, reports/mnist_evidence.md): "
                  "plain binary ResNet-18 90.1%, strong baseline 90.5%, Real-to-Bin without attention matching "
                  "90.7%, Real-to-Bin 91.3%: the paper's order, with gaps within one seed's noise (about 0.9 "
                  "points on 1,000 digits)."),
    mnist_weights("strongbaseline_resnet18", "strongbaseline_mnist",
                  "16602e202fd65a1b60dab691d69ca247bc1b1eff0d2e17602fb77325112c4c70", 90.5, width=16),
)

# larq-zoo names every layer of its Real-to-Bin nets: (our module path pattern, larq-zoo layer name template).
# ``{p}`` is the model-name prefix of the file's layer names (found by ``prefix``, ``r2b_bnn`` when not
# unique), ``{k}`` the first group plus ``block_offset`` (larq-zoo's block 1 is the stem, ours 0 its block 2).
_LARQ_RULES = (
    (r"stem\.conv", "{p}_block_1_conv2d"),
    (r"stem\.bn", "{p}_block_1_batch_norm"),
    (r"stem\.act", "{p}_block_1_prelu"),
    (r"blocks\.(\d+)\.([ab])\.shortcut\.conv", "{p}_block_{k}{1}_shortcut_conv2d"),
    (r"blocks\.(\d+)\.([ab])\.shortcut\.bn", "{p}_block_{k}{1}_shortcut_batch_norm"),
    (r"blocks\.(\d+)\.([ab])\.bn", "{p}_block_{k}{1}_batch_norm"),
    (r"blocks\.(\d+)\.([ab])\.conv", "{p}_block_{k}{1}_conv2d"),
    (r"blocks\.(\d+)\.([ab])\.scale\.reduce", "{p}_block_{k}{1}_scaling_dense_reduce"),
    (r"blocks\.(\d+)\.([ab])\.scale\.expand", "{p}_block_{k}{1}_scaling_dense_expand"),
    (r"blocks\.(\d+)\.([ab])\.scale", "{p}_block_{k}{1}_rescale"),  # the strong baseline's learned scales
    (r"blocks\.(\d+)\.([ab])\.act", "{p}_block_{k}{1}_prelu"),
    (r"classifier", "{p}_block_10_logits"),
)

# What zoo.larq_import reads: layers matched by name; larq-zoo leaves Keras' BatchNorm epsilon 1e-3 (ours 1e-5).
LARQ_ZOO = dict(rules=_LARQ_RULES, bn_epsilon=1e-3, block_offset=2, prefix=(r"(.+)_block_1_conv2d", "r2b_bnn"),
                twins={"realtobinary_resnet18": "literature.RealToBinaryNet"})
