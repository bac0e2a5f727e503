"""The variant table: every registered architecture as a few constants.

Framework-free: ``zoo.torch.<family>`` builds from these configs, and the Keras model
is translated from that module (``zoo.keras.translate``), with the same parameter names.
"""

from __future__ import annotations

from .registry import ModelConfig, register_model

MOBILENET_PAPER = "Howard et al., MobileNets, arXiv:1704.04861 (2017)"
MELIUSNET_PAPER = "Bethge et al., MeliusNet: Can Binary Neural Networks Achieve MobileNet-level Accuracy?, arXiv:2001.05936 (2020)"
REAL2BIN_PAPER = "Martinez et al., Training Binary Neural Networks with Real-to-Binary Convolutions, ICLR 2020"

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


# --- MeliusNet (Bethge et al., arXiv:2001.05936) -------------------------------------
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


# --- Real-to-Binary ResNet-18 (Martinez et al., ICLR 2020) -------------------------------------
# larq-zoo's layout (larq_zoo.literature.real_to_bin_nets), which issue 4 imports ImageNet weights
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
        source="Martinez et al. 2020, ImageNet results of the strong baseline; params: larq-zoo 2.4 StrongBaselineNetBNNFactory"))


# --- 1-bit license-plate detector (Im & Lee, 2018) --------------------------------------------
# A YOLO-style single-scale detector: a stack of 3x3 conv -> BN -> (activation) -> (2x2 max-pool)
# layers, then a 1x1 float head predicting, per grid cell and anchor, (objectness, tx, ty, tw, th).
# The head's (N, G, G, A*5) map is flattened in NHWC order to (N, G*G*A*5), so ``num_classes`` is
# that length (recomputed by ``replace`` when input_size, widths, pools or anchors change);
# ``zoo.detection.decode`` turns it into boxes.
PLATES_PAPER = ("Im & Lee, 1-bit YOLO-style Korean license-plate detector, 2018: binarized layers "
                "except the first, second and last, no nonlinearity after binarized layers")
# Body widths; each is a multiple of 32 so that every binary conv reads a multiple of 32 channels
# and writes a multiple of 8 (LCE's fast bit-packed path).
PLATES_WIDTHS = (32, 32, 64, 128, 256, 256)
# A 2x2 max-pool after the first four layers: stride 16, a 10x10 grid at 160x160.
PLATES_POOLS = (True, True, True, True, False, False)
# Anchor (w, h) as fractions of the image side: a small and a large single-row plate
# (aspect ~4.7 at 160x160) and an old two-row plate (aspect ~2).
PLATES_ANCHORS = ((0.16, 0.05), (0.36, 0.11), (0.2, 0.1))
PLATES_INPUT = 160
# The light variant: the first conv strided (2) in place of the second layer's pool, so the 32-bit second
# layer runs at 40x40 instead of 80x80 (at 160x160); every later layer, and every weight shape, is unchanged.
PLATES_LIGHT_POOLS = (True, False, True, True, False, False)
PLATES_LIGHT_STRIDES = (2, 1, 1, 1, 1, 1)
# 32x32 (the converter tests feed 32x32 inputs) -> 2x2 grid; every layer keeps its kind.
_PLATES_TINY = dict(widths=(32, 32, 32, 32, 32, 32), input_size=32)


def detector_grid(input_size: int, pools: tuple, strides: tuple = ()) -> int:
    """Side of the output grid: the input side divided (ceil, ``same`` padding) by each conv's
    stride (``strides``: one per layer, empty for all 1) and halved (floor) by every 2x2 max-pool."""
    g = int(input_size)
    for pool, stride in zip(pools, tuple(strides) or (1,) * len(pools)):
        g = -(-g // int(stride))
        g = g // 2 if pool else g
    return g


def detector_outputs(input_size: int, arch: dict) -> int:
    """Length of the flattened detector output: grid * grid * anchors * 5."""
    return detector_grid(input_size, tuple(arch["pools"]), tuple(arch.get("strides") or ())) ** 2 \
        * len(arch["anchors"]) * 5


def check_detector_config(cfg: ModelConfig) -> None:
    """What both detector builders require of a config.

    Raises:
        ValueError: ``cfg.num_classes`` is not the head's flattened output length, or the
            input is too small for the max-pools.
    """
    expected = detector_outputs(cfg.input_size, cfg.arch)
    if cfg.num_classes != expected:
        raise ValueError(f"{cfg.name or 'the detector'} outputs {expected} numbers per image at input_size "
                         f"{cfg.input_size} (grid x grid x anchors x 5); leave num_classes unset or pass {expected}")
    strides = tuple(cfg.arch.get("strides") or ())
    if strides and (len(strides) != len(cfg.arch["pools"]) or any(int(s) < 1 for s in strides)):
        raise ValueError(f"{cfg.name or 'the detector'}: strides {strides} must give one stride >= 1 per layer "
                         f"({len(cfg.arch['pools'])} layers)")
    if detector_grid(cfg.input_size, tuple(cfg.arch["pools"]), strides) < 1:
        raise ValueError(f"input_size {cfg.input_size} is too small for {sum(cfg.arch['pools'])} max-pools"
                         + (f" and strides {strides}" if strides else ""))


class DetectorConfig(ModelConfig):
    """A ``ModelConfig`` whose ``num_classes`` follows the head (the flattened output length)."""

    def replace(self, **overrides) -> "ModelConfig":
        import dataclasses

        explicit = overrides.get("num_classes") is not None
        cfg = super().replace(**overrides)
        if not explicit:
            cfg = dataclasses.replace(cfg, num_classes=detector_outputs(cfg.input_size, cfg.arch))
        return cfg


def _plates(binary_from: int, binary_activation: bool, accuracy: float | None = None,
            pools: tuple = PLATES_POOLS, strides: tuple = ()) -> ModelConfig:
    arch = dict(widths=PLATES_WIDTHS, pools=pools, anchors=PLATES_ANCHORS, binary_from=binary_from,
                binary_activation=binary_activation, pad_value=1.0, negative_slope=0.1,
                **(dict(strides=strides) if strides else {}))
    return DetectorConfig("", "detector", arch, num_classes=detector_outputs(PLATES_INPUT, arch),
                          input_size=PLATES_INPUT, paper=PLATES_PAPER, tiny=_PLATES_TINY,
                          published={} if accuracy is None else dict(
                              plate_accuracy=accuracy, source="Im & Lee 2018 (plates found at IoU >= 0.5, their data)"))


@register_model
def plates_detector_float() -> ModelConfig:
    """The float reference: every layer 32-bit, leaky-ReLU after each."""
    return _plates(binary_from=len(PLATES_WIDTHS), binary_activation=True)


@register_model
def plates_detector_1bit_baseline() -> ModelConfig:
    """The common recipe (74% in Im & Lee 2018): only the first and last layers 32-bit, activations kept."""
    return _plates(binary_from=1, binary_activation=True, accuracy=74.0)


@register_model
def plates_detector_1bit() -> ModelConfig:
    """Im & Lee's improved recipe (96.1%): first, second and last layers 32-bit, no activation after binary convs."""
    return _plates(binary_from=2, binary_activation=False, accuracy=96.1)


@register_model
def plates_detector_1bit_light() -> ModelConfig:
    """Im & Lee's improved recipe at a tenth of the float model's 32-bit MACs.

    Same layers and weight shapes as ``plates_detector_1bit`` (so it starts from the float
    detector's weights), but the first conv has stride 2 and the second layer no pool: the
    32-bit second layer runs on a map a quarter the size. 32-bit MACs at 160x160: 20.6 M
    (float 229 M, improved 81 M), binary MACs unchanged (``bnnzoo list --figures``).
    """
    return _plates(binary_from=2, binary_activation=False, pools=PLATES_LIGHT_POOLS, strides=PLATES_LIGHT_STRIDES)


# --- larq-zoo's other ImageNet models (issue 14) ----------------------------------------------
# Architecture facts from larq-zoo 2.4's source (larq_zoo/sota/quicknet.py, larq_zoo/literature/*.py).
# As for MeliusNet and Real-to-Bin, binary convs pad with +1 by default (exact in LCE at every map
# size); larq-zoo trained all but QuickNet with zero padding, which its weight tags set (pad_value=0.0).
# Each published row is larq-zoo's own docs table of that model (its docstring): ImageNet top-1/top-5
# of larq-zoo's released weights, its count_params() and its memory figure (binary weights at 1 bit,
# everything else at 32 bits, BN statistics included).
_LARQ_ZOO_DOCS = "larq-zoo 2.4 documentation of {} (ImageNet metrics table: top-1, top-5, parameters, memory)"


def _larq_published(doc: str, top1: float, top5: float, params: int, memory_mb: float) -> dict:
    return dict(top1=top1, top5=top5, params=params, larq_zoo_memory_mb=memory_mb, source=_LARQ_ZOO_DOCS.format(doc))


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
                     _larq_published("sota.QuickNetSmall", 59.4, 81.8, 12_655_688, 4.00))


@register_model
def quicknet() -> ModelConfig:
    """QuickNet: 4 blocks per section, 64/128/256/512 channels."""
    return _quicknet((4, 4, 4, 4), (64, 128, 256, 512), _larq_published("sota.QuickNet", 63.3, 84.6, 13_234_088, 4.17))


@register_model
def quicknet_large() -> ModelConfig:
    """QuickNetLarge: 6/8/12/6 blocks, 64/128/256/512 channels."""
    return _quicknet((6, 8, 12, 6), (64, 128, 256, 512),
                     _larq_published("sota.QuickNetLarge", 66.9, 87.0, 23_342_248, 5.40))


BIREALNET_PAPER = ("Liu et al., Bi-Real Net: Enhancing the Performance of 1-bit CNNs With Improved Representational "
                   "Capability and Advanced Training Algorithm, ECCV 2018 (arXiv:1808.00278)")


@register_model
def birealnet18() -> ModelConfig:
    """Bi-Real Net 18: approx_sign activations, magnitude-aware sign weights, a shortcut per binary conv."""
    return ModelConfig("", "birealnet", dict(filters=64, pad_value=1.0), paper=BIREALNET_PAPER,
                       tiny=dict(filters=16, input_size=32, num_classes=10),
                       published=_larq_published("literature.BiRealNet", 57.47, 79.84, 11_699_112, 4.03))


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
                       published=_larq_published("literature.BinaryResNetE18", 58.32, 80.79, 11_699_368, 4.03))


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
                       published=_larq_published(doc, *BINARY_DENSENET_PUBLISHED[variant]))


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


# The AlexNet-like three need >= 64 pixels for their three 3x3 stride-2 max-pools.
_ALEXNET_TINY = dict(features=(16, 32, 32, 32, 32), hidden=64, input_size=64, num_classes=10)


@register_model
def xnornet() -> ModelConfig:
    """XNOR-Net (AlexNet): ste_sign activations, per-channel scaled sign weights."""
    return ModelConfig("", "xnornet", dict(features=(96, 256, 384, 384, 256), hidden=4096, pad_value=1.0),
                       paper="Rastegari et al., XNOR-Net: ImageNet Classification Using Binary Convolutional "
                             "Neural Networks, ECCV 2016 (arXiv:1603.05279)",
                       tiny=_ALEXNET_TINY,
                       published=_larq_published("literature.XNORNet", 44.96, 69.18, 62_396_768, 22.81))


@register_model
def dorefanet() -> ModelConfig:
    """DoReFa-Net (AlexNet): 2-bit activations, sign weights with one scale per layer."""
    return ModelConfig("", "dorefanet", dict(features=(96, 256, 384, 384, 256), hidden=4096),
                       paper="Zhou et al., DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low "
                             "Bitwidth Gradients, arXiv:1606.06160 (2016)",
                       tiny=_ALEXNET_TINY,
                       published=_larq_published("literature.DoReFaNet", 53.39, 76.50, 62_403_912, 22.84))


@register_model
def binary_alexnet() -> ModelConfig:
    """Binary AlexNet (BNN): ±1 weights everywhere, ±1 activations after the first layer."""
    return ModelConfig("", "binary_alexnet", dict(features=(64, 192, 384, 384, 256), hidden=4096, pad_value=1.0),
                       paper="Hubara et al., Binarized Neural Networks, NeurIPS 2016",
                       tiny=_ALEXNET_TINY,
                       published=_larq_published("literature.BinaryAlexNet", 36.30, 61.53, 61_859_192, 7.49))


# --- ReActNet (Liu et al., ECCV 2020) -------------------------------------------------------------
# Layer facts from the authors' code (github.com/liuzechun/ReActNet): ReActNet-A is MobileNet-v1's block
# table (MOBILENET_BLOCKS) made binary, ReActNet-18 is Bi-Real Net 18 with RSign and RPReLU. Binary convs pad
# with +1 by default (LCE's fast path); the authors' weights were trained with zero padding, which their
# tags set (pad_value=0.0). The recipe's float teacher and first step are these models with
# model_overrides (input_quantizer / weight_quantizer None).
REACTNET_PAPER = ("Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized Activation "
                  "Functions, ECCV 2020 (arXiv:2003.03488)")
REACTNET_README = ("github.com/liuzechun/ReActNet README, Models table: ReActNet (Bi-Real based), top-1 of the "
                   "released checkpoint and 1.63 x 10^8 operations")
REACTNET_QUANT = dict(input_quantizer="approx_sign", weight_quantizer="magnitude_aware_sign")


@register_model
def reactnet_a() -> ModelConfig:
    """ReActNet-A: MobileNet-v1's 13 blocks with binary 3x3 and 1x1 convolutions, RSign and RPReLU."""
    # zoo.measure counts conv/dense multiply-adds: FLOPs are the 3x3 stem and the classifier.
    return ModelConfig("", "reactnet", dict(backbone="mobilenet_v1", alpha=1.0, depth=13, pad_value=1.0,
                                            learn_shifts=True, **REACTNET_QUANT),
                       paper=REACTNET_PAPER,
                       # The first 8 blocks at an eighth of the width on 16x16 inputs: strided binary convs on
                       # 8x8, 4x4 and 2x2 maps (explicit padding), four duplicated 1x1 convs, two blocks on a
                       # 1x1 map (LCE's small-map case), 20 binary convs.
                       tiny=dict(alpha=0.125, depth=8, input_size=16, num_classes=10),
                       published=dict(top1=69.4, bops=4.82e9, flops=0.12e8, ops=0.87e8,
                                      source="Liu et al. 2020, ImageNet comparison with the state of the art "
                                             "(top-1, BOPs, FLOPs, OPs)"))


@register_model
def reactnet_18() -> ModelConfig:
    """ReActNet-18: Bi-Real Net 18 (16 binary 3x3 convolutions, each with a shortcut) with RSign and RPReLU."""
    return ModelConfig("", "reactnet", dict(backbone="resnet18", filters=64, blocks_per_stage=(4, 4, 4, 4),
                                            pad_value=1.0, **REACTNET_QUANT),
                       # One block a stage, two in the last: strided binary convs on 8x8, 4x4 and 2x2 maps, a
                       # stride-1 one on a 1x1 map.
                       paper=REACTNET_PAPER, tiny=dict(filters=16, blocks_per_stage=(1, 1, 1, 2), input_size=32,
                                                       num_classes=10),
                       # The authors' README gives OPs (FLOPs + BOPs/64) in a column headed FLOPs.
                       published=dict(top1=65.9, ops=1.63e8, source=REACTNET_README))
