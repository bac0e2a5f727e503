"""``bnnzoo convert``: export a registered model or a checkpoint, verified.

Examples::

    bnnzoo convert meliusnet22 --to tflite
    bnnzoo convert realtobinary_resnet18 --to onnx --bitpack -o r2b.onnx
    bnnzoo convert run/best.safetensors --arch meliusnet22 --to tflite --pad-value 0
"""

from __future__ import annotations

import argparse
import os

from .formats import FORMATS, get_format, require_extra
from .verify import ConversionError

__all__ = ["add_convert_arguments", "run_convert"]


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo convert`` to ``parser``."""
    parser.add_argument("source", metavar="NAME_OR_CHECKPOINT",
                        help="a registered model (`bnnzoo list`), NAME.TAG, or a .safetensors file (needs --arch)")
    parser.add_argument("--to", required=True, metavar="FORMAT",
                        help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()))
    parser.add_argument("-o", "--output", metavar="PATH", help="output file (default: NAME.SUFFIX here)")
    parser.add_argument("--weights", metavar="FILE|hf-hub:REPO",
                        help="weights for NAME: a .safetensors file (config.json beside it is checked) or "
                             "hf-hub:owner/repo[@rev]")
    parser.add_argument("--arch", metavar="NAME", help="architecture of a .safetensors checkpoint given as source")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input side (default: the model's)")
    parser.add_argument("--bitpack", action="store_true", help="onnx: store binary conv weights at 1 bit")
    parser.add_argument("--pad-value", type=float, choices=(0.0, 1.0), metavar="0|1",
                        help="padding value of binary convs' inputs (an architecture option)")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing the file with the source model")


def _load(args: argparse.Namespace):
    import zoo

    overrides = {} if args.pad_value is None else {"pad_value": args.pad_value}
    if args.source.endswith(".safetensors"):
        if not args.arch:
            raise ValueError(f"{args.source} is a checkpoint: name its architecture with --arch")
        if not os.path.isfile(args.source):
            raise FileNotFoundError(f"checkpoint {args.source} does not exist")
        name = os.path.splitext(os.path.basename(args.source))[0]
        return zoo.load(args.arch, weights=args.source, input_size=args.input_size, **overrides), name
    if args.arch:
        raise ValueError("--arch is only for .safetensors checkpoints")
    if getattr(args, "weights", None):
        if "." in args.source:
            raise ValueError(f"{args.source} names its weights already: drop --weights, or give the bare architecture")
        return zoo.load(args.source, weights=args.weights, input_size=args.input_size, **overrides), args.source
    return zoo.load(args.source, input_size=args.input_size, **overrides), args.source


def run_convert(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo convert``; prints the conversion report. Returns the exit status."""
    from . import convert

    fmt = get_format(args.to)
    if args.bitpack and "bitpack" not in fmt.options:
        raise ValueError(f"--bitpack is an onnx option; {fmt.name} takes: {', '.join(fmt.options)}")
    require_extra(fmt)  # before building anything
    from zoo.console import Progress

    with Progress("bnnzoo convert", 2) as bar:
        bar.step(f"building {args.source}")
        model, name = _load(args)
        bar.advance()
        output = args.output or f"{name.replace('.', '_')}{fmt.suffix}"
        options = {"bitpack": True} if args.bitpack else {}
        bar.step(f"exporting to {fmt.name}" + ("" if args.no_verify else ", then verifying against the source model"))
        report = _convert(model, output, fmt, args, options, convert)
        bar.advance()
    print(report.summary())
    return 0


def _convert(model, output: str, fmt, args: argparse.Namespace, options: dict, convert):
    try:
        return convert(model, output, fmt.name, verify=not args.no_verify, **options)
    except ConversionError as e:
        trained = _default_weights(args.source)
        if not trained:
            raise
        # A fresh binary model feeds exact zeros to its signs, which runtimes may round apart.
        raise ConversionError(f"{e} ({args.source} has initialised weights here; trained ones convert: "
                              f"bnnzoo convert {trained} --to {fmt.name})") from None


def _default_weights(source: str) -> str:
    """``weights="default"`` of ``source`` when it names an architecture without weights ("" otherwise)."""
    from zoo import get_config
    from zoo.weights import WeightMismatchError, lookup

    if "." in source:
        return ""
    try:
        return lookup(get_config(source), "default")[0]
    except WeightMismatchError:
        return ""
