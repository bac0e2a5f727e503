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

from .config import Recipe, Stage, register_recipe

R2B_PAPER = "Martinez et al., Training Binary Neural Networks with Real-to-Binary Convolutions, ICLR 2020"
MELIUS_PAPER = "Bethge et al., MeliusNet: Can Binary Neural Networks Achieve MobileNet-level Accuracy?, arXiv:2001.05936"
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


@register_recipe
def real2bin_imagenet() -> Recipe:
    """Real-to-Bin ResNet-18 on ImageNet: float teacher, then three progressively binary students."""
    return Recipe("", "Real-to-Bin ResNet-18, 4 stages (Martinez et al. 2020)", R2B_PAPER, data="",
                  input_size=224, batch_size=256, stages=_real2bin_stages(), tiny_overrides=_R2B_TINY)


@register_recipe
def real2bin_mnist() -> Recipe:
    """The Real-to-Bin procedure on the embedded MNIST digits: width 32, 32x32 inputs, 2 epochs a stage."""
    stages = tuple(dataclasses.replace(_scale(s, 2), batch_size=0) for s in _real2bin_stages())
    stages = tuple(dataclasses.replace(s, model_overrides={**s.model_overrides, "width": 32}) for s in stages)
    return Recipe("", "Real-to-Bin's 4 stages on 4,000 MNIST digits (width 32, 32x32)", R2B_PAPER, **_MNIST,
                  stages=stages, tiny_overrides=_R2B_TINY)


@register_recipe
def strongbaseline_imagenet() -> Recipe:
    """The paper's two-step strong baseline on ImageNet (binary activations, then binary weights too)."""
    return Recipe("", "Real-to-Bin strong baseline, 2 steps (Martinez et al. 2020)", R2B_PAPER, data="",
                  input_size=224, batch_size=256, stages=_strong_baseline_stages(), tiny_overrides=_R2B_TINY)


@register_recipe
def strongbaseline_mnist() -> Recipe:
    """The two-step strong baseline on the embedded MNIST digits (width 32, 32x32, 2 epochs a step)."""
    stages = tuple(dataclasses.replace(_scale(s, 2), batch_size=0,
                                       model_overrides={**s.model_overrides, "width": 32})
                   for s in _strong_baseline_stages())
    return Recipe("", "Strong baseline's 2 steps on 4,000 MNIST digits", R2B_PAPER, **_MNIST, stages=stages,
                  tiny_overrides=_R2B_TINY)


@register_recipe
def meliusnet22_imagenet() -> Recipe:
    """MeliusNet22 from scratch on ImageNet (RAdam, lr 0.002, cosine)."""
    stage = dataclasses.replace(_meliusnet_stage(120), note=_meliusnet_stage(120).note
                                + "; 120 epochs as the BMXNet-v2 runs (not re-checked against the paper here)")
    return Recipe("", "MeliusNet22 from scratch (Bethge et al. 2020)", MELIUS_PAPER, data="", input_size=224,
                  batch_size=256, stages=(stage,), tiny_overrides=_MELIUS_TINY)


@register_recipe
def meliusnet22_mnist() -> Recipe:
    """MeliusNet22 from scratch on the embedded MNIST digits: half width (growth 32), 32x32 inputs."""
    stage = _meliusnet_stage(4, growth_rate=32, stem_features=32, transition_features=(96, 128, 160))
    return Recipe("", "MeliusNet22 (half width) on 4,000 MNIST digits", MELIUS_PAPER, **_MNIST, stages=(stage,),
                  tiny_overrides=_MELIUS_TINY)


@register_recipe
def tiny_mnist() -> Recipe:
    """A seconds-long single-stage run (binary Real-to-Bin net, width 8) for tests of the run machinery."""
    stage = Stage("train", "realtobinary_resnet18", model_overrides={"width": 8}, optimizer="adam", lr=2e-3,
                  schedule="cosine", warmup_epochs=0.5, epochs=2, weight_clip=1.0)
    return Recipe("", "tiny binary net on 256 MNIST digits", R2B_PAPER, **{**_MNIST, "batch_size": 32},
                  max_train_samples=256, max_val_samples=128, progress=False, tensorboard=False, stages=(stage,),
                  tiny_overrides=(("max_train_samples", 64), ("max_val_samples", 32), ("stages.epochs", 1)))
