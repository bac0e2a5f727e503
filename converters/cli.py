"""``bnnzoo convert``: export a registered model or a checkpoint, verified; ``bnnzoo verify``:
re-check an existing export against its source, layer by layer.

Examples::

    bnnzoo convert meliusnet22 --to tflite
    bnnzoo convert realtobinary_resnet18 --to onnx --bitpack -o r2b.onnx
    bnnzoo convert quicknet --to tflite --int8            # LCE's int8 file (int8 input/output, float ops in int8)
    bnnzoo convert run/best.safetensors --arch meliusnet22 --to tflite --pad-value 0
    bnnzoo convert my_models.py:MyBNN --weights run7/model.safetensors --input-size 96 --to tflite
    bnnzoo verify meliusnet22.larq_in1k meliusnet22.tflite
    bnnzoo verify realtobinary_resnet18 r2b.onnx --weights run/model.safetensors
    bnnzoo verify r2b.onnx --weights run/model.safetensors      # the architecture from config.json beside it

``FILE.py:CLASS`` imports the Python file you name (it runs as any import does) and builds
``CLASS()``: any PyTorch module made of the zoo's layers and plain torch ops converts,
registered or not (``zoo.keras.translate``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from .formats import FORMATS, get_format, require_extra
from .verify import ConversionError

__all__ = ["add_convert_arguments", "run_convert", "load_module_from_file", "add_verify_arguments", "run_verify"]

_FILE_CLASS = re.compile(r"(?P<file>.+\.py):(?P<cls>[A-Za-z_]\w*)")


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo convert`` to ``parser``."""
    parser.add_argument("source", metavar="NAME[.TAG]|SOURCE",
                        help="a registered model (`bnnzoo list`), NAME.TAG, a .safetensors file (needs --arch), or "
                             "FILE.py:CLASS, a PyTorch module of yours built from the zoo's layers (needs --input-size)")
    parser.add_argument("--to", required=True, metavar="FORMAT",
                        help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()))
    parser.add_argument("-o", "--output", metavar="PATH", help="output file (default: NAME.SUFFIX here)")
    parser.add_argument("--weights", metavar="FILE|hf-hub:REPO",
                        help="weights for NAME: a .safetensors file (config.json beside it is checked) or "
                             "hf-hub:owner/repo[@rev]; for FILE.py:CLASS a .safetensors file")
    parser.add_argument("--arch", metavar="NAME", help="architecture of a .safetensors checkpoint given as source")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input side (default: the model's)")
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
    """``MIN,MAX`` of ``--int8-range`` (argparse turns the ValueError into a usage error)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX (e.g. -6,6)") from None
    if not low < 0.0 < high:
        raise argparse.ArgumentTypeError(f"{text!r}: the range must hold 0 (MIN < 0 < MAX)")
    return low, high


def load_module_from_file(spec: str, weights: "str | None" = None):
    """``CLASS()`` of ``FILE.py:CLASS``, with the weights of a ``.safetensors`` file when given.

    Raises:
        FileNotFoundError: The file or the weights do not exist.
        ImportError: The file does not import.
        ValueError: No such module class, it needs constructor arguments, or the weights do not fit.
    """
    import importlib.util

    import torch

    m = _FILE_CLASS.fullmatch(spec)
    if m is None:
        raise ValueError(f"{spec!r} is not FILE.py:CLASS")
    path, name = m["file"], m["cls"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (FILE.py:CLASS names a Python file and a module class in it)")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module_name = f"_bnnzoo_user_{stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its own sibling imports
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ImportError(f"cannot import {path} ({type(e).__name__}: {' '.join(str(e).split())})") from None
    finally:
        sys.path.pop(0)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module_name)
        raise ValueError(f"{path} has no torch.nn.Module class {name!r} (it defines: {', '.join(found) or 'none'})")
    try:
        model = cls()
    except TypeError as e:
        raise ValueError(f"{name} cannot be built without arguments ({e}): give its arguments defaults, or add a "
                         f"subclass that passes them") from None
    if weights is not None:
        _load_weights(model, weights)
    return model.eval()


def _load_weights(model, weights: str) -> None:
    import torch

    from zoo.weights import WeightMismatchError, read_safetensors

    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights {weights} do not exist")
    state = {k: torch.as_tensor(v) for k, v in read_safetensors(weights).items()}
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not k.endswith("num_batches_tracked")]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise WeightMismatchError(f"{weights} does not fit {type(model).__name__} ({len(missing)} missing, "
                                  f"{len(unexpected)} unexpected, {len(wrong)} wrongly shaped, e.g. {first!r}): "
                                  f"give the weights saved from this class")
    model.load_state_dict(state, strict=False)


def _load(args: argparse.Namespace):
    import zoo

    overrides = {} if args.pad_value is None else {"pad_value": args.pad_value}
    if _FILE_CLASS.fullmatch(args.source):
        if args.arch or overrides:
            raise ValueError("--arch and --pad-value are for registered models; FILE.py:CLASS is built as it is")
        if args.input_size is None:
            raise ValueError(f"{args.source} carries no input size: pass --input-size N")
        return load_module_from_file(args.source, args.weights), _FILE_CLASS.fullmatch(args.source)["cls"]
    if args.source.endswith(".safetensors"):
        if not args.arch:
            raise ValueError(f"{args.source} is a checkpoint: name its architecture with --arch")
        if args.weights:
            raise ValueError(f"{args.source} is the weights already: drop --weights")
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
    if (args.int8 or args.int8_range) and "int8" not in fmt.options:
        raise ValueError(f"--int8 is a tflite option; {fmt.name} takes: {', '.join(fmt.options)}")
    if args.int8_range and not args.int8:
        raise ValueError("--int8-range is the range of an int8 file: add --int8")
    require_extra(fmt)  # before building anything
    from zoo.console import Progress

    with Progress("bnnzoo convert", 2) as bar:
        bar.step(f"building {args.source}")
        model, name = _load(args)
        bar.advance()
        output = args.output or f"{name.replace('.', '_')}{fmt.suffix}"
        # An explicit --input-size reaches the converter too (zoo.load already builds a registered model at
        # it; a module from a file takes its size from the command line only).
        options = {"input_size": args.input_size, **({"bitpack": True} if args.bitpack else {}),
                   **({"int8": True, "int8_range": args.int8_range} if args.int8 else {})}
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


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo verify`` to ``parser``: ``[NAME[.TAG]] FILE [--weights W]``."""
    parser.add_argument("model", nargs="?", metavar="NAME[.TAG]",
                        help="the file's source: NAME.TAG (registered weights; NAME alone: its default weights); with "
                             "--weights, the architecture (optional when config.json lies beside the weights)")
    parser.add_argument("file", metavar="FILE", help="the exported .tflite or .onnx file to check")
    parser.add_argument("--weights", metavar="FILE|hf-hub:REPO",
                        help="the source's weights: a .safetensors file (config.json beside it names the "
                             "architecture) or hf-hub:owner/repo[@rev]")
    parser.add_argument("--model", dest="model_option", metavar="NAME[.TAG]", help=argparse.SUPPRESS)  # old spelling


def _verify_source(args: argparse.Namespace, input_size: int):
    """The source model of ``bnnzoo verify``: trained weights only (initialised ones differ on every run)."""
    import zoo
    from zoo.fileio import read_json

    model = _verify_model(args)
    if args.weights:
        name = model
        config = os.path.join(os.path.dirname(os.path.abspath(args.weights)), "config.json")
        if name is None and not args.weights.startswith("hf-hub:") and os.path.isfile(config):
            name = read_json(config, "config").get("name")
        if name is None:
            raise ValueError(f"{args.weights} has no config.json beside it: name its architecture first, "
                             f"bnnzoo verify NAME {args.file} --weights {args.weights}")
        return zoo.load(name, weights=args.weights, input_size=input_size)
    if not model:
        raise ValueError(f"name the file's source: bnnzoo verify NAME[.TAG] {args.file} (or --weights W)")
    name = model if "." in model else _default_weights(model)
    if not name:  # initialised weights differ on every run: nothing to compare a file with
        raise ValueError(f"{model} has no default weights: name the file's weights, bnnzoo verify {model}.TAG "
                         f"{args.file} (or --weights W)")
    return zoo.load(name)


def _verify_model(args: argparse.Namespace) -> "str | None":
    """The NAME[.TAG] of ``bnnzoo verify`` (positional, or the old ``--model``); one-line errors for a
    source given twice."""
    model = args.model or getattr(args, "model_option", None)
    if args.model and getattr(args, "model_option", None):
        raise ValueError(f"two sources given ({args.model} and --model {args.model_option}): give NAME[.TAG] once")
    if args.weights and model is not None and "." in model:
        raise ValueError(f"{model} names its weights already: drop --weights, or give the bare architecture")
    if not args.weights and not model:
        raise ValueError(f"name the file's source: bnnzoo verify NAME[.TAG] {args.file} (or --weights W)")
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
    from .verify import compare, reference_outputs, verification_batch

    fmt = os.path.splitext(args.file)[1].lstrip(".").lower()
    if fmt not in ("tflite", "onnx"):
        if args.model and os.path.splitext(args.model)[1].lower() in (".tflite", ".onnx"):
            raise ValueError(f"the model comes first, then the file: bnnzoo verify {args.file} {args.model}")
        raise ValueError(f"{args.file} is neither a .tflite nor an .onnx file")
    if not os.path.isfile(args.file):
        raise FileNotFoundError(f"{args.file} does not exist")
    _verify_model(args)  # the command's own errors before the file is read
    side = _input_side(args.file, fmt)
    model = _verify_source(args, side)
    batch, data = verification_batch(model, side)
    if fmt == "tflite":
        from .tflite import tflite_predict, verify_tflite_layerwise

        with open(args.file, "rb") as f:
            flatbuffer = f.read()
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
