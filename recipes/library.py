"""The built-in recipes: the papers' training procedures, and the same on MNIST.

Real-to-Bin numbers are those larq-zoo 2.4 records in
``larq_zoo/training/multi_stage_experiments.py`` (``TrainR2B``: ``TrainFPResnet18``,
``TrainR2BBFP``, ``TrainR2BBAN``, ``TrainR2BBNNAlternative``; strong baseline:
``TrainR2BStrongBaseline``) and in ``knowledge_distillation/`` (softmax temperature 1,
teacher frozen), which follow Martinez et al. (ICLR 2020), Section 5 / Appendix:
Adam, lr 1e-3, weight decay 1e-5 (0 for the fully binary stage), 75 epochs, batch 256,
5 warm-up epochs, decay at epochs 40, 60 and 70.

Where larq-zoo and the paper differ, the recipe says so in the stage's ``note``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from zoo.families.detector import PLATES_PAPER, PLATES_TRAINED_INPUT
from zoo.families.meliusnet import MELIUSNET_PAPER as MELIUS_PAPER
from zoo.families.reactnet import REACTNET_PAPER
from zoo.families.realtobinary import REAL2BIN_PAPER as R2B_PAPER

from .config import Recipe, Stage

# name -> factory of every built-in recipe (recipes.registry serves them with the user's own)
BUILTIN: dict[str, Callable[[], Recipe]] = {}


def builtin(fn: Callable[[], Recipe]) -> Callable[[], Recipe]:
    """Adds a recipe factory to :data:`BUILTIN` under its function name."""
    BUILTIN[fn.__name__] = fn
    return fn

LARQ = "larq-zoo 2.4 training/multi_stage_experiments.py"

# Seconds-long versions for tests: a few dozen images, one epoch, narrow models.
_TINY_COMMON = (("max_train_samples", 64), ("max_val_samples", 32), ("batch_size", 16), ("stages.batch_size", 16),
                ("stages.epochs", 1), ("workers", 0), ("input_size", 32), ("progress", False),
                ("tensorboard", False))
_R2B_TINY = _TINY_COMMON + (("model.width", 8),)
_MELIUS_TINY = _TINY_COMMON + (("model.num_blocks", (1, 1, 1, 1)), ("model.transition_features", (32, 32, 32)),
                               ("model.growth_rate", 16), ("model.stem_features", 16))


def _scale(stage: Stage, epochs: int) -> Stage:
    """The same schedule squeezed into ``epochs`` (warm-up and decay points scale with it)."""
    f = epochs / stage.epochs
    return dataclasses.replace(stage, epochs=epochs, warmup_epochs=stage.warmup_epochs * f,
                               decay_epochs=tuple(e * f for e in stage.decay_epochs))


def _r2b_step(**kw) -> dict:
    # R2BStepSchedule: linear warm-up over 5 epochs, then x decay at 40, 60, 70 (75 epochs).
    return dict(optimizer="adam", schedule="step", warmup_epochs=5, decay_epochs=(40, 60, 70), epochs=75,
                batch_size=256, **kw)


def _real2bin_stages() -> tuple[Stage, ...]:
    return (
        Stage("stage0", "realtobinary_resnet18_teacher", optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=1e-5,
              schedule="cosine", warmup_epochs=5, epochs=100, batch_size=512,
              note=f"float teacher, same layout as the student; {LARQ} TrainFPResnet18: SGD (Keras default "
                   "momentum 0) lr 0.1, cosine after 5 warm-up epochs, 100 epochs, batch 512, L2 1e-5"),
        Stage("stage1", "realtobinary_resnet18_stage1", teacher="stage0", lr=1e-3, weight_decay=1e-5,
              decay_factor=0.3, ce_weight=1.0, attention_weight=30.0, kd_weight=3.0, kd_temperature=1.0,
              **_r2b_step(),
              note=f"real weights, tanh activations, taught by stage0; {LARQ} TrainR2BBFP"),
        Stage("stage2", "realtobinary_resnet18_stage2", teacher="stage1", init_from="stage1", lr=1e-3,
              weight_decay=1e-5, decay_factor=0.3, ce_weight=1.0, attention_weight=30.0, kd_weight=3.0,
              kd_temperature=1.0, **_r2b_step(),
              note=f"binary activations, real weights, taught by and initialised from stage1 (the paper; "
                   f"{LARQ} TrainR2BBAN does not initialise the student)"),
        Stage("stage3", "realtobinary_resnet18", teacher="stage2", init_from="stage2", optimizer="adam", lr=2e-4,
              weight_decay=0.0, schedule="cosine", warmup_epochs=10, epochs=75, batch_size=256, ce_weight=1.0,
              attention_weight=0.0, kd_weight=0.8, kd_temperature=1.0, weight_clip=1.0,
              note=f"binary weights and activations, taught by and initialised from stage2; {LARQ} "
                   "TrainR2BBNNAlternative (cosine after 10 warm-up epochs, which TrainR2B runs), weight_clip 1"),
    )


def _strong_baseline_stages() -> tuple[Stage, ...]:
    return (
        Stage("ban", "strongbaseline_resnet18", model_overrides={"weight_quantizer": None}, lr=1e-3,
              weight_decay=1e-5, decay_factor=0.1, **_r2b_step(),
              note=f"binary activations, real weights; {LARQ} TrainR2BStrongBaselineBAN (its batch_size 8 "
                   "looks like a leftover: the paper's 256 is used)"),
        Stage("bnn", "strongbaseline_resnet18", init_from="ban", lr=2e-4, weight_decay=0.0, decay_factor=0.1,
              weight_clip=1.0, **_r2b_step(),
              note=f"binary weights and activations, initialised from ban; {LARQ} TrainR2BStrongBaselineBNN"),
    )


def _meliusnet_stage(epochs: int, **overrides) -> Stage:
    return Stage("train", "meliusnet22", model_overrides=overrides, optimizer="radam", lr=0.002,
                 schedule="cosine", epochs=epochs, weight_decay=0.0,
                 note="from scratch: RAdam lr 0.002, cosine decay (Bethge et al. 2020, Section 5.1); the STE "
                      "clip 1.3 lives in the model's BinaryConv2d; grouped stem is the model's")


_MNIST = dict(data="mnist", input_size=32, num_classes=10, batch_size=64, workers=0, val_fraction=0.2)


@builtin
def real2bin_imagenet() -> Recipe:
    """Real-to-Bin ResNet-18 on ImageNet: float teacher, then three progressively binary students."""
    return Recipe("", "Real-to-Bin ResNet-18, 4 stages (Martinez et al. 2020)", R2B_PAPER, data="",
                  input_size=224, batch_size=256, stages=_real2bin_stages(), tiny_overrides=_R2B_TINY)


# MNIST versions: width 16, 32x32 inputs, 3 epochs a stage and 12 for the fully binary one (every
# procedure's last stage gets the same 12). The paper's 2e-4 for the binary-weight stage undertrains
# in so few epochs (measured at width 32, seed 0: 62.0% after 2 epochs, 74.8% after 4; 1e-3: 83.7%):
# switching real weights to +-1 multiplies each conv output by ~1/mean|w|, which the short run has
# to absorb, so every fully binary MNIST stage uses Adam 1e-3, cosine, no weight decay, clip 1.
MNIST_WIDTH = 16
MNIST_EPOCHS = 3
MNIST_BINARY_EPOCHS = 12
_MNIST_BINARY = dict(optimizer="adam", lr=1e-3, schedule="cosine", warmup_epochs=0.5, weight_decay=0.0,
                     weight_clip=1.0)


def _mnist_stages(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """The stages squeezed to MNIST epochs at MNIST_WIDTH; the last (fully binary) one retuned."""
    out = []
    for i, s in enumerate(stages):
        last = i == len(stages) - 1
        s = _scale(s, MNIST_BINARY_EPOCHS if last else MNIST_EPOCHS)
        s = dataclasses.replace(s, batch_size=0, model_overrides={**s.model_overrides, "width": MNIST_WIDTH})
        if last:
            s = dataclasses.replace(s, **_MNIST_BINARY, decay_epochs=(),
                                    note=s.note + "; MNIST: Adam 1e-3 cosine (see recipes/library.py)")
        out.append(s)
    return tuple(out)


@builtin
def real2bin_mnist() -> Recipe:
    """The Real-to-Bin procedure on the embedded MNIST digits: width 16, 32x32 inputs, 3+3+3+12 epochs."""
    return Recipe("", "Real-to-Bin's 4 stages on 4,000 MNIST digits (width 16, 32x32)", R2B_PAPER, **_MNIST,
                  stages=_mnist_stages(_real2bin_stages()), tiny_overrides=_R2B_TINY)


@builtin
def strongbaseline_imagenet() -> Recipe:
    """The paper's two-step strong baseline on ImageNet (binary activations, then binary weights too)."""
    return Recipe("", "Real-to-Bin strong baseline, 2 steps (Martinez et al. 2020)", R2B_PAPER, data="",
                  input_size=224, batch_size=256, stages=_strong_baseline_stages(), tiny_overrides=_R2B_TINY)


@builtin
def strongbaseline_mnist() -> Recipe:
    """The two-step strong baseline on the embedded MNIST digits (width 16, 32x32, 3+12 epochs)."""
    return Recipe("", "Strong baseline's 2 steps on 4,000 MNIST digits", R2B_PAPER, **_MNIST,
                  stages=_mnist_stages(_strong_baseline_stages()), tiny_overrides=_R2B_TINY)


@builtin
def binaryresnet_mnist() -> Recipe:
    """A plain binary ResNet-18 (no scaling factors, one step from scratch) on the MNIST digits."""
    stage = Stage("bnn", "strongbaseline_resnet18", model_overrides={"scaling": "none", "width": MNIST_WIDTH},
                  epochs=MNIST_BINARY_EPOCHS, **_MNIST_BINARY,
                  note="the paper's starting point: binary weights and activations trained in one step, no "
                       "scaling, no teacher; same last-stage budget as the MNIST Real-to-Bin and strong baseline")
    return Recipe("", "Plain binary ResNet-18 on 4,000 MNIST digits (width 16, 32x32)", R2B_PAPER, **_MNIST,
                  stages=(stage,), tiny_overrides=_R2B_TINY)


@builtin
def meliusnet22_imagenet() -> Recipe:
    """MeliusNet22 from scratch on ImageNet (RAdam, lr 0.002, cosine)."""
    stage = dataclasses.replace(_meliusnet_stage(120), note=_meliusnet_stage(120).note
                                + "; 120 epochs as the BMXNet-v2 runs (not re-checked against the paper here)")
    return Recipe("", "MeliusNet22 from scratch (Bethge et al. 2020)", MELIUS_PAPER, data="", input_size=224,
                  batch_size=256, stages=(stage,), tiny_overrides=_MELIUS_TINY)


@builtin
def meliusnet22_mnist() -> Recipe:
    """MeliusNet22 from scratch on the embedded MNIST digits: growth 16, narrow transitions, 32x32, 12 epochs."""
    stage = _meliusnet_stage(MNIST_BINARY_EPOCHS, growth_rate=16, stem_features=32, transition_features=(64, 96, 128))
    return Recipe("", "MeliusNet22 (narrow: growth 16) on 4,000 MNIST digits", MELIUS_PAPER, **_MNIST,
                  stages=(stage,), tiny_overrides=_MELIUS_TINY)


@builtin
def mobilenet_mnist() -> Recipe:
    """The float reference, MobileNet-v1 0.25, on the embedded MNIST digits (64x64, 12 epochs)."""
    stage = Stage("train", "mobilenet_v1_025", optimizer="adam", lr=1e-3, schedule="cosine", warmup_epochs=0.5,
                  epochs=MNIST_BINARY_EPOCHS, weight_decay=1e-5,
                  note="float reference for the MNIST binary models: same data and epochs as their fully binary "
                       "stages; 64x64 inputs because its 32x downsampling leaves 1x1 maps at 32x32 (measured, "
                       "seed 0: 59.1% val at 32x32)")
    return Recipe("", "MobileNet-v1 0.25 (float) on 4,000 MNIST digits (64x64)", "Howard et al., MobileNets, "
                  "arXiv:1704.04861", **{**_MNIST, "input_size": 64}, stages=(stage,),
                  tiny_overrides=(("max_train_samples", 64), ("max_val_samples", 32), ("stages.epochs", 1),
                                  ("progress", False), ("tensorboard", False)))


@builtin
def tiny_mnist() -> Recipe:
    """A seconds-long single-stage run (binary Real-to-Bin net, width 8) for tests of the run machinery."""
    stage = Stage("train", "realtobinary_resnet18", model_overrides={"width": 8}, optimizer="adam", lr=2e-3,
                  schedule="cosine", warmup_epochs=0.5, epochs=2, weight_clip=1.0)
    return Recipe("", "tiny binary net on 256 MNIST digits", R2B_PAPER, **{**_MNIST, "batch_size": 32},
                  max_train_samples=256, max_val_samples=128, progress=False, tensorboard=False, stages=(stage,),
                  tiny_overrides=(("max_train_samples", 64), ("max_val_samples", 32), ("stages.epochs", 1)))


# --- ReActNet (Liu et al., ECCV 2020) -----------------------------------------------------------------
# The authors' code (github.com/liuzechun/ReActNet, mobilenet/ and resnet/, {1_step1,2_step2}/train.py and
# run.sh): step 1 trains binary activations with real weights, step 2 binary weights and activations, each
# with Adam, a learning rate decayed linearly to 0 (LambdaLR 1 - epoch / epochs, stepped per epoch; per step
# here), 128 epochs, and the distributional loss alone (train.py's criterion_kd: cross-entropy to the float
# teacher's softmax, which has KL's gradient; no label loss). ReActNet-A: batch 256, lr 1.25e-3; ReActNet-18:
# batch 512, lr 2.5e-3; weight decay 1e-5 in step 1, 0 in step 2.
_REACTNET_CODE = "github.com/liuzechun/ReActNet {}/{}/run.sh and train.py"
_FLOAT = {"input_quantizer": None, "weight_quantizer": None}


def _reactnet_stages(model: str, folder: str, lr: float, batch: int, epochs: int = 128,
                     **model_overrides) -> tuple[Stage, ...]:
    """The float teacher, then the paper's two steps, each taught by the teacher's softmax alone."""
    distil = dict(optimizer="adam", lr=lr, schedule="linear", epochs=epochs, batch_size=batch, teacher="teacher",
                  ce_weight=0.0, kd_weight=1.0, kd_temperature=1.0)
    return (
        Stage("teacher", model, model_overrides={**model_overrides, **_FLOAT}, optimizer="adam", lr=lr,
              schedule="linear", epochs=epochs, batch_size=batch, weight_decay=1e-5,
              note="the float network of the same layout, trained on the labels (the zoo's stand-in: the authors "
                   "distil from torchvision's pretrained ResNet-34, train.py --teacher resnet34, which the zoo does "
                   "not hold; pass teacher.model=NAME and step1/step2.teacher_weights=PATH for another float model)"),
        Stage("step1", model, model_overrides={**model_overrides, "weight_quantizer": None}, weight_decay=1e-5,
              **distil, note="binary activations, real weights, distributional loss from the teacher; "
                             + _REACTNET_CODE.format(folder, "1_step1")),
        Stage("step2", model, model_overrides=dict(model_overrides), init_from="step1", weight_decay=0.0, **distil,
              note="binary weights and activations, initialised from step1 as the paper says (the authors' "
                   "ReActNet-A step 2 loads step 1 with strict=False and renames its binary kernels `weights`, so "
                   "those restart from their initialisation there); " + _REACTNET_CODE.format(folder, "2_step2")),
    )


_REACTNET_TINY = _TINY_COMMON + (("model.alpha", 0.125),)


@builtin
def reactnet_a_imagenet() -> Recipe:
    """ReActNet-A on ImageNet: a float teacher, then binary activations, then binary weights (Liu et al. 2020)."""
    return Recipe("", "ReActNet-A, float teacher + 2 steps with the distributional loss (Liu et al. 2020)",
                  REACTNET_PAPER, data="", input_size=224, batch_size=256,
                  stages=_reactnet_stages("reactnet_a", "mobilenet", 1.25e-3, 256), tiny_overrides=_REACTNET_TINY)


@builtin
def reactnet_18_imagenet() -> Recipe:
    """ReActNet-18 on ImageNet: a float teacher, then binary activations, then binary weights."""
    return Recipe("", "ReActNet-18, float teacher + 2 steps with the distributional loss (Liu et al. 2020)",
                  REACTNET_PAPER, data="", input_size=224, batch_size=512,
                  stages=_reactnet_stages("reactnet_18", "resnet", 2.5e-3, 512),
                  tiny_overrides=_TINY_COMMON + (("model.filters", 8),))


# MNIST: ReActNet-A at a quarter of the width on 32x32 digits (its 5 stride-2 stages end on a 1x1 map), Adam
# 1e-3 with the linear decay, 3 epochs for the teacher and step 1 and 12 for the fully binary step 2: the
# budget every MNIST recipe's last stage gets.
REACTNET_MNIST_ALPHA = 0.25


def _reactnet_mnist_stages() -> tuple[Stage, ...]:
    stages = _reactnet_stages("reactnet_a", "mobilenet", 1e-3, 0, alpha=REACTNET_MNIST_ALPHA)
    return tuple(dataclasses.replace(s, epochs=MNIST_BINARY_EPOCHS if s.name == "step2" else MNIST_EPOCHS,
                                     note=s.note + "; MNIST: Adam 1e-3, batch 64") for s in stages)


@builtin
def reactnet_mnist() -> Recipe:
    """ReActNet-A's procedure on the embedded MNIST digits: width 0.25, 32x32, 3+3+12 epochs."""
    return Recipe("", "ReActNet-A's teacher + 2 steps on 4,000 MNIST digits (width 0.25, 32x32)", REACTNET_PAPER,
                  **_MNIST, stages=_reactnet_mnist_stages(), tiny_overrides=_REACTNET_TINY)


# --- 1-bit license-plate detectors (Im & Lee, 2018) -------------------------------------------------
# data=PATH is a folder written by `bnnzoo data plates` (20,000 training images for the comparison). Every
# stage trains alike (same data, seed, schedule and budget: one pass over the training images at 128x128,
# batch 8), so the comparison shows what the architecture changes. The 1-bit stages start from the float
# stage's weights. Tuned on the synthetic plates (seed 0, 10,000 training / 1,000 validation images, two
# passes a stage), val AP@0.5:
# - 1-bit from scratch learns far slower than from float weights (6% vs 35% after 2,000 images);
# - Adam's lr for the improved 1-bit stage: 5e-4 76.2%, 1e-3 80.1%, 2e-3 85.2%, 4e-3 87.4%, 8e-3 88.9%
#   (binary weights need steps large enough to flip signs); the float model at 8e-3 95.2% (2e-3: 94.6%),
#   so every stage uses 8e-3;
# - distilling the float model's outputs into the improved stage (kd_weight=1) gave 84.5% against 85.2%
#   without (at lr 2e-3) and costs a teacher pass, so the recipes do not distil (the option stays:
#   improved.teacher=float improved.kd_weight=1).
# The light stage (plates_detector_1bit_light) keeps every weight shape, so it starts from the float weights
# like the others (the README's seed commands pass light.init_weights=the float stage's or the shipped float
# file). Its stride moved on a crowded 2-core machine: first conv strided 2 then its pool (the registered
# one) against first conv strided 2, no pools, second conv strided 2 (light.model.pools=(False,False,True,
# True,False,False) light.model.strides=(2,2,1,1,1,1), the same MACs): the running training loss after 500
# of 2,500 steps was 8.72 for the second against 8.42 and 8.16 for the first (seeds 0 and 1); the second
# was stopped there for time, so this is a hint, not a measurement of AP.
PLATES_EPOCHS = 1
_PLATES_OPT = dict(optimizer="adam", lr=8e-3, schedule="cosine", warmup_epochs=0.1, epochs=PLATES_EPOCHS,
                   weight_decay=0.0)
_PLATES_NOTE = "Adam 8e-3, cosine, batch 8, 128x128 (tuned on the synthetic plates, see recipes/library.py)"


def _plates_stages(*names: str) -> tuple[Stage, ...]:
    """The float stage, then the named 1-bit stages, each initialised from the float stage."""
    stages = {
        "float": Stage("float", "plates_detector_float", **_PLATES_OPT, note=_PLATES_NOTE),
        "baseline": Stage("baseline", "plates_detector_1bit_baseline", init_from="float", **_PLATES_OPT,
                          note="from the float stage's weights; " + _PLATES_NOTE),
        "improved": Stage("improved", "plates_detector_1bit", init_from="float", **_PLATES_OPT,
                          note="from the float stage's weights; " + _PLATES_NOTE),
        # Same weight shapes as the float detector (only a stride and a pool move), so it starts from them too.
        "light": Stage("light", "plates_detector_1bit_light", init_from="float", **_PLATES_OPT,
                       note="from the float stage's weights; " + _PLATES_NOTE),
    }
    return tuple(stages[n] for n in ("float", *names))


def _plates_recipe(description: str, stages: tuple[Stage, ...]) -> Recipe:
    return Recipe("", description, PLATES_PAPER, task="detect", data="", input_size=PLATES_TRAINED_INPUT, batch_size=8,
                  workers=1, stages=stages, tiny_overrides=_TINY_COMMON)


@builtin
def plates_detector_float() -> Recipe:
    """The float plate detector on a `bnnzoo data plates` folder."""
    return _plates_recipe("float YOLO-style plate detector (Im & Lee 2018's reference)", _plates_stages())


@builtin
def plates_detector_1bit_baseline() -> Recipe:
    """The common 1-bit recipe (first and last layers 32-bit), fine-tuned from a float stage."""
    return _plates_recipe("1-bit plate detector, first and last layers 32-bit (Im & Lee 2018's baseline); "
                          "float stage first", _plates_stages("baseline"))


@builtin
def plates_detector_1bit() -> Recipe:
    """Im & Lee's improved 1-bit plate detector, fine-tuned from a float stage."""
    return _plates_recipe("1-bit plate detector, first/second/last 32-bit, no activation after binary convs "
                          "(Im & Lee 2018); float stage first", _plates_stages("improved"))


@builtin
def plates_detector_1bit_light() -> Recipe:
    """The improved 1-bit plate detector with a strided first conv (a tenth of the float 32-bit MACs)."""
    return _plates_recipe("1-bit plate detector, Im & Lee 2018's improved recipe with the first conv strided so "
                          "the 32-bit second layer runs at a quarter of the pixels; float stage first",
                          _plates_stages("light"))


@builtin
def plates_compare() -> Recipe:
    """The four plate detectors as stages of one run: same data, seed and budget (Im & Lee 2018's comparison,
    and the light improved detector)."""
    return _plates_recipe("float vs 1-bit baseline vs improved 1-bit vs light improved 1-bit plate detector, one run",
                          _plates_stages("baseline", "improved", "light"))
