"""The ``bnnzoo`` command line. Each subcommand lives beside the code it drives and
is imported only when used, so ``bnnzoo list`` never imports TensorFlow.

A subcommand ``cmd`` lives in a module exposing ``add_cmd_arguments(parser)`` and
``run_cmd(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

# name -> (module, one-line help)
COMMANDS = {
    "list": ("zoo.commands", "list the registered models and their figures"),
    "demo": ("zoo.commands", "build, convert and compare the default models (what `make demo` runs)"),
    "convert": ("converters.cli", "export a model to TFLite (LCE) or ONNX, verified against the source"),
    "verify": ("converters.cli", "re-check an exported .tflite/.onnx against its source model, layer by layer"),
    "eval": ("eval.cli", "accuracy, size, ops and latency against MobileNet-v1, as a report with plots"),
    "train": ("recipes.cli", "train a recipe (the papers' procedures): bnnzoo train RECIPE [key=value ...] [--resume [RUN_DIR]]"),
    "detect": ("eval.detect", "find license plates in images with a plate detector (torch, onnx or tflite), drawn into PNGs"),
    "deploy": ("converters.deploy", "write a self-contained device bundle (--target rpi: LCE .tflite + bit-packed ONNX + run.py), verified"),
    "download": ("zoo.hub", "download registered or hf-hub: weights into the Hugging Face cache (for offline use)"),
    "data": ("recipes.plates.generate", "generate a synthetic data set (plates: Korean license plates with YOLO labels)"),
    "pack": ("zoo.commands", "write a trained model.safetensors for inference (binary kernels as int8 signs) + its sha256"),
    "push": ("zoo.hub", "publish a saved model folder (model card included) to a Hugging Face Hub repo"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``bnnzoo`` console script."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="bnnzoo", description="Binary neural network zoo and export pipeline.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            getattr(importlib.import_module(module), f"add_{name}_arguments")(p)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(getattr(importlib.import_module(COMMANDS[args.command][0]), f"run_{args.command}")(args) or 0)
    except (KeyError, ValueError, TypeError, OSError, ImportError, RuntimeError) as e:
        if os.environ.get("BNNZOO_DEBUG"):
            raise
        print(f"bnnzoo {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
