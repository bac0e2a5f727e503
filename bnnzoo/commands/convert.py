"""``bnnzoo convert``: export a model to TFLite (LCE) or ONNX, verified against the source.

It takes a model as every command does (:mod:`zoo.refs`): ``NAME[.TAG]``, a folder or
``.safetensors`` file saved with ``zoo.save`` (its ``config.json`` names the architecture),
``hf-hub:OWNER/NAME[@REV]``, or ``FILE.py:CLASS`` with ``--weights``. Examples::

    bnnzoo convert meliusnet22 --to tflite
    bnnzoo convert realtobinary_resnet18 -o r2b.onnx --bitpack                  # the format from the extension
    bnnzoo convert quicknet --to tflite --int8          # LCE's int8 file (int8 input/output, float ops in int8)
    bnnzoo convert runs/m22/train/ --to tflite                                 # a training run's stage folder
    bnnzoo convert hf-hub:someone/my-meliusnet --to tflite
    bnnzoo convert run/best.safetensors --arch meliusnet22 --to tflite --pad-value 0   # no config.json beside it
    bnnzoo convert my_models.py:MyBNN --weights run7/ --to tflite

``FILE.py:CLASS`` imports the Python file you name (it runs as any import does) and builds
``CLASS()``: any PyTorch module made of the zoo's layers and plain torch ops converts,
registered or not (``zoo.keras.translate``).
"""

from __future__ import annotations

import argparse
import os

from bnnzoo.arguments import add_model_arguments, load_model
from converters.formats import FORMATS, convert, get_format, require_extra
from converters.verify import ConversionError
from zoo import fileio
from zoo.console import Progress
from zoo.refs import short_name

__all__ = ["add_arguments", "run", "needs_tensorflow", "output_format", "default_weights"]


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """A TFLite export imports TensorFlow (LCE's converter)."""
    to = args.to or os.path.splitext(args.output or "")[1].lstrip(".")
    return to.lower() == "tflite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo convert`` to ``parser``."""
    add_model_arguments(parser)
    parser.add_argument("--to", metavar="FORMAT", help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
                        + " (default: from the extension of -o)")
    parser.add_argument("-o", "--output", metavar="PATH", help="output file (default: NAME.SUFFIX here)")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input side (default: the weights')")
    parser.add_argument("--bitpack", action="store_true", help="onnx: store binary conv weights at 1 bit")
    parser.add_argument("--int8", action="store_true",
                        help="tflite: LCE's int8 file: int8 input and output, every float op in int8 over "
                             "--int8-range (a file for speed measurements: its outputs are not the model's)")
    parser.add_argument("--int8-range", type=_int8_range, metavar="MIN,MAX",
                        help="tflite --int8: the range every float tensor is quantized over (LCE's "
                             "experimental_default_int8_range; default --int8-range=-6,6)")
    parser.add_argument("--pad-value", type=float, choices=(0.0, 1.0), metavar="0|1",
                        help="padding value of binary convs' inputs (an architecture option)")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing the file with the source model")


def _int8_range(text: str) -> tuple[float, float]:
    """``MIN,MAX`` of ``--int8-range`` (argparse turns the error into a usage line)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX (e.g. -6,6)") from None
    if not low < 0.0 < high:
        raise argparse.ArgumentTypeError(f"{text!r}: the range must hold 0 (MIN < 0 < MAX)")
    return low, high


def output_format(to: "str | None", output: "str | None"):
    """The format of ``--to``, or of ``-o``'s extension when ``--to`` is left out.

    Raises:
        ValueError: Neither is given, an unknown extension, or an extension that contradicts ``--to``.
    """
    by_suffix = {f.suffix: f for f in FORMATS.values()}
    suffix = os.path.splitext(output or "")[1].lower()
    if to is None:
        if suffix not in by_suffix:
            raise ValueError(f"give --to FORMAT ({', '.join(FORMATS)}), or -o a file ending in "
                             f"{' or '.join(by_suffix)}" + (f", not {suffix}" if suffix else ""))
        return by_suffix[suffix]
    fmt = get_format(to)
    if suffix in by_suffix and by_suffix[suffix] is not fmt:
        raise ValueError(f"-o {output} ends in {suffix} but --to is {fmt.name} (files end in {fmt.suffix}): "
                         f"name the output {os.path.splitext(output)[0]}{fmt.suffix}, or drop --to")
    return fmt


def _load(args: argparse.Namespace):
    """The model to convert, with the options of the command line."""
    from zoo.weights import input_size_of

    overrides = {} if args.pad_value is None else {"pad_value": args.pad_value}
    model = load_model(args, input_size=args.input_size, **overrides)
    if input_size_of(model) is None and args.input_size is None:
        raise ValueError(f"{args.source} carries no input size (no config.json with its weights): pass --input-size N")
    return model


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo convert``; prints the conversion report. Returns the exit status."""
    fmt = output_format(args.to, args.output)
    if args.bitpack and "bitpack" not in fmt.options:
        raise ValueError(f"--bitpack is an onnx option; {fmt.name} takes: {', '.join(fmt.options)}")
    if (args.int8 or args.int8_range) and "int8" not in fmt.options:
        raise ValueError(f"--int8 is a tflite option; {fmt.name} takes: {', '.join(fmt.options)}")
    if args.int8_range and not args.int8:
        raise ValueError("--int8-range is the range of an int8 file: add --int8")
    require_extra(fmt)  # before building anything
    with Progress("bnnzoo convert", 2) as bar:
        bar.step(f"building {args.source}")
        model = _load(args)
        bar.advance()
        output = args.output or f"{short_name(args.source)}{fmt.suffix}"
        # An explicit --input-size reaches the converter too (zoo.load already builds a registered model at
        # it; a module from a file takes its size from the command line only).
        options = {"input_size": args.input_size, **({"bitpack": True} if args.bitpack else {}),
                   **({"int8": True, "int8_range": args.int8_range} if args.int8 else {})}
        bar.step(f"exporting to {fmt.name}" + ("" if args.no_verify else ", then verifying against the source model"))
        # The file's size and sha256 go beside it (NAME.sha256.json), checked by every command that reads it
        # (converters.verify.read_export); an old record goes first, so a kill never pairs it with a new file.
        fileio.remove(fileio.record_path(output), os.path.dirname(os.path.abspath(output)), "export record")
        report = _convert(model, output, fmt, args, options)
        fileio.write_record(output)
        bar.advance()
    print(report.summary())
    return 0


def _convert(model, output: str, fmt, args: argparse.Namespace, options: dict):
    try:
        return convert(model, output, fmt.name, verify=not args.no_verify, **options)
    except ConversionError as e:
        trained = default_weights(args.source)
        if not trained:
            raise
        # A fresh binary model feeds exact zeros to its signs, which runtimes may round apart.
        raise ConversionError(f"{e} ({args.source} has initialised weights here; trained ones convert: "
                              f"bnnzoo convert {trained} --to {fmt.name})") from None


def default_weights(source: str) -> str:
    """``NAME.TAG`` of the default weights of ``source`` when it is a bare registered name ("" otherwise)."""
    from zoo import get_config, list_models
    from zoo.weights import default_tag

    if source not in list_models(include_stages=True):
        return ""
    tag = default_tag(get_config(source).name)
    return f"{source}.{tag}" if tag else ""
