"""``bnnzoo demo``: the binary models against MobileNet-v1, then plates found by the 1-bit detector
(what ``make demo`` runs)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run", "needs_tensorflow", "DEMO_MODELS", "DEMO_BASELINE", "DEMO_TAG"]

# Binary models with weights trained on the embedded MNIST digits (shipped in zoo/pretrained/),
# and the float reference trained the same way.
DEMO_MODELS = ("realtobinary_resnet18", "meliusnet22")
DEMO_BASELINE = "mobilenet_v1_025"
DEMO_TAG = "mnist"


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """The demo exports to LCE and times in its interpreter."""
    return True


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo demo`` to ``p``."""
    p.add_argument("models", nargs="*", metavar="NAME", default=list(DEMO_MODELS),
                   help=f"binary models to compare with MobileNet-v1 (each needs weights tagged {DEMO_TAG!r})")
    p.add_argument("--models", nargs="+", dest="models_option", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("-o", "--output", "--out", dest="out", default="out/demo",
                   help="folder for the report and the detected plates")
    p.add_argument("--runs", type=int, default=None,
                   help="most timed runs per model and runtime (default: eval --quick's)")
    p.add_argument("--limit", type=int, default=0,
                   help="MNIST validation digits for the accuracy column (0: all 1,000)")
    p.add_argument("--plates", type=int, default=4, help="generated images the 1-bit plate detector runs on (0: none)")


def run(args: argparse.Namespace) -> int:
    """The binary models against MobileNet-v1 at 224x224 (published ImageNet top-1, measured latency and size)
    with the MNIST accuracy of their shipped weights; then plates found by the 1-bit detector. (The figures of
    every model, which took most of a minute to measure, are `bnnzoo list --figures`.)"""
    from bnnzoo.cli import main

    if args.models_option:
        args.models = args.models_option
    print(f"{', '.join(args.models)} against MobileNet-v1 (widths 0.25 to 1.0) at 224x224, the input size of their "
          "published ImageNet top-1: each exported to LCE TFLite at 224x224 (verified once, then cached) and timed in "
          "bnnzoo's kernels (LiteRT) and LCE, MobileNet-v1 in TFLite with XNNPACK. Beside it, the accuracy of the "
          f"weights that ship with bnnzoo (tag {DEMO_TAG!r}, trained on MNIST digits at 32x32, 64x64 for MobileNet-v1 "
          "0.25), exported at their own size and run on the held-out digits in PyTorch, LCE and bnnzoo's kernels.\n",
          flush=True)
    tagged = [f"{m}.{DEMO_TAG}" for m in (*args.models, DEMO_BASELINE)]
    runs = ["--runs", str(args.runs)] if args.runs else []
    rc = main(["eval", *tagged, "--baseline", "mobilenet_v1", "--quick", *runs, "--data", "mnist",
               "--limit", str(args.limit), "-o", args.out])
    return max(rc, _demo_plates(args.out, args.plates))


def _demo_plates(out: str, count: int) -> int:
    """Plates found by the shipped 1-bit detector in LCE's interpreter, on generated held-out images."""
    from pathlib import Path

    from bnnzoo.cli import main
    from recipes.plates.generate import generate

    if count <= 0:
        return 0
    print(f"\nFinding license plates in {count} generated test images (not seen in training) with the 1-bit "
          f"detector that ships with bnnzoo, exported to LCE TFLite (verified) and run in LCE's interpreter:\n",
          flush=True)
    folder = Path(out) / "plates"
    generate(folder, {"test": count}, seed=0)
    images = sorted(str(p) for p in (folder / "images" / "test").iterdir())
    (folder / "detected").mkdir(parents=True, exist_ok=True)  # a folder even for one image (detect's -o rule)
    # No --model: detect's default detector (converters.detect.DEFAULT_DETECTOR) with its shipped weights.
    return main(["detect", *images, "--runtime", "tflite", "--score-threshold", "0.5", "-o", str(folder / "detected")])
