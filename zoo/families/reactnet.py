"""ReActNet (Liu et al., ECCV 2020): variants, the authors' checkpoints and the rules that import them."""

from __future__ import annotations

from ..registry import ModelConfig, register_model
from ..weights import IMAGENET_MEAN, IMAGENET_STD, Metric, Weights
from ._common import IN1K
from .mobilenet import MOBILENET_BLOCKS  # noqa: F401  (ReActNet-A's block table, read by zoo.torch.reactnet)

BUILDER = "zoo.torch.reactnet:build"

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


# --- the ReActNet authors' ImageNet checkpoints, imported (zoo.reactnet_import) -------------------
# The links and top-1 figures of their README's "Models" table (github.com/liuzechun/ReActNet at the commit
# below). OneDrive links cannot be fetched by a plain HTTP client and no checksum is published: the file is
# placed by hand and its sha256 logged. ImageNet mean/std and a 0.875 centre crop (Resize(256),
# CenterCrop(224)) as their train.py validates, its classes in ImageFolder's (sorted synset) order; zero
# padding of the binary convolutions' inputs.
_REACTNET_COMMIT = "a6cd08d4605d94135faea6fd73354041e4130b52"
_REACTNET_NOTES = (
    "The authors' released PyTorch checkpoint, imported by zoo.reactnet_import: keys matched by name (the "
    "'module.' prefix of nn.DataParallel removed), flattened binary kernels reshaped. Their binary convolutions "
    "pad with 0 and PyTorch's symmetric geometry, so the model is built with pad_value=0.0; it converts to "
    "TFLite (LCE) and ONNX as it is, verified layer by layer (the strided binary convolutions keep an explicit "
    "PAD and subtract the border's constant). Their torch.sign maps 0 to 0 where LCE and the zoo map it to +1: "
    "the importer warns if a latent binary weight is exactly 0. Download the file from the link below (a "
    "OneDrive page: no plain download, no published checksum) and save it where `zoo.load` says.")


def _authors(arch: str, filename: str, top1: float, url: str, row: str) -> Weights:
    return Weights(
        arch=arch, tag="authors_in1k", hub_repo="liuzechun/ReActNet", revision=_REACTNET_COMMIT, filename=filename,
        sha256="", num_classes=1000, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, **IN1K,
        arch_overrides={"pad_value": 0.0}, importer="reactnet", default=True, url=url, notes=_REACTNET_NOTES,
        metrics=(Metric("top1", top1, "imagenet-1k", f"published: github.com/liuzechun/ReActNet README, Models "
                        f"table ({row}, the released checkpoint)"),))


WEIGHTS = (
    _authors("reactnet_a", "reactnet_a_authors_in1k.pth.tar", 69.5,
             "https://hkustconnect-my.sharepoint.com/:u:/g/personal/zliubq_connect_ust_hk/"
             "EW1FVkAKN5dJg1ns_CcMtQoBJAy1Yxx-b7lpaTFjTJIUKw?e=oyebWy", "ReActNet-A"),
    _authors("reactnet_18", "reactnet_18_authors_in1k.pth.tar", 65.9,
             "https://hkustconnect-my.sharepoint.com/:u:/g/personal/zliubq_connect_ust_hk/"
             "EY9P7mxs-8BLkTlqMZif4s4BnNWcKbUnvqeA_CvN3c9q4w?e=IpUyF4", "ReActNet (Bi-Real based)"),
)


# (authors' key, with groups) -> our key template; {b} is our block index, {0}, {1}... the groups.
# ReActNet-A: mobilenet/*/reactnet.py (``feature.0`` is the stem, ``feature.i`` block i - 1).
_RULES_A = (
    (r"feature\.0\.conv1\.weight", "stem.conv.weight"),
    (r"feature\.0\.bn1\.(\w+)", "stem.bn.{0}"),
    (r"feature\.(\d+)\.move11\.bias", "blocks.{b}.rsign1.bias"),
    (r"feature\.(\d+)\.binary_3x3\.weights?", "blocks.{b}.conv.weight"),
    (r"feature\.(\d+)\.bn1\.(\w+)", "blocks.{b}.conv_bn.{1}"),
    (r"feature\.(\d+)\.move12\.bias", "blocks.{b}.act1.shift_in.bias"),
    (r"feature\.(\d+)\.prelu1\.weight", "blocks.{b}.act1.prelu.weight"),
    (r"feature\.(\d+)\.move13\.bias", "blocks.{b}.act1.shift_out.bias"),
    (r"feature\.(\d+)\.move21\.bias", "blocks.{b}.rsign2.bias"),
    (r"feature\.(\d+)\.binary_pw\.weights?", "blocks.{b}.pw.0.weight"),
    (r"feature\.(\d+)\.bn2\.(\w+)", "blocks.{b}.pw_bn.0.{1}"),
    (r"feature\.(\d+)\.binary_pw_down([12])\.weights?", "blocks.{b}.pw.{d}.weight"),
    (r"feature\.(\d+)\.bn2_([12])\.(\w+)", "blocks.{b}.pw_bn.{d}.{2}"),
    (r"feature\.(\d+)\.move22\.bias", "blocks.{b}.act2.shift_in.bias"),
    (r"feature\.(\d+)\.prelu2\.weight", "blocks.{b}.act2.prelu.weight"),
    (r"feature\.(\d+)\.move23\.bias", "blocks.{b}.act2.shift_out.bias"),
    (r"fc\.(weight|bias)", "classifier.{0}"),
)
# ReActNet-18: resnet/*/birealnet.py (``layer{s}.{j}``: block j of stage s, 1-based stages).
_RULES_18 = (
    (r"conv1\.weight", "stem.conv.weight"),
    (r"bn1\.(\w+)", "stem.bn.{0}"),
    (r"layer(\d)\.(\d+)\.move0\.bias", "blocks.{b}.rsign.bias"),
    (r"layer(\d)\.(\d+)\.binary_conv\.weights?", "blocks.{b}.conv.weight"),
    (r"layer(\d)\.(\d+)\.bn1\.(\w+)", "blocks.{b}.bn.{2}"),
    (r"layer(\d)\.(\d+)\.move1\.bias", "blocks.{b}.act.shift_in.bias"),
    (r"layer(\d)\.(\d+)\.prelu\.weight", "blocks.{b}.act.prelu.weight"),
    (r"layer(\d)\.(\d+)\.move2\.bias", "blocks.{b}.act.shift_out.bias"),
    (r"layer(\d)\.(\d+)\.downsample\.1\.weight", "blocks.{b}.shortcut.conv.weight"),
    (r"layer(\d)\.(\d+)\.downsample\.2\.(\w+)", "blocks.{b}.shortcut.bn.{2}"),
    (r"fc\.(weight|bias)", "classifier.{0}"),
)
# What zoo.reactnet_import reads: the key rules of each backbone (``arch['backbone']``).
REACTNET_CHECKPOINT = {"mobilenet_v1": _RULES_A, "resnet18": _RULES_18}
