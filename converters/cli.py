"""``bnnzoo convert``: export a model, verified; ``bnnzoo verify``: re-check an existing export
against its source, layer by layer.

Both take a model as every command does (:mod:`zoo.refs`): ``NAME[.TAG]``, a folder or
``.safetensors`` file saved with ``zoo.save`` (its ``config.json`` names the architecture),
``hf-hub:OWNER/NAME[@REV]``, or ``FILE.py:CLASS`` with ``--weights``. Examples::

    bnnzoo convert meliusnet22 --to tflite
    bnnzoo convert realtobinary_resnet18 -o r2b.onnx --bitpack                  # the format from the extension
    bnnzoo convert quicknet --to tflite --int8          # LCE's int8 file (int8 input/output, float ops in int8)
    bnnzoo convert runs/m22/train/ --to tflite                                 # a training run's stage folder
    bnnzoo convert hf-hub:someone/my-meliusnet --to tflite
    bnnzoo convert run/best.safetensors --arch meliusnet22 --to tflite --pad-value 0   # no config.json beside it
    bnnzoo convert my_models.py:MyBNN --weights run7/ --to tflite
    bnnzoo verify meliusnet22.larq_in1k meliusnet22.tflite
    bnnzoo verify run7/ r2b.onnx

``FILE.py:CLASS`` imports the Python file you name (it runs as any import does) and builds
``CLASS()``: any PyTorch module made of the zoo's layers and plain torch ops converts,
registered or not (``zoo.keras.translate``).
"""

from __future__ import annotations

import argparse
import os

from zoo import fileio

from .formats import FORMATS, get_format, require_extra
from .verify import ConversionError

__all__ = ["add_convert_arguments", "run_convert", "add_verify_arguments", "run_verify", "output_format"]


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo convert`` to ``parser``."""
    from zoo.cli import add_model_arguments

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
    from zoo.cli import load_model
    from zoo.weights import input_size_of

    overrides = {} if args.pad_value is None else {"pad_value": args.pad_value}
    model = load_model(args, input_size=args.input_size, **overrides)
    if input_size_of(model) is None and args.input_size is None:
        raise ValueError(f"{args.source} carries no input size (no config.json with its weights): pass --input-size N")
    return model


def run_convert(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo convert``; prints the conversion report. Returns the exit status."""
    from . import convert

    from zoo.refs import short_name

    fmt = output_format(args.to, args.output)
    if args.bitpack and "bitpack" not in fmt.options:
        raise ValueError(f"--bitpack is an onnx option; {fmt.name} takes: {', '.join(fmt.options)}")
    if (args.int8 or args.int8_range) and "int8" not in fmt.options:
        raise ValueError(f"--int8 is a tflite option; {fmt.name} takes: {', '.join(fmt.options)}")
    if args.int8_range and not args.int8:
        raise ValueError("--int8-range is the range of an int8 file: add --int8")
    require_extra(fmt)  # before building anything
    from zoo.console import Progress

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
        report = _convert(model, output, fmt, args, options, convert)
        fileio.write_record(output)
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
    """``NAME.TAG`` of the default weights of ``source`` when it is a bare registered name ("" otherwise)."""
    from zoo import get_config, list_models
    from zoo.weights import default_tag

    if source not in list_models(include_stages=True):
        return ""
    tag = default_tag(get_config(source).name)
    return f"{source}.{tag}" if tag else ""


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo verify`` to ``parser``: ``[MODEL] FILE [--weights W]``."""
    from zoo.cli import MODEL_HELP, add_model_arguments

    add_model_arguments(parser, "model", optional=True,
                        help=f"the file's source, with trained weights: {MODEL_HELP} (a bare NAME: its default "
                             "weights; optional when --weights names a folder, file or Hub repo with config.json)")
    parser.add_argument("file", metavar="FILE", help="the exported .tflite or .onnx file to check")
    parser.add_argument("--model", dest="model_option", metavar="MODEL", help=argparse.SUPPRESS)  # old spelling


def _verify_source(args: argparse.Namespace, input_size: int):
    """The source model of ``bnnzoo verify``: trained weights only (initialised ones differ on every run)."""
    from zoo.cli import load_model
    from zoo.refs import is_file_class

    model = _verify_model(args)
    if model is None:  # the weights' config.json names the architecture
        args.model, args.weights = args.weights, None
    elif not args.weights and not getattr(args, "arch", None):
        # Initialised weights differ on every run: nothing to compare a file with.
        if is_file_class(model):
            raise ValueError(f"{model} has no weights: name the file's, bnnzoo verify {model} {args.file} --weights W")
        if model in _registered():
            args.model = _default_weights(model)
            if not args.model:
                raise ValueError(f"{model} has no default weights: name the file's weights, bnnzoo verify {model}.TAG "
                                 f"{args.file} (or --weights W)")
    return load_model(args, "model", input_size=input_size)


def _registered() -> list:
    from zoo import list_models

    return list_models(include_stages=True)


def _verify_model(args: argparse.Namespace) -> "str | None":
    """The model of ``bnnzoo verify`` (positional, or the old ``--model``); one-line errors for a source given
    twice or none."""
    model = args.model or getattr(args, "model_option", None)
    if args.model and getattr(args, "model_option", None):
        raise ValueError(f"two sources given ({args.model} and --model {args.model_option}): give MODEL once")
    if args.weights and model is not None and "." in model and model.partition(".")[0] in _registered():
        raise ValueError(f"{model} names its weights already: drop --weights, or give the bare architecture")
    if not args.weights and not model:
        raise ValueError(f"name the file's source: bnnzoo verify MODEL {args.file} (MODEL: NAME[.TAG], a folder, "
                         "hf-hub:REPO; or --weights W)")
    args.model, args.model_option = model, None
    return model


def _input_side(path: str, fmt: str) -> int:
    """The square input side an export takes (one-line error for a file its format cannot read)."""
    try:
        return _read_input_side(path, fmt)
    except Exception as e:  # noqa: BLE001  a truncated or foreign file fails in many ways inside the parsers
        raise ValueError(f"{path} is not a readable .{fmt} export ({type(e).__name__}): export it again with "
                         f"bnnzoo convert NAME[.TAG] --to {fmt}") from None


def _read_input_side(path: str, fmt: str) -> int:
    if fmt == "tflite":
        import tflite

        with open(path, "rb") as f:
            model = tflite.Model.GetRootAsModel(f.read(), 0)
        sg = model.Subgraphs(0)
        return int(sg.Tensors(sg.Inputs(0)).ShapeAsNumpy()[1])
    import onnx

    dims = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


def run_verify(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo verify``: prints the layer-wise table of every runtime. Exit status 1 on a mismatch."""
    import numpy as np

    from .layerwise import raise_first
    from .verify import compare, read_export, reference_outputs, verification_batch

    fmt = os.path.splitext(args.file)[1].lstrip(".").lower()
    if fmt not in ("tflite", "onnx"):
        if args.model and os.path.splitext(args.model)[1].lower() in (".tflite", ".onnx"):
            raise ValueError(f"the model comes first, then the file: bnnzoo verify {args.file} {args.model}")
        raise ValueError(f"{args.file} is neither a .tflite nor an .onnx file")
    if not os.path.isfile(args.file):
        raise FileNotFoundError(f"{args.file} does not exist")
    _verify_model(args)  # the command's own errors before the file is read
    # A damaged file (or one that differs from its record) is one line, never a crash; a .tflite without a
    # record is run first, in a child process, on each kernel the layer-wise check uses.
    from .tflite import LCE_RUNTIMES

    content, _ = read_export(args.file, list(LCE_RUNTIMES.values()) if fmt == "tflite" else ({},))
    side = _input_side(args.file, fmt)
    model = _verify_source(args, side)
    batch, data = verification_batch(model, side)
    if fmt == "tflite":
        from .tflite import tflite_predict, verify_tflite_layerwise

        flatbuffer = content
        results = verify_tflite_layerwise(model, flatbuffer, batch)
        exported = tflite_predict(flatbuffer, batch)
    else:
        import onnx

        from .onnx import onnx_predict, verify_onnx_layerwise

        results = [verify_onnx_layerwise(model, onnx.load(args.file), batch)]
        exported = onnx_predict(args.file, batch)
    for r in results:
        print(f"{args.file} on {r.runtime}:\n{r.table()}\n")
    diff, agreement = compare(reference_outputs(model, batch), np.asarray(exported))
    print(f"end to end: max |diff| {diff:.3g}, top-1 agreement {agreement:.2f} on {len(batch)} images ({data})")
    try:
        raise_first(results, fmt)
    except ConversionError as e:
        print(f"bnnzoo verify: mismatch: {str(e).replace('; nothing was written', '')}")
        return 1
    print(f"{args.file} matches its source layer by layer on {', '.join(r.runtime for r in results)}")
    return 0
