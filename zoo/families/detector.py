"""The 1-bit license-plate detector (Im & Lee, 2018): variants, their geometry (grid, outputs), shipped weights."""

from __future__ import annotations

import dataclasses

from ..registry import ModelConfig, register_model
from ..weights import DETECTOR_MEAN, DETECTOR_STD, Metric, Weights

BUILDER = "zoo.torch.detector:build"

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
# The input side the registered detectors are configured (and their figures quoted) at.
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
                          input_size=PLATES_INPUT, paper=PLATES_PAPER, tiny=_PLATES_TINY, task="detect",
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


# --- trained on the synthetic plates, shipped in zoo/pretrained/ -----------------------------------
_ARCH = {name: fn().arch for name, fn in (("plates_detector_float", plates_detector_float),
                                          ("plates_detector_1bit_baseline", plates_detector_1bit_baseline),
                                          ("plates_detector_1bit", plates_detector_1bit),
                                          ("plates_detector_1bit_light", plates_detector_1bit_light))}
# The float, baseline and improved stages of one `bnnzoo train plates_compare` run (seed 0), and its light
# stage trained later from the shipped float weights (seed 0), on `bnnzoo data plates --seed 0`
# (20,000 training images), packed with `bnnzoo pack`. AP@0.5 and plate accuracy are measured in PyTorch
# by `python -m eval.plates_report` on the validation split that PLATES_EVAL regenerates
# (tests/test_bundled_weights.py re-measures them).
PLATES_EVAL = {"seed": 0, "size": (160, 160), "split": "val", "images": 2000}
# The input side the shipped weights (and recipes/library's plates recipes) are trained at: smaller than
# PLATES_INPUT, the architecture's default, to train faster.
PLATES_TRAINED_INPUT = 128
_PLATES_DATA = "plates-synthetic (bnnzoo data plates --seed 0, val split, 2,000 images)"
_PLATES_SOURCE = ("measured: bnnzoo train plates_compare data=DATA seed=0, evaluated in PyTorch by "
                  "python -m eval.plates_report on the val split (reports/plates/)")


def _plates_weights(arch: str, sha256: str, ap50: float, plate_accuracy: float, notes: str) -> Weights:
    return Weights(arch=arch, tag="plates", hub_repo="", revision="", filename=f"{arch}.plates.safetensors",
                   sha256=sha256, num_classes=detector_outputs(PLATES_TRAINED_INPUT, _ARCH[arch]),
                   input_size=PLATES_TRAINED_INPUT, mean=DETECTOR_MEAN, std=DETECTOR_STD, labels=("plate",),
                   resize="squash", dataset=_PLATES_DATA,
                   metrics=(Metric("ap50", ap50, _PLATES_DATA, _PLATES_SOURCE),
                            Metric("plate_accuracy", plate_accuracy, _PLATES_DATA, _PLATES_SOURCE)),
                   default=True, crop_pct=1.0,
                   notes=notes + " Trained on synthetic images of Korean plates (`bnnzoo data plates`), not on "
                   "photographs: expect lower accuracy on real cameras until fine-tuned on them.")


WEIGHTS = (
    _plates_weights("plates_detector_float", "16d7b8c636356ac6cabc79c69d0c48d6e9d8a87ee625b493114dcd8b0145cfe7",
                    95.98, 92.15, "The float reference: stage `float` of `plates_compare`."),
    _plates_weights("plates_detector_1bit_baseline", "a720eb60474c8109735da2c31c78ad7c9aae1ef975b12d26e5aa5f69eaa59469",
                    89.55, 83.16, "The common 1-bit recipe (first and last layers 32-bit): stage `baseline` of "
                    "`plates_compare`, initialised from the float stage."),
    _plates_weights("plates_detector_1bit", "2f032d9afd26d0773297b8a9a9b8afaa924011fd6f9739a057aeece4373ac4e9",
                    90.63, 86.28, "Im & Lee's improved 1-bit detector (first, second and last layers 32-bit, no "
                    "nonlinearity after binarized layers): stage `improved` of `plates_compare`, initialised "
                    "from the float stage."),
    _plates_weights("plates_detector_1bit_light", "a690d92a7faf4aaeac519dc9daa20c16faf0b446a5f5bea1d7ae4348a0796a15",
                    88.62, 83.46, "Im & Lee's improved detector with the first conv strided 2 (a tenth of the float "
                    "detector's 32-bit MACs): stage `light` of `plates_compare` (seed 0), initialised from "
                    "`plates_detector_float.plates`."),
)
